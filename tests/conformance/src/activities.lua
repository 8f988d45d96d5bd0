-- Activities: plain functions that report every execution to the counter, so tests can
-- tell a recorded result (no execution on replay) from a re-run.
local time = require("time")
local ctx = require("ctx")

local A = {}

local function hit(key, value)
  local n, err = process.exec("conf:count", "conf:procs", key, value)
  if err then error(err) end
  return n
end

-- A step of work: counted under `name`, returns something derived from its input.
function A.step(name, value)
  hit(name)
  return { name = name, value = value }
end

-- Report `value` under `key` (the counter keeps the last one) and return it.
function A.observe(key, value)
  hit(key, value)
  return value
end

-- A point a test waits for (counted under "checkpoint:<name>").
function A.checkpoint(name)
  hit("checkpoint:" .. name)
  return name
end

-- Fail `failures` times with a retryable error of `kind`, then succeed; returns the attempt.
-- Each attempt also reports when it ran (under "<key>@<attempt>", wall clock ns), so a test
-- can check the back-off between attempts.
function A.flaky(key, failures, kind)
  local n = hit(key)
  hit(key .. "@" .. n, time.now():unix_nano())
  if n <= failures then
    return nil, errors.new({ kind = kind or errors.UNAVAILABLE, message = key .. " attempt " .. n .. " failed",
                             retryable = true })
  end
  return n
end

-- Fail `failures` times with an error that does not say whether it is retryable, then
-- succeed; returns the attempt. (Retried: only retryable == false stops a retry.)
function A.flaky_unspecified(key, failures)
  local n = hit(key)
  if n <= failures then
    return nil, errors.new({ kind = errors.UNAVAILABLE, message = key .. " attempt " .. n .. " failed" })
  end
  return n
end

-- Take `ms` milliseconds.
function A.slow(key, ms)
  hit(key)
  time.sleep(ms * time.MILLISECOND)
  return key
end

-- Crash with a Lua error (INTERNAL, not retryable).
function A.crash(key)
  hit(key)
  error("activity crashed on purpose")
end

-- The context values the activity sees.
function A.context(key)
  hit(key)
  return ctx.all()
end

-- Saga steps --------------------------------------------------------------------------------
function A.reserve_inventory(items)
  hit("reserve_inventory")
  return { id = "res-" .. #items }
end

function A.release_inventory(id)
  hit("release_inventory", id)
  return true
end

function A.charge_payment(payment)
  hit("charge_payment")
  if payment.decline then
    return nil, errors.new({ kind = errors.INVALID, message = "card declined", retryable = false })
  end
  return { id = "pay-" .. payment.amount }
end

function A.refund_payment(id)
  hit("refund_payment", id)
  return true
end

function A.ship_order(shipping)
  hit("ship_order")
  if shipping.fail then
    return nil, errors.new({ kind = errors.UNAVAILABLE, message = "no courier available", retryable = false })
  end
  return { tracking = "TRACK-" .. shipping.address }
end

return A
