-- What workflows may not do, and what they get instead.
local time = require("time")
local uuid = require("uuid")

local W = {}

local function refused(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return { ok = true } end
  return { ok = false, kind = err:kind(), message = err:message() }
end

function W.guards()
  return {
    os_time = refused(os.time),
    math_random = refused(math.random, 1, 10),
    math_randomseed = refused(math.randomseed, 42),
    -- the replacements work
    now = time.now():unix() > 0,
    uuid = uuid.validate(uuid.v4()),
  }
end

-- Key order of pairs() over a table with many string keys.
function W.pairs_order(n)
  local t = {}
  for i = 1, n do
    t["key_" .. i] = i
    t["k" .. (i * 7919 % 1009)] = true
  end
  local order = {}
  for k in pairs(t) do order[#order + 1] = k end
  return order
end

return W
