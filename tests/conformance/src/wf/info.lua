-- workflow.info, workflow.version, workflow.attrs, history_length / history_size.
local funcs = require("funcs")
local workflow = require("workflow")
local ctx = require("ctx")

local W = {}

function W.info(input)
  local i = workflow.info()
  local h1, s1 = workflow.history_length(), workflow.history_size()
  funcs.call("conf:step", input.key, 1)
  local h2, s2 = workflow.history_length(), workflow.history_size()
  local v = workflow.version("info-change", 1, 3)
  workflow.attrs({
    search = { status = "processing", customer_id = input.customer },
    memo = { notes = "priority customer", source = "conformance" },
  })
  workflow.attrs({ search = { status = "done" } })
  local i2 = workflow.info()
  return {
    workflow_id = i.workflow_id, run_id = i.run_id, workflow_type = i.workflow_type,
    task_queue = i.task_queue, namespace = i.namespace, attempt = i.attempt,
    start_unix = i.start_time:unix(),
    history_length = { h1, h2, i2.history_length }, history_size = { s1, s2, i2.history_size },
    version = v, version_again = workflow.version("info-change", 1, 3),
    tenant = ctx.get("tenant"),
  }
end

return W
