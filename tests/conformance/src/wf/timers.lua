-- Durable timers: sleep, after, timer (stop/reset), ticker, receive_timeout.
local time = require("time")

local W = {}

local function ms(d) return d:milliseconds() end

function W.timers()
  local out = {}
  local t0 = time.now()
  time.sleep("20ms")
  out.sleep = ms(time.now():sub(t0))

  local t1 = time.now()
  local fired = time.after("15ms"):receive()
  out.after = ms(time.now():sub(t1))
  out.after_value_is_time = fired ~= nil and fired:unix() > 0

  -- a stopped timer never fires; a reset one fires at its new time (long before both the
  -- time it was set for and the fallback: a timer's round trip through a server under load
  -- may take a few hundred milliseconds)
  local long = time.timer("1h")
  out.stop_was_active = long:stop()
  local t2 = time.now()
  local short = time.timer("10s")
  short:reset("10ms")
  local r = channel.select({ short:response():case_receive(), long:response():case_receive(),
                             time.after("5s"):case_receive() })
  out.reset_fired_first = r.channel == short:response()
  out.reset = ms(time.now():sub(t2))

  -- a ticker ticks until stopped
  local ticker = time.ticker("10ms")
  local t3 = time.now()
  for _ = 1, 3 do ticker:response():receive() end
  ticker:stop()
  out.ticks = ms(time.now():sub(t3))

  -- receive_timeout on an empty inbox times out
  local t4 = time.now()
  local msg, ok = process.inbox():receive_timeout("15ms")
  out.receive_timeout = { msg = msg, ok = ok, waited = ms(time.now():sub(t4)) }
  out.total = ms(time.now():sub(t0))
  return out
end

-- Sleep `ms` between two readings of the workflow clock (for restart tests).
function W.sleeper(ms_)
  local before = time.now()
  time.sleep(ms_ * time.MILLISECOND)
  local after = time.now()
  return { before = before:unix_nano(), after = after:unix_nano(), elapsed = ms(after:sub(before)) }
end

return W
