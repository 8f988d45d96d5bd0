-- The standard actors of the host-contract conformance suite, written in Lua: the reference
-- behaviour, and what a host that runs process.lua entries (process.host) is tested with.
-- A provider whose actors are something else implements the same four its own way.

-- echo(): for every message, "stop" ends it normally with the payload as its result, "fail"
-- ends it with an error whose message is the payload, and any other topic is sent back to
-- the sender with the same payload. It never reads its events (a CANCEL is ignored).
local function echo()
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local topic, data = msg:topic(), msg:payload():data()
    if topic == "stop" then return data end
    if topic == "fail" then error(errors.new({ kind = errors.INTERNAL, message = tostring(data) })) end
    process.send(msg:from(), topic, data)
  end
end

-- fail(message): ends at once with an error whose message is `message`.
local function fail(message)
  error(errors.new({ kind = errors.INTERNAL, message = message }))
end

-- cancellable(): waits for CANCEL, then ends normally with { reason = ..., from = ... }
-- (the reason given to process.cancel and the PID that canceled it).
local function cancellable()
  local events = process.events()
  while true do
    local ev = events:receive()
    if ev.kind == process.event.CANCEL then return { reason = ev.reason, from = ev.from } end
  end
end

-- watcher(report_to): traps links. A message "monitor", "unmonitor", "link" or "unlink"
-- whose payload is a PID does that to the PID, then answers the sender with topic "ok" and
-- the PID. Every EXIT and LINK_DOWN it receives is reported to `report_to` as a message
-- "exit" or "link_down" with { from = PID, value = result, error = message or nil }.
-- "stop" ends it normally with the payload, "fail" with an error (as for echo).
local function watcher(report_to)
  process.set_options({ trap_links = true })
  local inbox, events = process.inbox(), process.events()
  local ops = { monitor = process.monitor, unmonitor = process.unmonitor, link = process.link,
                unlink = process.unlink }
  local reports = { [process.event.EXIT] = "exit", [process.event.LINK_DOWN] = "link_down" }
  while true do
    local r = channel.select({ inbox:case_receive(), events:case_receive() })
    if r.channel == inbox then
      local msg = r.value
      local topic, data = msg:topic(), msg:payload():data()
      if topic == "stop" then return data end
      if topic == "fail" then error(errors.new({ kind = errors.INTERNAL, message = tostring(data) })) end
      local op = ops[topic]
      if op ~= nil then
        op(data)
        process.send(msg:from(), "ok", data)
      end
    else
      local ev = r.value
      local topic = reports[ev.kind]
      if topic ~= nil then
        local err = ev.result.error
        process.send(report_to, topic, { from = ev.from, value = ev.result.value, error = err and err:message() })
      end
    end
  end
end

return { echo = echo, fail = fail, cancellable = cancellable, watcher = watcher }
