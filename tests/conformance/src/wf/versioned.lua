-- tests/test_workflow_replay.py raises the maximum version below between runtimes: a run
-- started before keeps version 1, a new run gets 2.
local funcs = require("funcs")
local workflow = require("workflow")

local W = {}

function W.versioned(key)
  local v = workflow.version("versioned-change", 1, 1)
  funcs.call("conf:checkpoint", key)
  process.inbox():receive()
  local r = funcs.call("conf:step", key .. ".v" .. v, v)
  return { version = v, step = r.name }
end

return W
