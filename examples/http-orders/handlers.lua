-- The HTTP API. Each handler is a function call with the request in `http`.
local http = require("http")
local json = require("json")

local HOST = "app:orders"
local M = {}

local function fail(status, message)
  return http.response():status(status):json({ error = message })
end

-- The workflow of an order: its ID is "order-<id>" on the host.
local function order_pid(id)
  return "{" .. HOST .. "|order-" .. id .. "}"
end

-- POST /orders {"id": "A-1", "customer": "ada", "total": 120, "items": ["book"]}
function M.create()
  local req = http.request()
  local order, err = req:body_json()
  if err then return fail(400, tostring(err)) end
  if type(order) ~= "table" or type(order.id) ~= "string" or order.id == "" then
    return fail(400, "an order needs a string id")
  end
  local pid, serr = process
    .with_context({ request_id = req:header("X-Request-ID") })
    :with_options({
      ["temporal.workflow.id"] = "order-" .. order.id,
      ["temporal.workflow.id_conflict_policy"] = "fail",
    })
    :spawn("app:order_workflow", HOST, order)
  if serr then return fail(409, tostring(serr)) end
  return http.response():status(202):json({ order_id = order.id, workflow_id = tostring(pid), status = "started" })
end

-- GET /orders/{id}: ask the workflow for its state and wait (briefly) for the answer.
function M.get()
  local id = http.request():param("id")
  local replies = process.listen("status")
  local ok, err = process.send(order_pid(id), "status", {})
  if err then return fail(404, "no order " .. id) end
  local timeout = require("time").after("2s")
  local r = channel.select({ replies:case_receive(), timeout:case_receive() })
  if r.channel == timeout then return fail(404, "no order " .. id .. " is running") end
  return http.response():status(200):json(r.value)
end

local function signal(topic)
  return function()
    local req = http.request()
    local id = req:param("id")
    local data = {}
    if req:has_body() then
      local body, err = req:body_json()
      if err then return fail(400, tostring(err)) end
      data = body
    end
    local ok, err = process.send(order_pid(id), topic, data)
    if err then return fail(404, "no order " .. id .. ": " .. tostring(err)) end
    return http.response():status(202):json({ order_id = id, signal = topic })
  end
end

M.approve = signal("approve")
M.cancel = signal("cancel")

return M
