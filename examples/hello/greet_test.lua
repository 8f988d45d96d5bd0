local funcs = require("funcs")

local function main()
  local out, err = funcs.call("app:greet", { name = "Test", langs = { "a", "b" } })
  assert(not err, tostring(err))
  assert(out.greeting == "Hello, Test!", out.greeting)
  assert(out.languages[2] == "B!", out.languages[2])
  local _, bad = funcs.call("app:shout", 42)
  assert(bad:kind() == errors.INVALID)
  local _, wrong = funcs.call("app:greet", "Ada")  -- a string, not {name = "Ada"}
  assert(wrong and wrong:kind() == errors.INVALID, tostring(wrong))
  return true
end

return { main = main }
