-- Messages (signals) into workflows: inbox, topic listeners, timeouts, replies.
local time = require("time")

local W = {}

-- Driven by a process (`driver`) that sends the messages this workflow waits for; every
-- step reports back so the driver knows when to send the next one.
function W.signals(driver)
  local inbox = process.inbox()
  local out = {}
  local none, got = inbox:try_receive()
  out.try_empty = { msg = none, ok = got }
  local req = process.listen("req", { message = true })
  local raw = process.listen("raw")
  process.send(driver, "ready", 1)

  -- the inbox pattern; reply to the sender
  local msg = inbox:receive()
  out.inbox = { topic = msg:topic(), data = msg:payload():data(), from_driver = msg:from() == driver }
  process.send(msg:from(), "inbox_ack", msg:payload():data())

  -- a topic listener handing out messages
  local m = req:receive()
  out.req = { data = m:payload():data(), from_driver = m:from() == driver }
  process.send(m:from(), "req_ack", { echo = m:payload():data() })

  -- a raw listener hands out the payload data
  out.raw = raw:receive()

  -- receive_timeout: nothing comes in time, then something does
  local nothing, ok = inbox:receive_timeout("20ms")
  out.timeout = { msg = nothing, ok = ok }
  process.send(driver, "ready", 2)
  local late = inbox:receive_timeout("5s")
  out.late = late and late:payload():data()

  -- try_receive finds a message that is already there
  process.send(driver, "ready", 3)
  local first = inbox:receive()
  time.sleep("1ms")  -- the second message was sent before this timer, so it is in by now
  local second = inbox:try_receive()
  out.queued = { first:payload():data(), second and second:payload():data() }
  return out
end

-- Messages that come before the code listens for their topic wait for the listen: start
-- messages, and messages sent while the code sleeps. Each "req" gets two replies, in order,
-- and the last replies are all out although the workflow returns right after them.
function W.replier(input)
  time.sleep(input.delay_ms * time.MILLISECOND)
  local served = 0
  coroutine.spawn(function()
    local reqs = process.listen("req", { message = true })
    while true do
      local msg = reqs:receive()
      local n = msg:payload():data()
      process.send(msg:from(), "ack", n)
      process.send(msg:from(), "ok", n)
      served = served + 1
    end
  end)
  local finish = process.listen("finish", { message = true }):receive()
  process.send(finish:from(), "bye", served)
  return { served = served }
end

-- Send one message to `input.target` (a PID or a name); returns what process.send answered.
function W.send_to(input)
  local ok, err = process.send(input.target, "hello", 1)
  return { ok = ok, kind = err and err:kind(), retryable = err and err:retryable(),
           text = err and tostring(err) }
end

-- Wait for "approve" and return its data (signal durability).
function W.approval(input)
  local msg = process.inbox():receive()
  return { topic = msg:topic(), data = msg:payload():data(), input = input }
end

-- The counter of the start-options docs: startup messages come before anything else.
function W.counter(input)
  local total = input and input.initial or 0
  local log = {}
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local topic = msg:topic()
    log[#log + 1] = topic
    if topic == "increment" then
      total = total + msg:payload():data().amount
    elseif topic == "finish" then
      return { total = total, log = log }
    end
  end
end

-- Counts "ping" messages until "done" (proves a workflow's send happens once).
function W.sink()
  local pings = 0
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    if msg:topic() == "ping" then
      pings = pings + 1
    elseif msg:topic() == "done" then
      return { pings = pings }
    end
  end
end

return W
