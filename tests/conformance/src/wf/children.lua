-- Child workflows: workflow.exec, process.exec and process.spawn from a workflow.
local funcs = require("funcs")
local time = require("time")
local workflow = require("workflow")

local W = {}

local function err_info(err)
  if err == nil then return nil end
  return { kind = err:kind(), retryable = err:retryable(), message = err:message() }
end

function W.child(input)
  local r = funcs.call("conf:step", input.key, input.n)
  if input.sleep then time.sleep(input.sleep * time.MILLISECOND) end
  if input.fail then
    return nil, errors.new({ kind = errors.NOT_FOUND, message = "no such order " .. input.n, retryable = false })
  end
  return { n = input.n, doubled = input.n * 2, step = r.name }
end

function W.parent(key)
  local out = {}
  out.exec = workflow.exec("conf:wf_child", { n = 1, key = key .. ".exec" })
  local none, exec_err = workflow.exec("conf:wf_child", { n = 2, fail = true, key = key .. ".exec_fail" })
  out.exec_error = { value = none, error = err_info(exec_err) }
  out.process_exec = process.exec("conf:wf_child", "conf:worker", { n = 3, key = key .. ".process_exec" })
  local none2, pexec_err = process.exec("conf:wf_child", "conf:worker", { n = 9, fail = true, key = key .. ".pexec_fail" })
  out.process_exec_error = { value = none2, error = err_info(pexec_err) }

  -- a spawned child reports its end to its parent as an EXIT event
  local events = process.events()
  local pid = process.spawn("conf:wf_child", "conf:worker", { n = 4, key = key .. ".spawn" })
  local ev = events:receive()
  out.spawn = { kind = ev.kind, from_child = ev.from == pid, value = ev.result.value, error = ev.result.error }

  local pid2 = process.spawn_monitored("conf:wf_child", "conf:worker", { n = 5, fail = true, key = key .. ".spawn_fail" })
  local ev2 = events:receive()
  out.spawn_error = { kind = ev2.kind, from_child = ev2.from == pid2, value = ev2.result.value,
                      error = err_info(ev2.result.error) }

  -- the host may be named by its task queue, as upstream's workflows name Temporal queues
  local queue = workflow.info().task_queue
  out.queue_exec = process.exec("conf:wf_child", queue, { n = 6, key = key .. ".queue_exec" })
  local pid3 = process.spawn("conf:wf_child", queue, { n = 7, key = key .. ".queue_spawn" })
  local ev3 = events:receive()
  out.queue_spawn = { from_child = ev3.from == pid3, value = ev3.result.value }
  return out
end

return W
