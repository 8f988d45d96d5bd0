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

return W
