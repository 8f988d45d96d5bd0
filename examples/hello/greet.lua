local funcs = require("funcs")
local text = require("text")

local function main(input)
  -- Call one function per language concurrently, then gather the answers.
  local futures = {}
  for i, lang in ipairs(input.langs or {}) do
    futures[i] = funcs.async("app:shout", lang)
  end
  local loud = {}
  for i, f in ipairs(futures) do
    local payload = f:channel():receive()
    loud[i] = payload:data()
  end
  return { greeting = text.greeting(input.name), languages = loud }
end

return { main = main }
