-- yaml: encode Lua tables as YAML and decode YAML text. Errors are returned (`nil, err`).
local rt, natives = ...
local new_error = rt.new_error
local type = type

local M = {}

local function invalid(message) return nil, new_error("Invalid", message, false) end

-- yaml.encode(tbl, opts?): opts.field_order (keys written first, in that order, in every
-- mapping) and opts.sort_unordered (the others are sorted either way, as upstream's are).
function M.encode(value, opts)
  if type(value) ~= "table" then return invalid("yaml.encode: table expected, got " .. type(value)) end
  local order, with_options = nil, false
  if type(opts) == "table" then
    with_options = true
    local fo = opts.field_order
    if type(fo) == "table" then
      order = {}
      for i = 1, #fo do
        if type(fo[i]) == "string" then order[#order + 1] = fo[i] end
      end
      if #order == 0 and opts.sort_unordered ~= true then with_options = false end
    elseif opts.sort_unordered ~= true then
      with_options = false
    end
  end
  local ok, out = natives.encode(value, order, with_options)
  if not ok then return nil, out end
  return out, nil
end

-- yaml.decode(text): any YAML value (tables, strings, numbers, booleans; null is nil).
function M.decode(text)
  if type(text) ~= "string" then return invalid("yaml.decode: string expected, got " .. type(text)) end
  if text == "" then return invalid("yaml.decode: input cannot be empty") end
  local ok, out = natives.decode(text)
  if not ok then return nil, out end
  return out, nil
end

return M
