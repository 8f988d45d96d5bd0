-- ctx: read the request-scoped context values of the running actor.
local rt = ...
local call, raise = rt.call, rt.raise

local M = {}

function M.get(key)
  if type(key) ~= "string" or key == "" then
    return nil, rt.new_error("Invalid", "ctx.get: key must be a non-empty string", false)
  end
  return call("ctx.get", key)
end

function M.all()
  return call("ctx.all")
end

return M
