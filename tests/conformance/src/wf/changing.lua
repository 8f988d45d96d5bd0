-- tests/test_workflow_replay.py edits this file between runtimes to make the code disagree
-- with a run's history, then puts it back.
local funcs = require("funcs")

local W = {}

function W.changing(key)
  local first = funcs.call("conf:step", key .. ".first", 1)
  funcs.call("conf:checkpoint", key)
  process.inbox():receive()
  local second = funcs.call("conf:step", key .. ".second", 2)
  return { first = first.value, second = second.value }
end

return W
