-- uuid: generate (v1, v3, v4, v5, v7), validate, inspect and format UUIDs.
-- Random and time-based ids come from commands so durable hosts can replay them.
local rt, natives = ...
local call, new_error = rt.call, rt.new_error
local type, format = type, string.format

local M = {}

local function invalid(message)
  return nil, new_error("Invalid", message, false)
end

local function quoted(s)
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return format("%q", s)
end

function M.v1() return call("uuid.v1"), nil end
function M.v4() return call("uuid.v4"), nil end
function M.v7() return call("uuid.v7"), nil end

local function name_based(fn, version, namespace, name)
  if type(namespace) ~= "string" or type(name) ~= "string" then
    return invalid(format("uuid.%s: namespace and name must be strings, got %s and %s", fn, type(namespace), type(name)))
  end
  local id = natives.name_based(namespace, name, version)
  if not id then return invalid("uuid." .. fn .. ": invalid namespace UUID " .. quoted(namespace)) end
  return id, nil
end

-- Name-based UUIDs: the same namespace and name always give the same id.
function M.v3(namespace, name) return name_based("v3", 3, namespace, name) end
function M.v5(namespace, name) return name_based("v5", 5, namespace, name) end

-- True when `input` is a UUID in any accepted form (canonical, braced, urn:uuid:, 32 hex).
function M.validate(input)
  if type(input) ~= "string" then return false, nil end
  return natives.canonical(input) ~= nil, nil
end

local function inspect(fn, id)
  if type(id) ~= "string" then
    return invalid("uuid." .. fn .. ": input must be a string, got " .. type(id))
  end
  local info = natives.info(id)
  if not info then return invalid("uuid." .. fn .. ": invalid UUID format: " .. quoted(id)) end
  return info
end

function M.version(id)
  local info, err = inspect("version", id)
  if not info then return nil, err end
  return info.version, nil
end

-- "RFC4122", "NCS", "Microsoft" or "Future" (the reserved variants of RFC 4122 4.1.1).
function M.variant(id)
  local info, err = inspect("variant", id)
  if not info then return nil, err end
  return info.variant, nil
end

-- {version, variant, timestamp (v1/v7, Unix seconds), node (v1, hex)}.
function M.parse(id)
  local info, err = inspect("parse", id)
  if not info then return nil, err end
  return info, nil
end

local formats = {
  standard = function(s) return s end,
  simple = function(s) return (s:gsub("-", "")) end,
  urn = function(s) return "urn:uuid:" .. s end,
}

-- Re-format a UUID as "standard" (default), "simple" (32 hex) or "urn".
function M.format(id, style)
  if type(id) ~= "string" then
    return invalid("uuid.format: input must be a string, got " .. type(id))
  end
  if type(style) ~= "string" then style = "standard" end
  local canonical = natives.canonical(id)
  if not canonical then return invalid("uuid.format: invalid UUID format: " .. quoted(id)) end
  local f = formats[style]
  if not f then
    return invalid("uuid.format: unsupported format " .. quoted(style) .. " (use standard, simple or urn)")
  end
  return f(canonical), nil
end

return M
