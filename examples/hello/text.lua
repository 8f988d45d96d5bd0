local M = {}

function M.greeting(name)
  return "Hello, " .. (name or "world") .. "!"
end

return M
