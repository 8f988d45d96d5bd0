-- The compensation pattern (saga) of the workflow docs.
local funcs = require("funcs")

local W = {}

local function run_compensations(compensations)
  for _, comp in ipairs(compensations) do
    funcs.call(comp.action, comp.args)
  end
end

function W.saga(order)
  local compensations = {}

  local reservation, err = funcs.call("conf:reserve_inventory", order.items)
  if err then
    return { status = "failed", step = "inventory", error = tostring(err) }
  end
  table.insert(compensations, 1, { action = "conf:release_inventory", args = reservation.id })

  local payment, err2 = funcs.call("conf:charge_payment", order.payment)
  if err2 then
    run_compensations(compensations)
    return { status = "failed", step = "payment", error = err2:message() }
  end
  table.insert(compensations, 1, { action = "conf:refund_payment", args = payment.id })

  local shipment, err3 = funcs.call("conf:ship_order", order.shipping)
  if err3 then
    run_compensations(compensations)
    return { status = "failed", step = "shipping", error = err3:message() }
  end

  return { status = "completed", tracking = shipment.tracking }
end

return W
