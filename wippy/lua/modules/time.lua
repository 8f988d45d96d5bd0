-- time: Time, Duration and Location values, Go-style layouts, sleeps and timers.
-- Reading the clock and waiting are commands (time.now, time.sleep, time.timer, time.ticker,
-- time.stop, time.reset) so a durable provider can record and replay them; formatting,
-- parsing and calendar math are pure natives. Time, Duration and Location are plain data
-- tables with registered value types, so they keep their type across actors and into Python.
local rt, natives = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local setmetatable, getmetatable_raw, type, tostring = setmetatable, debug.getmetatable, type, tostring
local tointeger, huge = math.tointeger, math.huge
local string_format = string.format

local n_parse_duration, n_duration_string = natives.parse_duration, natives.duration_string
local n_fields, n_format, n_parse = natives.fields, natives.format, natives.parse

local NS = 1000000000
local ZERO_UNIX = -62135596800  -- 0001-01-01T00:00:00Z, Go's zero Time

local Duration = rt.userdata({ __name = "wippy.duration", __metatable = "wippy.duration" })
local Time = rt.userdata({ __name = "wippy.time", __metatable = "wippy.time" })
local Location = rt.userdata({ __name = "wippy.location", __metatable = "wippy.location" })
-- What a value must hold to cross to another actor (fields changed by hand are refused).
local math_type = math.type
local function is_int(v) return math_type(v) == "integer" end
rt.register_value_type("duration", Duration, function(d)
  if not is_int(d.ns) then return "ns must be an integer" end
end)
rt.register_value_type("time", Time, function(t)
  if not is_int(t.sec) or not is_int(t.nsec) or t.nsec < 0 or t.nsec >= 1000000000 then
    return "sec and nsec must be integers, nsec within a second"
  end
  if type(t.zone) ~= "string" or (t.offset ~= nil and not is_int(t.offset)) then
    return "zone must be a string and offset an integer"
  end
end)
rt.register_value_type("location", Location, function(l)
  if type(l.name) ~= "string" or (l.offset ~= nil and not is_int(l.offset)) then
    return "name must be a string and offset an integer"
  end
end)

local Timer = rt.userdata({ __name = "wippy.timer", __metatable = "wippy.timer" })
local Ticker = rt.userdata({ __name = "wippy.ticker", __metatable = "wippy.ticker" })

local function new_duration(ns) return setmetatable({ ns = ns }, Duration) end
local function new_location(name, offset) return setmetatable({ name = name, offset = offset }, Location) end
local function new_time(sec, nsec, zone, offset)
  return setmetatable({ sec = sec, nsec = nsec, zone = zone, offset = offset }, Time)
end
rt.new_time, rt.new_duration = new_time, new_duration

local UTC, LOCAL = new_location("UTC"), new_location("Local")

local type_names = { [Duration] = "Duration", [Time] = "Time", [Location] = "Location",
  [Timer] = "Timer", [Ticker] = "Ticker" }
local function describe(v)
  local mt = getmetatable_raw(v)
  return (mt and type_names[mt]) or type(v)
end

local function bad(fn, n, name, reason)
  return string_format("%s: bad argument #%d (%s): %s", fn, n, name, reason)
end

-- Nanoseconds of a Duration, a duration string or a number of nanoseconds; nil, reason if bad.
local function duration_ns(v)
  if getmetatable_raw(v) == Duration then return v.ns end
  local tv = type(v)
  if tv == "number" then
    local i = tointeger(v)
    if i then return i end
    if v ~= v or v == huge or v == -huge or v >= 2^63 or v < -2^63 then
      return nil, "duration " .. tostring(v) .. " is out of range"
    end
    return v >= 0 and math.floor(v) or math.ceil(v)  -- truncate, as Go converts
  end
  if tv == "string" then return n_parse_duration(v) end
  return nil, "expected a Duration, a duration string like \"1h30m\" or a number of nanoseconds, got " .. describe(v)
end

local function need_duration(fn, n, v)
  local ns, why = duration_ns(v)
  if ns == nil then raise("Invalid", bad(fn, n, "duration", why)) end
  return ns
end

rt.need_duration = need_duration  -- for other modules (channel:receive_timeout)

local function need_int(fn, n, name, v)
  local i = type(v) == "number" and tointeger(v)
  if not i then raise("Invalid", bad(fn, n, name, "expected an integer, got " .. describe(v))) end
  return i
end

local function need_location(fn, n, v)
  if getmetatable_raw(v) ~= Location then
    raise("Invalid", bad(fn, n, "location",
      "expected a Location (time.utc, time.localtz, time.load_location or time.fixed_zone), got " .. describe(v)))
  end
  return v
end

local function need_string(fn, n, name, v)
  if type(v) ~= "string" then raise("Invalid", bad(fn, n, name, "expected a string, got " .. describe(v))) end
  return v
end

local function check(self, mt, method)
  if getmetatable_raw(self) ~= mt then
    raise("Invalid", string_format("%s:%s must be called with ':' on a %s", type_names[mt], method, type_names[mt]))
  end
  return self
end

local function need_time(fn, n, v)
  if getmetatable_raw(v) ~= Time then raise("Invalid", bad(fn, n, "time", "expected a Time, got " .. describe(v))) end
  return v
end

---------------------------------------------------------------------------------------
-- Duration
---------------------------------------------------------------------------------------
-- Integer division truncated toward zero, as Go's Milliseconds() and friends do.
local function quot(a, b)
  local q = a // b
  if q < 0 and q * b ~= a then q = q + 1 end
  return q
end

function Duration:nanoseconds() return check(self, Duration, "nanoseconds").ns end
function Duration:microseconds() return quot(check(self, Duration, "microseconds").ns, 1000) end
function Duration:milliseconds() return quot(check(self, Duration, "milliseconds").ns, 1000000) end
function Duration:seconds() return check(self, Duration, "seconds").ns / 1e9 end
function Duration:minutes() return check(self, Duration, "minutes").ns / 6e10 end
function Duration:hours() return check(self, Duration, "hours").ns / 3.6e12 end

Duration.__tostring = function(d) return n_duration_string(d.ns) end
Duration.__concat = function(a, b) return tostring(a) .. tostring(b) end
Duration.__eq = function(a, b)
  return getmetatable_raw(a) == Duration and getmetatable_raw(b) == Duration and a.ns == b.ns
end
Duration.__lt = function(a, b) return need_duration("Duration <", 1, a) < need_duration("Duration <", 2, b) end
Duration.__le = function(a, b) return need_duration("Duration <=", 1, a) <= need_duration("Duration <=", 2, b) end
Duration.__add = function(a, b) return new_duration(need_duration("Duration +", 1, a) + need_duration("Duration +", 2, b)) end
Duration.__sub = function(a, b) return new_duration(need_duration("Duration -", 1, a) - need_duration("Duration -", 2, b)) end
Duration.__unm = function(a) return new_duration(-a.ns) end
Duration.__mul = function(a, b)
  if getmetatable_raw(a) ~= Duration then a, b = b, a end
  if type(b) ~= "number" then raise("Invalid", bad("Duration *", 2, "factor", "expected a number, got " .. describe(b))) end
  return new_duration(need_duration("Duration *", 1, a.ns * b))
end

---------------------------------------------------------------------------------------
-- Location
---------------------------------------------------------------------------------------
function Location:string() return check(self, Location, "string").name end
Location.__tostring = function(l) return l.name end
Location.__eq = function(a, b)
  return getmetatable_raw(a) == Location and getmetatable_raw(b) == Location
    and a.name == b.name and a.offset == b.offset
end

---------------------------------------------------------------------------------------
-- Time
---------------------------------------------------------------------------------------
local function fields(t)  -- year, month, day, hour, min, sec, weekday, yday, offset, abbrev
  return n_fields(t.sec, t.zone, t.offset)
end

local function plus(t, ns)
  local sec, nsec = t.sec + ns // NS, t.nsec + ns % NS
  if nsec >= NS then sec, nsec = sec + 1, nsec - NS end
  return new_time(sec, nsec, t.zone, t.offset)
end

local function cmp(a, b)
  if a.sec ~= b.sec then return a.sec < b.sec and -1 or 1 end
  if a.nsec ~= b.nsec then return a.nsec < b.nsec and -1 or 1 end
  return 0
end

function Time:add(d)
  check(self, Time, "add")
  return plus(self, need_duration("Time:add", 1, d))
end

function Time:sub(other)
  check(self, Time, "sub")
  need_time("Time:sub", 1, other)
  return new_duration(natives.sub(self.sec, self.nsec, other.sec, other.nsec))
end

function Time:add_date(years, months, days)
  check(self, Time, "add_date")
  local y = need_int("Time:add_date", 1, "years", years)
  local m = need_int("Time:add_date", 2, "months", months)
  local d = need_int("Time:add_date", 3, "days", days)
  local sec, nsec = natives.add_date(self.sec, self.nsec, self.zone, self.offset, y, m, d)
  if sec == nil then raise("Invalid", "Time:add_date: " .. nsec) end
  return new_time(sec, nsec, self.zone, self.offset)
end

function Time:before(u) check(self, Time, "before") return cmp(self, need_time("Time:before", 1, u)) < 0 end
function Time:after(u) check(self, Time, "after") return cmp(self, need_time("Time:after", 1, u)) > 0 end
function Time:equal(u) check(self, Time, "equal") return cmp(self, need_time("Time:equal", 1, u)) == 0 end

function Time:format(layout)
  check(self, Time, "format")
  return n_format(need_string("Time:format", 1, "layout", layout), self.sec, self.nsec, self.zone, self.offset)
end

local RFC3339 = "2006-01-02T15:04:05Z07:00"
function Time:format_rfc3339()
  check(self, Time, "format_rfc3339")
  return n_format(RFC3339, self.sec, self.nsec, self.zone, self.offset)
end

function Time:unix() return check(self, Time, "unix").sec end
function Time:unix_nano() check(self, Time, "unix_nano") return self.sec * NS + self.nsec end

function Time:date()
  check(self, Time, "date")
  local y, m, d = fields(self)
  return y, m, d
end

function Time:clock()
  check(self, Time, "clock")
  local _, _, _, h, mi, s = fields(self)
  return h, mi, s
end

local function field(index, name)
  return function(self)
    check(self, Time, name)
    return (select(index, fields(self)))
  end
end
Time.year, Time.month, Time.day = field(1, "year"), field(2, "month"), field(3, "day")
Time.hour, Time.minute, Time.second = field(4, "hour"), field(5, "minute"), field(6, "second")
Time.weekday, Time.year_day = field(7, "weekday"), field(8, "year_day")
function Time:nanosecond() return check(self, Time, "nanosecond").nsec end
function Time:is_zero() check(self, Time, "is_zero") return self.sec == ZERO_UNIX and self.nsec == 0 end

function Time:utc() check(self, Time, "utc") return new_time(self.sec, self.nsec, "UTC") end
function Time:in_local() check(self, Time, "in_local") return new_time(self.sec, self.nsec, "Local") end
function Time:in_location(loc)
  check(self, Time, "in_location")
  need_location("Time:in_location", 1, loc)
  return new_time(self.sec, self.nsec, loc.name, loc.offset)
end
function Time:location() check(self, Time, "location") return new_location(self.zone, self.offset) end

local function rounder(name, up)
  return function(self, d)
    check(self, Time, name)
    if getmetatable_raw(d) ~= Duration then
      raise("Invalid", bad("Time:" .. name, 1, "duration",
        "expected a Duration (from time.parse_duration), got " .. describe(d)))
    end
    local sec, nsec = natives.round(self.sec, self.nsec, d.ns, up)
    return new_time(sec, nsec, self.zone, self.offset)
  end
end
Time.round, Time.truncate = rounder("round", true), rounder("truncate", false)

Time.__tostring = function(t)
  return n_format("2006-01-02 15:04:05.999999999 -0700 MST", t.sec, t.nsec, t.zone, t.offset)
end
Time.__concat = function(a, b) return tostring(a) .. tostring(b) end
Time.__eq = function(a, b)
  return getmetatable_raw(a) == Time and getmetatable_raw(b) == Time and cmp(a, b) == 0
end
Time.__lt = function(a, b) return cmp(need_time("Time <", 1, a), need_time("Time <", 2, b)) < 0 end
Time.__le = function(a, b) return cmp(need_time("Time <=", 1, a), need_time("Time <=", 2, b)) <= 0 end
Time.__add = function(a, b)
  if getmetatable_raw(a) ~= Time then a, b = b, a end
  return plus(a, need_duration("Time +", 2, b))
end
Time.__sub = function(a, b)
  need_time("Time -", 1, a)
  if getmetatable_raw(b) == Time then return Time.sub(a, b) end
  return plus(a, -need_duration("Time -", 2, b))
end

---------------------------------------------------------------------------------------
-- Timers
---------------------------------------------------------------------------------------
local function positive(fn, v)  -- ns, or nil + error for the `X, error` constructors
  local ns, why = duration_ns(v)
  if ns == nil then return nil, new_error("Invalid", bad(fn, 1, "duration", why), false) end
  if ns <= 0 then
    return nil, new_error("Invalid", bad(fn, 1, "duration", "must be positive, got " .. n_duration_string(ns)), false)
  end
  return ns
end

function Timer:response() return check(self, Timer, "response")._ch end
Timer.channel = Timer.response
function Timer:stop() return call("time.stop", check(self, Timer, "stop")._h) end
function Timer:reset(d)
  check(self, Timer, "reset")
  local ns = need_duration("Timer:reset", 1, d)
  if ns <= 0 then raise("Invalid", bad("Timer:reset", 1, "duration", "must be positive, got " .. n_duration_string(ns))) end
  return call("time.reset", self._h, ns)
end

function Ticker:response() return check(self, Ticker, "response")._ch end
Ticker.channel = Ticker.response
function Ticker:stop() return call("time.stop", check(self, Ticker, "stop")._h) end

---------------------------------------------------------------------------------------
-- Module
---------------------------------------------------------------------------------------
local M = {
  NANOSECOND = 1, MICROSECOND = 1000, MILLISECOND = 1000000, SECOND = NS,
  MINUTE = 60 * NS, HOUR = 3600 * NS,
  RFC3339 = RFC3339,
  RFC3339NANO = "2006-01-02T15:04:05.999999999Z07:00",
  RFC822 = "02 Jan 06 15:04 MST",
  RFC822Z = "02 Jan 06 15:04 -0700",
  RFC850 = "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123 = "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z = "Mon, 02 Jan 2006 15:04:05 -0700",
  DATE_TIME = "2006-01-02 15:04:05",
  DATE_ONLY = "2006-01-02",
  TIME_ONLY = "15:04:05",
  KITCHEN = "3:04PM",
  STAMP = "Jan _2 15:04:05",
  STAMP_MILLI = "Jan _2 15:04:05.000",
  STAMP_MICRO = "Jan _2 15:04:05.000000",
  STAMP_NANO = "Jan _2 15:04:05.000000000",
  JANUARY = 1, FEBRUARY = 2, MARCH = 3, APRIL = 4, MAY = 5, JUNE = 6, JULY = 7,
  AUGUST = 8, SEPTEMBER = 9, OCTOBER = 10, NOVEMBER = 11, DECEMBER = 12,
  SUNDAY = 0, MONDAY = 1, TUESDAY = 2, WEDNESDAY = 3, THURSDAY = 4, FRIDAY = 5, SATURDAY = 6,
}
-- `time.utc` and `time.localtz` are a fresh object on each read: a location's fields are
-- plain, so a shared one could be changed under every other actor.
rt.module_getters = rt.module_getters or {}
rt.module_getters.time = { utc = function() return new_location("UTC") end,
                           localtz = function() return new_location("Local") end }

function M.now()
  local sec, nsec = call("time.now")
  return new_time(sec, nsec, "Local")
end

function M.date(year, month, day, hour, min, sec, nsec, loc)
  local fn = "time.date"
  local args = { need_int(fn, 1, "year", year), need_int(fn, 2, "month", month), need_int(fn, 3, "day", day),
    need_int(fn, 4, "hour", hour), need_int(fn, 5, "minute", min), need_int(fn, 6, "second", sec),
    need_int(fn, 7, "nanosecond", nsec) }
  if loc == nil then loc = LOCAL else need_location(fn, 8, loc) end
  local s, n = natives.date(args[1], args[2], args[3], args[4], args[5], args[6], args[7], loc.name, loc.offset)
  if s == nil then raise("Invalid", fn .. ": " .. n) end
  return new_time(s, n, loc.name, loc.offset)
end

function M.unix(sec, nsec)
  sec = need_int("time.sec", 1, "sec", sec)
  nsec = nsec == nil and 0 or need_int("time.sec", 2, "nsec", nsec)
  return new_time(sec + nsec // NS, nsec % NS, "Local")
end

function M.parse(layout, value, loc)
  if type(layout) ~= "string" or type(value) ~= "string" then
    local n, name, v = 1, "layout", layout
    if type(layout) == "string" then n, name, v = 2, "value", value end
    return nil, new_error("Invalid", bad("time.parse", n, name, "expected a string, got " .. describe(v)), false)
  end
  if loc ~= nil and getmetatable_raw(loc) ~= Location then
    return nil, new_error("Invalid", bad("time.parse", 3, "location", "expected a Location, got " .. describe(loc)), false)
  end
  local explicit = loc ~= nil
  loc = loc or UTC
  local sec, nsec, zone, offset = n_parse(layout, value, loc.name, loc.offset, explicit)
  if sec == nil then return nil, new_error("Invalid", "time.parse: " .. nsec, false) end
  return new_time(sec, nsec, zone, offset)
end

function M.parse_duration(value)
  local ns, why = duration_ns(value)
  if ns == nil then return nil, new_error("Invalid", "time.parse_duration: " .. why, false) end
  return new_duration(ns)
end

function M.load_location(name)
  if type(name) ~= "string" then
    return nil, new_error("Invalid", bad("time.load_location", 1, "name", "expected a string, got " .. describe(name)), false)
  end
  local kind, why = natives.check_zone(name)
  if kind then return nil, new_error(kind, "time.load_location: " .. why, false) end
  if name == "UTC" or name == "Local" then return new_location(name) end
  return new_location(name)
end

function M.fixed_zone(name, offset)
  need_string("time.fixed_zone", 1, "name", name)
  return new_location(name, need_int("time.fixed_zone", 2, "offset", offset))
end

function M.sleep(d)
  call("time.sleep", need_duration("time.sleep", 1, d))
end

function M.after(d)
  local ns, why = duration_ns(d)
  if ns == nil then return nil, new_error("Invalid", bad("time.after", 1, "duration", why), false) end
  local _, ch = call("time.timer", ns)
  return rt.wrap_channel(ch)
end

function M.timer(d)
  local ns, err = positive("time.timer", d)
  if ns == nil then return nil, err end
  local h, ch = call("time.timer", ns)
  return setmetatable({ _h = h, _ch = rt.wrap_channel(ch) }, Timer)
end

function M.ticker(d)
  local ns, err = positive("time.ticker", d)
  if ns == nil then return nil, err end
  local h, ch = call("time.ticker", ns)
  return setmetatable({ _h = h, _ch = rt.wrap_channel(ch) }, Ticker)
end

-- Methods out of the metatables (so `t.__index` does not hand out a shared metatable).
for _, mt in ipairs({ Duration, Time, Location, Timer, Ticker }) do rt.seal_class(mt) end

return M
