local funcs = require("funcs")
local text = require("text")

-- The input must be {name = string?, langs = {string...}?}: anything else is an Invalid
-- error naming what was wrong, not a silently empty greeting.
local function check(input)
  if type(input) ~= "table" then
    return errors.new({ kind = errors.INVALID, retryable = false,
      message = "expected an object {name, langs}, got a " .. type(input) })
  end
  if input.name ~= nil and type(input.name) ~= "string" then
    return errors.new({ kind = errors.INVALID, retryable = false,
      message = "name must be a string, got a " .. type(input.name) })
  end
  if input.langs ~= nil and type(input.langs) ~= "table" then
    return errors.new({ kind = errors.INVALID, retryable = false,
      message = "langs must be a list of strings, got a " .. type(input.langs) })
  end
  return nil
end

local function main(input)
  local bad = check(input)
  if bad then return nil, bad end
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
