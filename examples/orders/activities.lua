-- Activities for the order workflow. In a real app these would call payment and shipping
-- services; here they compute deterministic answers so the demo is reproducible.
-- A failed activity is retried (as on Temporal) unless its error says retryable = false:
-- a declined card or a missing address will not get better by trying again.
local M = {}

function M.validate(order)
  if type(order.items) ~= "table" or #order.items == 0 then
    return nil, errors.new({ kind = errors.INVALID, message = "order " .. tostring(order.id) .. " has no items", retryable = false })
  end
  return true
end

function M.reserve(items)
  return { id = "res-" .. #items .. "-" .. items[1] }
end

function M.release(reservation_id)
  print("  compensation: released " .. reservation_id)
  return true
end

function M.charge(payment)
  if payment.amount > 1000 then
    return nil, errors.new({ kind = errors.PERMISSION_DENIED, message = "card declined for " .. payment.amount, retryable = false })
  end
  return { id = "pay-" .. payment.customer .. "-" .. payment.amount }
end

function M.refund(payment_id)
  print("  compensation: refunded " .. payment_id)
  return true
end

function M.ship(request)
  if request.address == nil then
    return nil, errors.new({ kind = errors.INVALID, message = "no shipping address for order " .. request.order_id, retryable = false })
  end
  return { tracking = "TRK-" .. request.order_id }
end

return M
