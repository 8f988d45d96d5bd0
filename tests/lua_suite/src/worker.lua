-- Returns its context value and arguments.
local ctx = require("ctx")

local function main(...)
  return { tenant = ctx.get("tenant"), args = { ... } }
end

return { main = main }
