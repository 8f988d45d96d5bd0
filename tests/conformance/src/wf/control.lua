-- Workflows that are controlled from outside: terminated, canceled, monitored, linked.
-- (Inside a workflow, monitors and links are refused: see W.watcher.)
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

-- A workflow may not monitor or link (as upstream: it hears about its own children's ends
-- anyway, and a watch taken from inside a workflow would not survive a replay elsewhere).
-- Tries all four calls on `input.target`; returns what each one answered.
function W.watcher(input)
  local out = {}
  for _, call in ipairs({ "monitor", "link", "unmonitor", "unlink" }) do
    local ok, err = process[call](input.target)
    out[call] = { ok = ok, kind = err and err:kind(), retryable = err and err:retryable(),
                  message = err and err:message() }
  end
  return out
end

return W
