-- env: environment variables declared as env.variable entries, kept in env.storage.* entries.
local rt = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local type, tostring = type, tostring

local M = {}

local function string_arg(fn, i, name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  raise("Invalid", "env." .. fn .. ": bad argument #" .. i .. " (" .. name .. "): string expected, got " .. t)
end

local function empty_key() return nil, new_error("Invalid", "empty key", false) end

-- The value of a variable (by public name, or entry ID): value, nil; or nil, err.
function M.get(key)
  key = string_arg("get", 1, "key", key)
  if key == "" then return empty_key() end
  return call("env.get", key)
end

-- Write a variable through its storage: true, nil; or nil, err (read-only, not found).
function M.set(key, value)
  key = string_arg("set", 1, "key", key)
  value = string_arg("set", 2, "value", value)
  if key == "" then return empty_key() end
  return call("env.set", key, value)
end

-- Every value the storages hold (as upstream: with an os storage, the process environment).
function M.get_all()
  return call("env.get_all")
end

return M
