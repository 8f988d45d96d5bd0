-- logger: structured logging at debug/info/warn/error, routed to Python `logging`.
-- The module itself is the root logger; `with` and `named` derive immutable children.
-- Methods take `:` as documented; `logger.info(msg)` with a dot works too.
local rt, natives = ...
local raise = rt.raise
local type, tostring, setmetatable, next, pairs = type, tostring, setmetatable, next, pairs
local getmetatable_raw = debug.getmetatable

local Logger = rt.userdata({ __name = "wippy.logger", __metatable = "wippy.logger" })

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }

-- A logger's name and fields live in a private table: the root logger is the module value
-- every instance shares, so its own fields must not be writable.
local data_of = setmetatable({}, { __mode = "k" })
local function new_logger(name, fields)
  local logger = setmetatable({}, Logger)
  data_of[logger] = { name = name, fields = fields }
  return logger
end

local root = new_logger("", nil)

-- Resolve `self`: method calls pass a logger first; dot calls do not.
local function split(self, ...)
  if getmetatable_raw(self) == Logger then return self, ... end
  return root, self, ...
end

local function log_at(method)
  local level = LEVELS[method]
  return function(...)
    local self, message, fields = split(...)
    local mt = type(message)
    if mt == "number" then
      message = tostring(message)
    elseif mt ~= "string" then
      raise("Invalid", "logger:" .. method .. ": message must be a string, got " .. mt)
    end
    if fields ~= nil and type(fields) ~= "table" then
      raise("Invalid", "logger:" .. method .. ": fields must be a table, got " .. type(fields))
    end
    local d = data_of[self]
    natives.log(level, d.name, message, d.fields, fields)
  end
end

for method in pairs(LEVELS) do Logger[method] = log_at(method) end

-- A child logger that adds `fields` to every message (its own fields win over the parent's).
function Logger.with(...)
  local self, fields = split(...)
  if type(fields) ~= "table" then raise("Invalid", "logger:with: fields must be a table, got " .. type(fields)) end
  local d = data_of[self]
  local merged = {}
  if d.fields then for k, v in next, d.fields do merged[k] = v end end
  for k, v in next, fields do merged[k] = v end
  return new_logger(d.name, merged)
end

-- A child logger whose name is appended to the parent's ("auth", then "auth.db").
function Logger.named(...)
  local self, name = split(...)
  if type(name) ~= "string" then raise("Invalid", "logger:named: name must be a string, got " .. type(name)) end
  if name == "" then raise("Invalid", "logger:named: name cannot be empty") end
  local d = data_of[self]
  return new_logger(d.name == "" and name or (d.name .. "." .. name), d.fields)
end

rt.immutable(rt.seal_class(Logger))  -- the root logger is shared by every instance

return root
