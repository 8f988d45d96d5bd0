-- Starts a handful of orders on the durable workflow host, approves them, and reports.
local time = require("time")

local ORDERS = {
  { id = "A-1", customer = "ada", total = 120, items = { "book" }, address = "1 Lovelace Rd" },
  { id = "A-2", customer = "alan", total = 80, items = { "tape", "pen" }, address = "2 Turing Way" },
  { id = "A-3", customer = "grace", total = 5000, items = { "mainframe" }, address = "3 Hopper St" },
  { id = "A-4", customer = "edsger", total = 40, items = { "chalk" } },
  { id = "A-5", customer = "barbara", total = 10, items = {} },
}

local function run(orders)
  local started = {}
  for _, order in ipairs(orders) do
    local spawner = process.with_options({ ["temporal.workflow.id"] = "order-" .. order.id })
    local pid, err = spawner:spawn_monitored("app:order_workflow", "app:workflows", order)
    if err then return nil, err end
    started[pid] = order.id
    print("started  " .. order.id .. "  as " .. pid)
  end

  -- Approve every order once it has had time to reach the approval step; a signal sent
  -- earlier simply waits in the workflow's inbox, durably.
  time.sleep("50ms")
  for pid, id in pairs(started) do
    process.send(pid, "approve", { by = "demo" })
  end

  local results, events = {}, process.events()
  local remaining = #orders
  while remaining > 0 do
    local event = events:receive()
    if event.kind == process.event.EXIT then
      local id = started[event.from]
      local r = event.result.value or { status = "error", error = tostring(event.result.error) }
      results[id] = r
      remaining = remaining - 1
      print(string.format("finished %-4s %s", id, r.status .. (r.tracking and ("  " .. r.tracking) or "")
        .. (r.error and ("  (" .. r.error .. ")") or "")))
    end
  end
  return results
end

local function main()
  return run(ORDERS)
end

return { main = main }
