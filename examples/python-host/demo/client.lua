-- A Lua process that uses the Python actor like any other process.
local function main(samples)
  local stats = process.spawn_monitored("app:stats", "app:py", "latency")
  for _, x in ipairs(samples) do process.send(stats, "sample", x) end
  process.send(stats, "summary")
  local msg = process.inbox():receive()
  assert(msg:from() == stats, "the summary comes from the Python actor")
  local summary = msg:payload():data()
  process.send(stats, "stop")
  local exit = process.events():receive()
  assert(exit.kind == process.event.EXIT and exit.from == stats)
  summary.stopped_with = exit.result.value.count
  return summary
end

local function demo()
  return process.exec("app:client", "app:procs", { 12, 15, 11, 19, 13 })
end

local function test()
  local s = demo()
  assert(s.count == 5 and s.stopped_with == 5, "five samples")
  assert(s.mean == 14 and s.median == 13, "mean " .. tostring(s.mean) .. ", median " .. tostring(s.median))
end

return { main = main, demo = demo, test = test }
