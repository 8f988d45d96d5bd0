-- Echoes every message back to its sender until it gets "stop" (or "crash").
local function main()
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    local topic = msg:topic()
    if topic == "stop" then return "stopped" end
    if topic == "crash" then error(errors.new({ kind = "Conflict", message = "echo crashed" })) end
    process.send(msg:from(), topic, msg:payload():data())
  end
end

return { main = main }
