-- channel: Go-style channels and select. Always available as a global.
local rt = ...
local call, raise = rt.call, rt.raise
local type, setmetatable = type, setmetatable
local math_type = math.type

local ChannelMT, Channel = rt.class("wippy.channel")  -- metatable, methods
rt.Channel = ChannelMT

-- Channels made by Python (timers, futures, inboxes) are wrapped once per handle, so the
-- same channel is always the same Lua value (`r.channel == ch` works).
-- The handle is kept out of the wrapper (a private table), so user code cannot swap it.
local wrappers = setmetatable({}, { __mode = "k" })
local handle_of = setmetatable({}, { __mode = "k" })
local function wrap(handle)
  local w = wrappers[handle]
  if not w then
    w = setmetatable({}, ChannelMT)
    wrappers[handle], handle_of[w] = w, handle
  end
  return w
end
rt.wrap_channel = wrap
function rt.channel_handle(ch) return handle_of[ch] end

local function check(ch, method)
  local handle = handle_of[ch]
  if handle == nil then
    raise("Invalid", "channel:" .. method .. " must be called on a channel (use ch:" .. method .. "(...))")
  end
  return handle
end

local M = {}

function M.new(size)
  if size == nil then size = 0 end
  if math_type(size) ~= "integer" or size < 0 then
    raise("Invalid", "channel.new: size must be a non-negative integer")
  end
  return wrap(call("chan.new", size))
end

function Channel:send(value)
  return call("chan.send", check(self, "send"), value)
end

-- A channel may carry an `_unwrap` function applied to each received value (a raw-payload
-- topic listener receives Message objects and hands out their data).
function Channel:receive()
  local h = check(self, "receive")
  local direct = rt.direct_recv  -- a value that is ready is taken without a command
  local got, v, ok
  if direct then got, v, ok = direct(h) end
  if not got then v, ok = call("chan.recv", h) end
  local unwrap = self._unwrap
  if unwrap and ok then v = unwrap(v) end
  return v, ok
end

-- Receive without blocking: value, true; or nil, false when nothing is ready.
function Channel:try_receive()
  local index, value, ok = call("chan.select", true, "recv", check(self, "try_receive"), nil)
  if index == 0 then return nil, false end
  local unwrap = self._unwrap
  if unwrap and ok then value = unwrap(value) end
  return value, ok
end

-- Receive, giving up after `d` (a duration string, Duration or nanoseconds): value, ok;
-- or nil, false on timeout.
function Channel:receive_timeout(d)
  local h = check(self, "receive_timeout")
  if not rt.need_duration then raise("Internal", "channel:receive_timeout needs the time module") end
  local timer, tch = call("time.timer", rt.need_duration("channel:receive_timeout", 1, d))
  local index, value, ok = call("chan.select", false, "recv", h, nil, "recv", tch, nil)
  call("time.stop", timer)
  if index ~= 1 then return nil, false end
  local unwrap = self._unwrap
  if unwrap and ok then value = unwrap(value) end
  return value, ok
end

-- `for v in ch:iter() do ... end` until the channel is closed.
function Channel:iter()
  check(self, "iter")
  return function()
    local v, ok = self:receive()
    if ok then return v end
  end
end

function Channel:close()
  call("chan.close", check(self, "close"))
end

function Channel:case_receive()
  check(self, "case_receive")
  return { _case = "recv", channel = self }
end

function Channel:case_send(value)
  check(self, "case_send")
  return { _case = "send", channel = self, value = value }
end

function M.select(cases)
  if type(cases) ~= "table" then
    raise("Invalid", "channel.select expects a table of cases")
  end
  local flat, n = {}, 0
  local count = #cases
  for i = 1, count do
    local c = cases[i]
    if type(c) ~= "table" or (c._case ~= "recv" and c._case ~= "send") or handle_of[c.channel] == nil then
      raise("Invalid", "channel.select: case #" .. i .. " is not a channel case (use ch:case_receive() or ch:case_send(v))")
    end
    flat[n + 1], flat[n + 2], flat[n + 3] = c._case, handle_of[c.channel], c.value
    n = n + 3
  end
  if count == 0 and not cases.default then
    raise("Invalid", "channel.select: no cases and no default would block forever")
  end
  local index, value, ok = call("chan.select", cases.default and true or false, table.unpack(flat, 1, n))
  if index == 0 then return { default = true, ok = true } end
  local ch = cases[index].channel
  if ch._unwrap and ok then value = ch._unwrap(value) end
  return { channel = ch, value = value, ok = ok }
end

return M
