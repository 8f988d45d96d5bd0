-- Lua-level conformance tests (meta.type: test). Each one starts workflows on the provider
-- `conf:worker` and checks what they did; `wippy test tests/conformance` runs them all, and
-- tests/test_workflow_conformance.py runs them against every provider.
local uuid = require("uuid")

local T = {}

local WORKER = "conf:worker"

local function unique(prefix) return prefix .. "-" .. uuid.v4() end

local function run(entry, ...)
  local result, err = process.exec(entry, WORKER, ...)
  assert(err == nil, entry .. " failed: " .. tostring(err))
  return result
end

local function counts()
  local c, err = process.exec("conf:snapshot", "conf:procs")
  assert(err == nil, tostring(err))
  return c
end

local function hits(key) return counts().hits[key] or 0 end

local function drive(scenario, ...)
  local ok, err = process.exec("conf:driver", "conf:procs", scenario, ...)
  assert(err == nil, scenario .. ": " .. tostring(err))
  return ok
end

-- Activities -------------------------------------------------------------------------------
function T.activity_calls()
  local out, err = process.with_context({ tenant = "acme" }):exec("conf:wf_calls", WORKER)
  assert(err == nil, tostring(err))
  assert(out.sync.name == "calls.sync" and out.sync.value == 1, "funcs.call")
  assert(out.async["calls.async1"] == 2 and out.async["calls.async2"] == 3, "funcs.async futures")
  assert(out.future_result == 2 and out.future_error == nil and out.future_complete, "future:result")
  assert(out.executor.name == "calls.executor" and out.executor.value == 4, "executor:call")
  assert(out.activity_ctx.trace_id == "trace-1", "executor context reaches the activity")
  assert(out.activity_ctx.tenant == "acme", "workflow context reaches the activity")
  assert(out.workflow_ctx.tenant == "acme", "with_context reaches the workflow")
  return true
end

function T.activity_timeout()
  local key = unique("timeout")
  local out = run("conf:wf_failures", "timeout", key)
  assert(out.error and out.error.kind == "Timeout", "start_to_close_timeout: " .. tostring(out.error and out.error.kind))
  assert(hits(key) == 2, "two attempts (maximum_attempts = 2), got " .. hits(key))
  return true
end

function T.activity_retry()
  local key = unique("retry")
  local out = run("conf:wf_failures", "retry", key)
  assert(out.error == nil and out.result == 3, "succeeded on the third attempt: " .. tostring(out.result))
  local c = counts()
  assert(c.hits[key] == 3, "three attempts, got " .. tostring(c.hits[key]))
  assert(out.elapsed >= 75, "backoff: 25ms, then 50ms between attempts; took " .. out.elapsed .. "ms")
  -- each retry waited out its back-off (initial_interval 25ms, coefficient 2), measured
  -- between the attempts themselves: from a point inside the failing attempt to a point
  -- inside the next one (1 ms allowed for clock granularity)
  local at = { c.seen[key .. "@1"], c.seen[key .. "@2"], c.seen[key .. "@3"] }
  assert(at[1] and at[2] and at[3], "every attempt reported its time")
  local MS = 1000000
  assert(at[2] - at[1] >= 25 * MS - MS, "first back-off 25ms, waited " .. (at[2] - at[1]) / MS .. "ms")
  assert(at[3] - at[2] >= 50 * MS - MS, "second back-off 50ms, waited " .. (at[3] - at[2]) / MS .. "ms")
  assert(hits(key .. ".before") == 1, "a retry never re-runs a recorded step")
  return true
end

function T.activity_max_attempts()
  local key = unique("max")
  local out = run("conf:wf_failures", "max_attempts", key)
  assert(out.error and out.error.kind == "Unavailable" and out.result == nil, "the last error is returned")
  assert(hits(key) == 2, "maximum_attempts = 2, got " .. hits(key))
  return true
end

function T.activity_non_retryable_type()
  local key = unique("nonretry")
  local out = run("conf:wf_failures", "non_retryable", key)
  assert(out.error and out.error.kind == "Conflict", "the error comes back")
  assert(hits(key) == 1, "non_retryable_error_types: one attempt, got " .. hits(key))
  return true
end

function T.activity_crash_is_internal()
  local key = unique("crash")
  local out = run("conf:wf_failures", "crash", key)
  assert(out.error and out.error.kind == "Internal" and out.error.retryable == false,
    "a runtime crash is INTERNAL, not retryable")
  assert(out.error.message:find("crashed on purpose", 1, true), out.error.message)
  assert(hits(key) == 1, "not retried, got " .. hits(key))
  return true
end

function T.activity_unspecified_retryable_is_retried()
  local key = unique("unspecified")
  local out = run("conf:wf_failures", "unspecified", key)
  assert(out.error == nil and out.result == 3, "succeeded on the third attempt: " .. tostring(out.error and out.error.message))
  assert(hits(key) == 3, "an error that does not say retryable = false is retried, got " .. hits(key) .. " attempts")
  return true
end

function T.activity_missing_is_not_found()
  local out = run("conf:wf_failures", "missing", unique("missing"))
  assert(out.error and out.error.kind == "NotFound" and out.error.retryable == true,
    "a missing activity is NotFound and retryable: " .. tostring(out.error and out.error.retryable))
  assert(out.error.message:find("no_such_activity", 1, true), out.error.message)
  -- retried per the policy given under temporal.activity.retry_policy: a second attempt
  -- after initialInterval (30ms)
  assert(out.elapsed >= 30, "two attempts 30ms apart, took " .. out.elapsed .. "ms")
  return true
end

-- Timers -----------------------------------------------------------------------------------
function T.timers()
  local out = run("conf:wf_timers")
  assert(out.sleep >= 20, "time.sleep waited " .. out.sleep)
  assert(out.after >= 15 and out.after_value_is_time, "time.after")
  assert(out.stop_was_active == true, "stopping an active timer")
  assert(out.reset_fired_first and out.reset >= 10 and out.reset < 5000, "timer:reset, fired after " .. out.reset)
  assert(out.ticks >= 30, "three ticks of 10ms took " .. out.ticks)
  assert(out.receive_timeout.msg == nil and out.receive_timeout.ok == false and out.receive_timeout.waited >= 15,
    "receive_timeout")
  return true
end

-- Signals ----------------------------------------------------------------------------------
function T.signals() return drive("signals") end
function T.startup_messages() return drive("start_messages") end
function T.messages_wait_for_listen() return drive("replies") end

function T.send_to_unknown_name()
  local out = run("conf:wf_send_to", { target = unique("no-such-workflow") })
  assert(out.ok == nil and out.kind == "NotFound" and out.retryable == false,
    "a send to an unknown name is NotFound, not retryable: " .. tostring(out.kind))
  assert(out.text:find("no-such-workflow", 1, true), out.text)
  return true
end

-- Children ---------------------------------------------------------------------------------
function T.children()
  local key = unique("parent")
  local out = run("conf:wf_parent", key)
  assert(out.exec.doubled == 2 and out.exec.step == key .. ".exec", "workflow.exec")
  local e = out.exec_error
  assert(e.value == nil and e.error.kind == "NotFound" and e.error.retryable == false, "workflow.exec error kind")
  assert(e.error.message:find("no such order 2", 1, true), e.error.message)
  assert(out.process_exec.doubled == 6, "process.exec of a child")
  local pe = out.process_exec_error
  assert(pe.value == nil and pe.error.kind == "NotFound" and pe.error.message:find("no such order 9", 1, true),
    "process.exec error")
  assert(out.spawn.kind == process.event.EXIT and out.spawn.from_child and out.spawn.value.doubled == 8 and out.spawn.error == nil,
    "process.spawn: EXIT with result.value")
  local se = out.spawn_error
  assert(se.kind == process.event.EXIT and se.from_child and se.value == nil, "spawn_monitored of a failing child")
  assert(se.error.kind == "NotFound" and se.error.retryable == false and se.error.message:find("no such order 5", 1, true),
    "EXIT result.error has kind, retryable, message")
  assert(out.queue_exec.doubled == 12, "process.exec naming the task queue")
  assert(out.queue_spawn.from_child and out.queue_spawn.value.doubled == 14, "process.spawn naming the task queue")
  for _, suffix in ipairs({ ".exec", ".exec_fail", ".process_exec", ".spawn", ".spawn_fail", ".queue_exec",
                            ".queue_spawn" }) do
    assert(hits(key .. suffix) == 1, "child step " .. suffix .. " ran once")
  end
  return true
end

function T.process_exec_from_function()
  local out = run("conf:wf_child", { n = 21, key = unique("fexec") })
  assert(out.doubled == 42)
  local none, err = process.exec("conf:wf_child", WORKER, { n = 1, fail = true, key = unique("fexec") })
  assert(none == nil and err:kind() == "NotFound" and err:retryable() == false, tostring(err))
  return true
end

function T.monitors_and_links() return drive("watch") end
function T.terminate_and_cancel() return drive("stop_workflows") end
function T.between_workflows() return drive("between_workflows") end

-- Workflow module --------------------------------------------------------------------------
function T.workflow_info()
  local id = unique("info")
  local out, err = process.with_options({ ["temporal.workflow.id"] = id }):with_context({ tenant = "t1" })
    :exec("conf:wf_info", WORKER, { key = id, customer = "cust-1" })
  assert(err == nil, tostring(err))
  assert(out.workflow_id == id, "workflow_id " .. tostring(out.workflow_id))
  assert(type(out.run_id) == "string" and out.run_id ~= "", "run_id")
  assert(out.workflow_type == "conf:wf_info", "workflow_type " .. tostring(out.workflow_type))
  assert(type(out.task_queue) == "string" and out.task_queue ~= "", "task_queue")
  assert(type(out.namespace) == "string" and out.namespace ~= "", "namespace")
  assert(out.attempt == 1, "attempt")
  assert(out.start_unix > 0, "start_time")
  -- an activity call grows the history; workflow.version and workflow.attrs (before the
  -- third reading) never shrink it, but whether they show at once is the provider's: the
  -- embedded journal records them as they happen, Temporal reports the history as of the
  -- current workflow task (they are commands of that task)
  assert(out.task_queue:find("conf-", 1, true) == 1, "the worker's task queue, got " .. out.task_queue)
  local h, s = out.history_length, out.history_size
  assert(h[1] > 0, "history_length is above 0 from the start (the events that started the run)")
  assert(h[2] > h[1] and h[3] >= h[2], "history_length grows: " .. table.concat(h, ","))
  assert(s[2] > s[1] and s[3] >= s[2], "history_size grows: " .. table.concat(s, ","))
  assert(out.version == 3 and out.version_again == 3, "a new run gets the maximum version")
  assert(out.tenant == "t1", "context")
  return true
end

function T.start_options() return drive("start_options") end

function T.crypto_in_workflow()
  local out = run("conf:wf_crypto", "attack at dawn")
  assert(out.aes_len == 12 + 14 + 16 and out.chacha_len == 12 + 14 + 16, "nonce .. ciphertext .. tag")
  assert(out.aes == "attack at dawn" and out.chacha == "attack at dawn" and out.aad == "attack at dawn", "round trips")
  assert(out.wrong_key_kind == "Internal", "a wrong key does not authenticate: " .. tostring(out.wrong_key_kind))
  assert(out.bad_key_kind == "Invalid", "a key of the wrong size")
  return true
end

-- Patterns ---------------------------------------------------------------------------------
function T.saga_completes()
  local out = run("conf:wf_saga", { items = { "a", "b" }, payment = { amount = 10 }, shipping = { address = "x1" } })
  assert(out.status == "completed" and out.tracking == "TRACK-x1", tostring(out.status))
  return true
end

function T.saga_compensates()
  local before = #counts().order
  local out = run("conf:wf_saga", { items = { "a" }, payment = { amount = 5 }, shipping = { address = "x2", fail = true } })
  assert(out.status == "failed" and out.step == "shipping" and out.error == "no courier available", tostring(out.error))
  local c = counts()
  local order = {}
  for i = before + 1, #c.order do order[#order + 1] = c.order[i] end
  assert(table.concat(order, ",") == "reserve_inventory,charge_payment,ship_order,refund_payment,release_inventory",
    "compensations run in reverse: " .. table.concat(order, ","))
  assert(c.seen.refund_payment == "pay-5" and c.seen.release_inventory == "res-1", "compensations get their arguments")

  local declined = run("conf:wf_saga", { items = { "a" }, payment = { amount = 1, decline = true }, shipping = {} })
  assert(declined.status == "failed" and declined.step == "payment" and declined.error == "card declined")
  return true
end

-- The same workflow code on the ephemeral process host.
function T.ephemeral_process_host()
  local order = { items = { "a", "b", "c" }, payment = { amount = 7 }, shipping = { address = "eph" } }
  local durable = run("conf:wf_saga", order)
  local ephemeral, err = process.exec("conf:wf_saga", "conf:procs", order)
  assert(err == nil, tostring(err))
  assert(ephemeral.status == "completed" and ephemeral.tracking == durable.tracking, "same result on process.host")
  local timers, terr = process.exec("conf:wf_timers", "conf:procs")
  assert(terr == nil and timers.sleep >= 20 and timers.receive_timeout.ok == false, tostring(terr))
  local calls, cerr = process.with_context({ tenant = "eph" }):exec("conf:wf_calls", "conf:procs")
  assert(cerr == nil, tostring(cerr))
  assert(calls.async["calls.async2"] == 3 and calls.activity_ctx.tenant == "eph", "activities on process.host")
  return true
end

-- Determinism guards -----------------------------------------------------------------------
function T.determinism_guards()
  local out = run("conf:wf_guards")
  assert(not out.os_time.ok and out.os_time.message:find("time.now()", 1, true), out.os_time.message)
  assert(not out.math_random.ok and out.math_random.message:find("uuid.v4()", 1, true), out.math_random.message)
  assert(not out.math_randomseed.ok, "math.randomseed")
  assert(out.now and out.uuid, "the replacements work")
  return true
end

return T
