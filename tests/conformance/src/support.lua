-- Test plumbing that is not under test: a counter that activities report to (so tests can
-- prove an activity ran once, or how many attempts a retry made), and small functions the
-- pytest harness calls to start, signal and run workflows on `conf:worker`.
local S = {}

-- The counter process (a process.service, registered as "conf.counter"). It lives in the
-- runtime, not in the workflow store: every runtime starts counting from zero.
function S.counter()
  process.registry.register("conf.counter")
  local hits, seen, order = {}, {}, {}
  local inbox, events = process.inbox(), process.events()
  while true do
    local r = channel.select({ inbox:case_receive(), events:case_receive() })
    if r.channel == events then
      if r.value.kind == process.event.CANCEL then return end  -- the runtime is stopping
      goto continue
    end
    local msg = r.value
    local topic, data = msg:topic(), msg:payload():data()
    if topic == "hit" then
      hits[data.key] = (hits[data.key] or 0) + 1
      order[#order + 1] = data.key
      if data.value ~= nil then seen[data.key] = data.value end
      process.send(msg:from(), "count", hits[data.key])
    elseif topic == "get" then
      process.send(msg:from(), "counts", { hits = hits, seen = seen, order = order })
    end
    ::continue::
  end
end

-- process.exec'd by activities: count one hit of `key` (remembering `value`); returns the
-- number of hits of `key` so far in this runtime.
function S.count(key, value)
  assert(process.send("conf.counter", "hit", { key = key, value = value }))
  return process.inbox():receive():payload():data()
end

-- process.exec'd: every count so far, {hits = {key = n}, seen = {key = value}, order = {key...}}.
function S.snapshot()
  assert(process.send("conf.counter", "get"))
  return process.inbox():receive():payload():data()
end

function S.counts()
  local counts, err = process.exec("conf:snapshot", "conf:procs")
  if err then error(err) end
  return counts
end

-- Harness entry points (function.lua) ------------------------------------------------------
local function spawner(options, context)
  local s = process.with_options(options or {})
  if context then s = s:with_context(context) end
  return s
end

-- Start `entry` on the workflow provider; returns its PID once the start is durable.
function S.start(entry, input, options, context)
  local pid, err = spawner(options, context):spawn(entry, "conf:worker", input)
  if err then error(err) end
  return pid
end

-- Run `entry` on the workflow provider to its end; returns its result.
function S.run(entry, input, options, context)
  local result, err = spawner(options, context):exec(entry, "conf:worker", input)
  if err then error(err) end
  return result
end

-- Run `entry` on the ephemeral process host instead.
function S.run_ephemeral(entry, input)
  local result, err = process.exec(entry, "conf:procs", input)
  if err then error(err) end
  return result
end

function S.signal(pid, topic, data)
  local ok, err = process.send(pid, topic, data)
  if err then error(err) end
  return ok
end

function S.cancel(pid, deadline)
  local ok, err = process.cancel(pid, deadline or "5s")
  if err then error(err) end
  return ok
end

return S
