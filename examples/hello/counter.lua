local function worker_main(parent, n)
  process.send(parent, "square", n * n)
end

local function main(count)
  count = count or 5
  local me = process.pid()
  for i = 1, count do
    process.spawn("app:counter_worker", "app:procs", me, i)
  end
  local inbox = process.inbox()
  local total = 0
  for _ = 1, count do
    local msg = inbox:receive()
    total = total + msg:payload():data()
  end
  return { workers = count, sum_of_squares = total }
end

return { main = main, worker = worker_main }
