-- One order, durably: charge, wait for approval or cancellation, ship (or refund).
-- It answers "status" messages with its state at any point, and keeps answering for a
-- while after it is done (order.keep, default 10m), so the API can still show it.
local funcs = require("funcs")
local time = require("time")

local function main(order)
  local state = {
    id = order.id, customer = order.customer, items = order.items, total = order.total,
    status = "charging", events = {},
  }
  local function step(status, note)
    state.status = status
    state.events[#state.events + 1] = note and (status .. ": " .. note) or status
  end

  local inbox = process.inbox()
  local function answer(msg)
    if msg:topic() == "status" then
      process.send(msg:from(), "status", state)
      return true
    end
    return false
  end

  local payment, err = funcs.call("app:charge", { customer = order.customer, amount = order.total })
  if err then
    step("payment_failed", tostring(err))
  else
    state.payment_id = payment.id
    step("awaiting_approval")
    while state.status == "awaiting_approval" do
      local msg = inbox:receive()
      if not answer(msg) then
        local data = msg:payload():data() or {}
        if msg:topic() == "approve" then
          step("approved", data.by and ("by " .. data.by) or nil)
          local shipment, serr = funcs.call("app:ship", { order_id = order.id, items = order.items })
          if serr then
            funcs.call("app:refund", payment.id)
            step("shipping_failed", tostring(serr))
          else
            state.tracking = shipment.tracking
            step("shipped", shipment.tracking)
          end
        elseif msg:topic() == "cancel" then
          funcs.call("app:refund", payment.id)
          step("canceled", data.reason)
        end
      end
    end
  end

  -- Done: keep answering status questions for a while, then end.
  local keep = time.after(order.keep or "10m")
  while true do
    local r = channel.select({ inbox:case_receive(), keep:case_receive() })
    if r.channel == keep then break end
    answer(r.value)
  end
  return state
end

return { main = main }
