-- Activities: where a real app would call a payment provider and a warehouse.
local M = {}

function M.charge(payment)
  if type(payment.amount) ~= "number" or payment.amount <= 0 then
    return nil, errors.new({ kind = errors.INVALID, message = "amount must be a positive number" })
  end
  if payment.amount > 10000 then
    return nil, errors.new({ kind = errors.PERMISSION_DENIED, message = "card declined" })
  end
  return { id = "pay-" .. tostring(payment.customer) .. "-" .. tostring(payment.amount) }
end

function M.refund(payment_id)
  return { refunded = payment_id }
end

function M.ship(request)
  return { tracking = "TRK-" .. request.order_id }
end

return M
