local funcs = require("funcs")
local time = require("time")
local workflow = require("workflow")

local function run_compensations(compensations)
  for _, comp in ipairs(compensations) do
    funcs.call(comp.action, comp.args)
  end
end

local function step(name)
  workflow.attrs({ search = { status = name } })
end

local function main(order)
  local compensations = {}

  step("validating")
  local _, err = funcs.call("app:validate_order", order)
  if err then
    step("rejected")
    return { status = "rejected", error = tostring(err) }
  end

  step("reserving")
  local reservation, err = funcs.call("app:reserve_inventory", order.items)
  if err then
    step("failed")
    return { status = "failed", step = "inventory", error = tostring(err) }
  end
  table.insert(compensations, 1, { action = "app:release_inventory", args = reservation.id })

  step("charging")
  local payment, err = funcs.call("app:charge_payment", { amount = order.total, customer = order.customer })
  if err then
    run_compensations(compensations)
    step("failed")
    return { status = "failed", step = "payment", error = tostring(err) }
  end
  table.insert(compensations, 1, { action = "app:refund_payment", args = payment.id })

  -- A durable timer: survives restarts of the runtime.
  step("awaiting_fulfillment")
  time.sleep(order.fulfillment_window or "200ms")

  -- Wait for an approval signal (process.send(pid, "approve", ...)) or a rejection.
  step("awaiting_approval")
  local inbox = process.inbox()
  local approval = nil
  while approval == nil do
    local msg = inbox:receive()
    if msg:topic() == "approve" then
      approval = msg:payload():data()
    elseif msg:topic() == "cancel" then
      run_compensations(compensations)
      step("canceled")
      return { status = "canceled", reason = msg:payload():data().reason }
    end
  end

  step("shipping")
  local shipment, err = funcs.call("app:ship_order", { order_id = order.id, address = order.address })
  if err then
    run_compensations(compensations)
    step("shipping_failed")
    return { status = "shipping_failed", error = tostring(err), compensated = #compensations }
  end

  step("completed")
  return {
    status = "completed",
    payment_id = payment.id,
    tracking = shipment.tracking,
    approved_by = approval.by,
  }
end

return { main = main }
