-- A chain of linked processes: each links a next one; the last crashes on "go".
local function main(reporter, depth)
  if depth > 1 then process.spawn_linked("suite:chain", "suite:host", reporter, depth - 1) end
  process.send(reporter, "ready", depth)
  process.inbox():receive()
  error("end of the chain")
end

return { main = main }
