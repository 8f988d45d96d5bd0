-- hash: MD5/SHA digests, HMACs and FNV-1 hashes. Every function returns `value, nil`, or
-- `nil, err` (Invalid) when an argument is not a string; numbers are not coerced.
local rt, natives = ...
local new_error = rt.new_error
local type = type

local M = {}

local function not_string(fn, what, value)
  return nil, new_error("Invalid", "hash." .. fn .. ": " .. what .. " must be a string, got " .. type(value), false)
end

for _, name in ipairs({ "md5", "sha1", "sha256", "sha512" }) do
  local digest = natives.digest
  -- hex (lowercase) by default, the raw bytes when `raw` is truthy
  M[name] = function(data, raw)
    if type(data) ~= "string" then return not_string(name, "data", data) end
    return digest(name, data, raw and true or false), nil
  end
  local mac = natives.hmac
  M["hmac_" .. name] = function(data, secret, raw)
    if type(data) ~= "string" then return not_string("hmac_" .. name, "data", data) end
    if type(secret) ~= "string" then return not_string("hmac_" .. name, "secret", secret) end
    return mac(name, data, secret, raw and true or false), nil
  end
end

-- FNV-1 (not 1a): an integer; fnv64 is the signed 64-bit integer with the hash's bits.
function M.fnv32(data)
  if type(data) ~= "string" then return not_string("fnv32", "data", data) end
  return natives.fnv32(data), nil
end

function M.fnv64(data)
  if type(data) ~= "string" then return not_string("fnv64", "data", data) end
  return natives.fnv64(data), nil
end

return M
