-- base64: standard (RFC 4648, padded) Base64 encoding of strings, binary data included.
local rt, natives = ...
local new_error, type = rt.new_error, type

local M = {}

local function not_string(fn, v)
  return nil, new_error("Invalid", "base64." .. fn .. ": string expected, got " .. type(v), false)
end

function M.encode(data)
  if type(data) ~= "string" then return not_string("encode", data) end
  if data == "" then return "", nil end
  return natives.encode(data), nil
end

-- Decode Base64 text back to bytes; line breaks are ignored, anything else invalid is an error.
function M.decode(data)
  if type(data) ~= "string" then return not_string("decode", data) end
  if data == "" then return "", nil end
  return natives.decode(data)
end

return M
