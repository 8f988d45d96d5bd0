-- Calling activities from a workflow: funcs.call, funcs.async futures, executors, context,
-- and the activity failure modes (timeout, retries, crashes, missing activities).
local funcs = require("funcs")
local ctx = require("ctx")
local time = require("time")

local W = {}

local function err_info(err)
  if err == nil then return nil end
  return { kind = err:kind(), retryable = err:retryable(), message = err:message() }
end

function W.calls()
  local out = {}
  out.sync = funcs.call("conf:step", "calls.sync", 1)
  -- two futures in flight at once; wait for both through their channels
  local f1 = funcs.async("conf:step", "calls.async1", 2)
  local f2 = funcs.async("conf:step", "calls.async2", 3)
  local ch1, ch2 = f1:response(), f2:response()
  local got = {}
  for _ = 1, 2 do
    local r = channel.select({ ch1:case_receive(), ch2:case_receive() })
    got[r.value:data().name] = r.value:data().value
  end
  out.async = got
  local payload, ferr = f1:result()
  out.future_result = payload and payload:data().value
  out.future_error = ferr
  out.future_complete = f2:is_complete()
  -- an executor with options and context
  local exec = funcs.new():with_options({ ["activity.start_to_close_timeout"] = "5s" })
    :with_context({ trace_id = "trace-1" })
  out.executor = exec:call("conf:step", "calls.executor", 4)
  local seen = exec:call("conf:context", "calls.context")
  out.activity_ctx = { trace_id = seen.trace_id, tenant = seen.tenant }
  out.workflow_ctx = { tenant = ctx.get("tenant") }
  return out
end

-- One failure mode per call, selected by `mode`; returns what the workflow saw.
function W.failures(mode, key)
  local policy = { initial_interval = 10, backoff_coefficient = 2, maximum_interval = 100 }
  local started = time.now()
  local result, err
  if mode == "timeout" then
    policy.maximum_attempts = 2
    result, err = funcs.new():with_options({
      ["activity.start_to_close_timeout"] = "50ms", ["activity.retry_policy"] = policy,
    }):call("conf:slow", key, 2000)
  elseif mode == "retry" then
    -- a recorded step first: the retries below must never run it again
    funcs.call("conf:step", key .. ".before", 0)
    policy.maximum_attempts = 5
    policy.initial_interval = 25  -- back-offs of 25ms then 50ms: far above the cost of an attempt
    result, err = funcs.new():with_options({ ["activity.retry_policy"] = policy }):call("conf:flaky", key, 2)
  elseif mode == "max_attempts" then
    policy.maximum_attempts = 2
    result, err = funcs.new():with_options({ ["activity.retry_policy"] = policy }):call("conf:flaky", key, 5)
  elseif mode == "non_retryable" then
    policy.maximum_attempts = 5
    policy.non_retryable_error_types = { "Conflict" }
    result, err = funcs.new():with_options({ ["activity.retry_policy"] = policy })
      :call("conf:flaky", key, 5, "Conflict")
  elseif mode == "crash" then
    policy.maximum_attempts = 5
    result, err = funcs.new():with_options({ ["activity.retry_policy"] = policy }):call("conf:crash", key)
  elseif mode == "unspecified" then
    policy.maximum_attempts = 5
    result, err = funcs.new():with_options({ ["activity.retry_policy"] = policy })
      :call("conf:flaky_unspecified", key, 2)
  elseif mode == "missing" then
    -- the legacy option name and camelCase policy fields, as upstream accepts them
    result, err = funcs.new():with_options({
      ["temporal.activity.retry_policy"] = { maximumAttempts = 2, initialInterval = 30 },
    }):call("conf:no_such_activity", key)
  else
    return nil, errors.new({ kind = errors.INVALID, message = "unknown mode " .. tostring(mode) })
  end
  return { result = result, error = err_info(err), elapsed = time.now():sub(started):milliseconds() }
end

return W
