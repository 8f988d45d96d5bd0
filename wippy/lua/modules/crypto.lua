-- crypto: random values, HMAC, AEAD encryption, HMAC-signed JWTs, PBKDF2 and constant-time
-- comparison. Randomness, encryption and the JWT clock are commands (recorded by durable
-- hosts); the rest is pure.
local rt, natives = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local type, tostring, math_type, format = type, tostring, math.type, string.format

local MAX_RANDOM = 1024 * 1024
local MAX_ITERATIONS = 10000000
local DEFAULT_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

local M = {}

local function invalid(message)
  return nil, new_error("Invalid", message, false)
end

local function internal(message)
  return nil, new_error("Internal", message, false)
end

-- An integer argument (a float with an integral value counts), or nil.
local function integer(v)
  if math_type(v) == "integer" then return v end
  if math_type(v) == "float" then return math.tointeger(v) end
  return nil
end

local function check_length(fn, length)
  local n = integer(length)
  if not n or n <= 0 then
    return nil, format("crypto.%s: length must be a positive integer, got %s", fn, tostring(length))
  end
  if n > MAX_RANDOM then
    return nil, format("crypto.%s: length %d exceeds the maximum of %d bytes (1 MiB)", fn, n, MAX_RANDOM)
  end
  return n
end

---------------------------------------------------------------------------------------
-- Random
---------------------------------------------------------------------------------------
local random = {}
M.random = random

function random.bytes(length)
  local n, why = check_length("random.bytes", length)
  if not n then return invalid(why) end
  return call("crypto.random_bytes", n), nil
end

-- `crypto.random_bytes(n)`: the name the workflow docs use for `crypto.random.bytes`.
function M.random_bytes(length)
  local n, why = check_length("random_bytes", length)
  if not n then return invalid(why) end
  return call("crypto.random_bytes", n), nil
end

-- `length` bytes chosen from `charset` (default: ASCII letters and digits).
function random.string(length, charset)
  local n, why = check_length("random.string", length)
  if not n then return invalid(why) end
  if charset == nil then
    charset = DEFAULT_CHARSET
  elseif type(charset) ~= "string" then
    return invalid("crypto.random.string: charset must be a string, got " .. type(charset))
  elseif charset == "" then
    return invalid("crypto.random.string: charset cannot be empty")
  end
  return natives.map_charset(call("crypto.random_bytes", n), charset), nil
end

function random.uuid()
  return call("uuid.v4"), nil
end

---------------------------------------------------------------------------------------
-- HMAC
---------------------------------------------------------------------------------------
local function hmac(name)
  return function(key, data)
    local fn = "crypto.hmac." .. name
    if type(key) ~= "string" then return invalid(fn .. ": key must be a string, got " .. type(key)) end
    if type(data) ~= "string" then return invalid(fn .. ": data must be a string, got " .. type(data)) end
    if key == "" then return invalid(fn .. ": key cannot be empty") end
    return natives.hmac(name, key, data), nil
  end
end

-- Hex-encoded HMAC of `data` under `key`.
M.hmac = { sha256 = hmac("sha256"), sha512 = hmac("sha512") }

---------------------------------------------------------------------------------------
-- Encryption: AES-GCM and ChaCha20-Poly1305, output nonce(12) .. ciphertext .. tag(16).
-- Encrypting is a command (its nonce is random, so a durable host records the result);
-- decrypting is pure.
---------------------------------------------------------------------------------------
local key_sizes = {
  aes = { [16] = true, [24] = true, [32] = true, what = "16, 24, or 32 bytes" },
  chacha20 = { [32] = true, what = "32 bytes" },
}

local function aead(direction, cipher)
  local fn = "crypto." .. direction .. "." .. cipher
  local sizes = key_sizes[cipher]
  return function(data, key, aad)
    if type(data) ~= "string" then return invalid(fn .. ": data must be a string, got " .. type(data)) end
    if type(key) ~= "string" then return invalid(fn .. ": key must be a string, got " .. type(key)) end
    if not sizes[#key] then return invalid(fn .. ": key must be " .. sizes.what) end
    if type(aad) ~= "string" then aad = nil end -- (anything else is ignored, as upstream)
    if direction == "encrypt" then
      return call("crypto.encrypt", cipher, data, key, aad), nil
    end
    return natives.decrypt(cipher, data, key, aad)
  end
end

M.encrypt = { aes = aead("encrypt", "aes"), chacha20 = aead("encrypt", "chacha20") }
M.decrypt = { aes = aead("decrypt", "aes"), chacha20 = aead("decrypt", "chacha20") }

---------------------------------------------------------------------------------------
-- JWT (HS256 / HS384 / HS512)
---------------------------------------------------------------------------------------
local jwt_algs = { HS256 = true, HS384 = true, HS512 = true }

local function check_alg(fn, alg)
  if alg == nil then return "HS256" end
  if alg == "RS256" then
    return nil, new_error("Invalid", fn .. ": RS256 is not supported by this runtime " ..
      "(RSA needs the third-party `cryptography` package); use HS256, HS384 or HS512", false)
  end
  if type(alg) ~= "string" or not jwt_algs[alg] then
    return nil, new_error("Invalid", fn .. ": unsupported algorithm " .. tostring(alg) ..
      " (use HS256, HS384 or HS512)", false)
  end
  return alg
end

local jwt = {}
M.jwt = jwt

-- Sign `payload` (a claims table; `_header` adds header fields) with an HMAC secret.
function jwt.encode(payload, key, alg)
  if type(payload) ~= "table" then
    return invalid("crypto.jwt.encode: payload must be a table, got " .. type(payload))
  end
  if type(key) ~= "string" then return invalid("crypto.jwt.encode: key must be a string, got " .. type(key)) end
  if key == "" then return invalid("crypto.jwt.encode: key cannot be empty") end
  local a, err = check_alg("crypto.jwt.encode", alg)
  if not a then return nil, err end
  return natives.jwt_encode(payload, key, a)
end

local function numeric_claim(claims, name)
  local v = claims[name]
  if v ~= nil and type(v) ~= "number" then
    return nil, "crypto.jwt.verify: token has invalid claims: " .. name .. " must be a number"
  end
  return v
end

-- Verify signature and algorithm, then `exp` (required unless require_exp is false) and `nbf`.
function jwt.verify(token, key, alg, require_exp)
  if type(token) ~= "string" then return invalid("crypto.jwt.verify: token must be a string, got " .. type(token)) end
  if type(key) ~= "string" then return invalid("crypto.jwt.verify: key must be a string, got " .. type(key)) end
  if key == "" then return invalid("crypto.jwt.verify: key cannot be empty") end
  local a, err = check_alg("crypto.jwt.verify", alg)
  if not a then return nil, err end
  local claims, verr = natives.jwt_verify(token, key, a)
  if not claims then return nil, verr end
  local exp, why = numeric_claim(claims, "exp")
  if why then return internal(why) end
  local nbf, why2 = numeric_claim(claims, "nbf")
  if why2 then return internal(why2) end
  if exp == nil and require_exp ~= false then
    return internal("crypto.jwt.verify: token is missing required claim: exp")
  end
  if exp ~= nil or nbf ~= nil then
    local now = call("crypto.now")
    if exp ~= nil and now >= exp then return internal("crypto.jwt.verify: token has invalid claims: token is expired") end
    if nbf ~= nil and now < nbf then return internal("crypto.jwt.verify: token has invalid claims: token is not valid yet") end
  end
  return claims, nil
end

---------------------------------------------------------------------------------------
-- Key derivation and comparison
---------------------------------------------------------------------------------------
local pbkdf2_hashes = { sha256 = true, sha512 = true }

-- Raw PBKDF2-HMAC key bytes.
function M.pbkdf2(password, salt, iterations, key_length, hash)
  if type(password) ~= "string" or password == "" then
    return invalid("crypto.pbkdf2: password must be a non-empty string")
  end
  if type(salt) ~= "string" or salt == "" then return invalid("crypto.pbkdf2: salt must be a non-empty string") end
  local iters = integer(iterations)
  if not iters or iters <= 0 then
    return invalid("crypto.pbkdf2: iterations must be a positive integer, got " .. tostring(iterations))
  end
  if iters > MAX_ITERATIONS then
    return invalid(format("crypto.pbkdf2: iterations %d exceeds the maximum (%d)", iters, MAX_ITERATIONS))
  end
  local len = integer(key_length)
  if not len or len <= 0 then
    return invalid("crypto.pbkdf2: key length must be a positive integer, got " .. tostring(key_length))
  end
  if hash == nil then hash = "sha256" end
  if not pbkdf2_hashes[hash] then
    return invalid("crypto.pbkdf2: unsupported hash function " .. tostring(hash) .. " (use sha256 or sha512)")
  end
  return natives.pbkdf2(password, salt, iters, len, hash), nil
end

-- True when the strings are equal, in time that does not depend on where they differ.
function M.constant_time_compare(a, b)
  if type(a) ~= "string" or type(b) ~= "string" then
    raise("Invalid", "crypto.constant_time_compare: both arguments must be strings, got " ..
      type(a) .. " and " .. type(b))
  end
  return natives.compare(a, b)
end

return M
