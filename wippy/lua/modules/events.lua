-- events: the event bus. events.send(system, kind, path, data?) publishes; every matching
-- subscription, the sender's own included, receives {system, kind, path, data} on its
-- channel after send returns. Best effort: for observation, not for business messages.
local rt = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local type, tostring, setmetatable = type, tostring, setmetatable

local M = {}

local Subscription, Methods = rt.class("events.Subscription")
Subscription.__tostring = function() return "events.Subscription{}" end
local state_of = setmetatable({}, { __mode = "k" })  -- subscription -> {handle, channel}

local function string_arg(fn, i, name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  raise("Invalid", "events." .. fn .. ": bad argument #" .. i .. " (" .. name .. "): string expected, got " .. t)
end

local function invalid(message) return nil, new_error("Invalid", message, false) end

-- events.subscribe(system_pattern, kind?): "" or "*" match all, "x*" is a prefix, else exact.
function M.subscribe(system, kind)
  system = string_arg("subscribe", 1, "system", system)
  if system == "" then return invalid("system pattern is required") end
  if kind ~= nil then kind = string_arg("subscribe", 2, "kind", kind) end
  local handle, ch = call("events.subscribe", system, kind)
  local sub = setmetatable({}, Subscription)
  state_of[sub] = { handle = handle, channel = rt.wrap_channel(ch) }
  return sub, nil
end

local function state(sub, method)
  local s = state_of[sub]
  if s == nil then raise("Invalid", "subscription:" .. method .. " must be called on a subscription (sub:" .. method .. "())") end
  return s
end

-- The channel events arrive on: the same channel every call.
function Methods:channel() return state(self, "channel").channel end

-- Stop receiving; the channel is closed. Idempotent.
function Methods:close()
  local s = state(self, "close")
  if s.handle ~= nil then
    call("events.unsubscribe", s.handle)
    s.handle = nil
  end
  return true
end

function M.send(system, kind, path, data)
  system = string_arg("send", 1, "system", system)
  kind = string_arg("send", 2, "kind", kind)
  path = string_arg("send", 3, "path", path)
  if system == "" then return invalid("system is required") end
  if kind == "" then return invalid("kind is required") end
  if path == "" then return invalid("path is required") end
  return call("events.send", system, kind, path, data)
end

return M
