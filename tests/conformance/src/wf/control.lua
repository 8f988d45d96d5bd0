-- Workflows that are controlled from outside: terminated, canceled, monitored, linked.
local funcs = require("funcs")

local W = {}

-- Wait for one message and return its topic (or run until terminated).
function W.waiter(input)
  local msg = process.inbox():receive()
  return { topic = msg:topic(), input = input }
end

-- Handle a CANCEL event: run a cleanup activity and return normally.
function W.cancellable(input)
  local ev = process.events():receive()
  if ev.kind ~= process.event.CANCEL then
    return { canceled = false, kind = ev.kind }
  end
  local cleanup = funcs.call("conf:step", input.key .. ".cleanup", 1)
  if input.gate then  -- wait for a go-ahead (restart tests stop the runtime here)
    funcs.call("conf:checkpoint", input.key)
    process.inbox():receive()
  end
  return { canceled = true, reason = ev.reason, cleanup = cleanup.name }
end

-- Register a name, tell the driver, answer one message sent to the name, then return.
function W.named(input)
  assert(process.registry.register(input.name))
  process.send(input.driver, "registered", process.pid())
  local msg = process.inbox():receive()
  process.send(msg:from(), "named_ack", msg:payload():data())
  return { topic = msg:topic(), data = msg:payload():data() }
end

-- Monitor one workflow and link to another (neither is a child): an EXIT for the first,
-- a LINK_DOWN for the second (trapped); returns both events by kind.
function W.watcher(input)
  process.set_options({ trap_links = true })
  assert(process.monitor(input.monitored))
  assert(process.link(input.linked))
  process.send(input.driver, "watching", true)
  local events, seen = process.events(), {}
  for _ = 1, 2 do
    local ev = events:receive()
    seen[ev.kind] = { from = ev.from, value = ev.result and ev.result.value,
                      failed = ev.result ~= nil and ev.result.error ~= nil }
  end
  return seen
end

return W
