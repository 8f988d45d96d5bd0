local funcs = require("funcs")

local function main()
  local out, err = funcs.call("app:greet", { name = "Test", langs = { "a", "b" } })
  assert(not err, tostring(err))
  assert(out.greeting == "Hello, Test!", out.greeting)
  assert(out.languages[2] == "B!", out.languages[2])
  local _, bad = funcs.call("app:shout", 42)
  assert(bad:kind() == errors.INVALID)
  return true
end

return { main = main }
