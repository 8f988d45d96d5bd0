-- json: encode Lua values as JSON text and decode JSON text into Lua values.
--
-- Both directions are plain Lua: only Lua sees table identity (cycles), the integer/float
-- subtype and the exact key types, and a hand-written parser can report where it stopped
-- (line, column, byte). Schema validation is done in Python (json.py) on converted data.
local rt, natives = ...
local new_error = rt.new_error
local type, next, tostring, tonumber = type, next, tostring, tonumber
local pcall, error, setmetatable = pcall, error, setmetatable
local getmetatable_raw = debug.getmetatable
local math_type, huge = math.type, math.huge
local byte, sub, find, format, gsub, char = string.byte, string.sub, string.find, string.format,
  string.gsub, string.char
local concat, sort = table.concat, table.sort
local utf8_len, utf8_char = utf8.len, utf8.char

local M = {}

local ENCODE_MAX_DEPTH = 128   -- documented upstream limit
local DECODE_MAX_DEPTH = 128   -- same bound as upstream; also caps Lua stack use

-- Decoded empty JSON objects, so that `{}` survives a decode/encode round trip (a plain
-- empty Lua table encodes as `[]`). Weak keys: the mark goes away with the table.
local empty_objects = setmetatable({}, { __mode = "k" })
-- Length of decoded arrays that hold nulls (holes in Lua), so they encode back with nulls.
local holey_arrays = setmetatable({}, { __mode = "k" })

-- Raised inside the encoder/parser and caught at the public entry point.
local Fail = {}

local function fail(message, pos)
  error(setmetatable({ message = message, pos = pos }, Fail), 0)
end

---------------------------------------------------------------------------------------
-- Encoding
---------------------------------------------------------------------------------------
local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\127"] = "\\u007f",
}
for i = 0, 31 do
  local c = char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end

-- Plain ASCII without anything to escape (most keys and short values) is copied as is.
local function quote(s)
  if not find(s, '[%c"\\\128-\255]') then return '"' .. s .. '"' end
  if not utf8_len(s) then s = natives.fix_utf8(s) end  -- invalid bytes become U+FFFD
  return '"' .. (gsub(s, '[%c"\\]', escapes)) .. '"'
end

-- Object keys repeat from one document to the next: each is quoted once (bounded).
local quoted_keys, quoted_count = {}, 0
local function quote_key(k)
  local q = quoted_keys[k]
  if q == nil then
    q = quote(k)
    if quoted_count >= 4096 then quoted_keys, quoted_count = {}, 0 end
    quoted_keys[k], quoted_count = q, quoted_count + 1
  end
  return q
end

local function number(v)
  if math_type(v) == "integer" then return tostring(v) end
  if v ~= v or v == huge or v == -huge then return "null" end
  local s
  for precision = 15, 17 do  -- shortest text that reads back as the same float
    s = format("%." .. precision .. "g", v)
    if tonumber(s) == v then break end
  end
  if not find(s, "[%.eEn]") then s = s .. ".0" end  -- keep it a float when read back
  return s
end

-- Where the encoder is: trail[d] is the key that led to depth d (the value is depth 1).
-- Its text ("value.items[2].name") is made only for an error message.
local function path_of(trail, depth)
  local parts = { "value" }
  for d = 2, depth do
    local k = trail[d]
    parts[d] = type(k) == "string" and "." .. k or "[" .. tostring(k) .. "]"
  end
  return concat(parts)
end

-- The encoder appends pieces to `out`; each step takes and returns how many it holds.
-- Encoding never yields nor runs user code, so one set of work tables serves every call:
-- `out` (only its first n pieces count), `trail`, and `open`: open[d] is the table being
-- encoded at depth d, looked at only past the depth limit, to tell a cycle from deep data.
local out, trail = {}, {}
local open = setmetatable({}, { __mode = "v" })
local encode_value

local function encode_table(t, depth, n)
  if depth > ENCODE_MAX_DEPTH then
    local at = {}  -- table -> the first depth it is open at
    for d = 1, depth - 1 do
      local u = open[d]
      if u ~= nil and at[u] then  -- where the path comes back to a table it is inside of
        fail("cyclic table at " .. path_of(trail, d) .. " (a table that contains itself cannot be encoded)")
      end
      if u ~= nil then at[u] = d end
    end
    fail("table at " .. path_of(trail, depth) .. " is nested deeper than " .. ENCODE_MAX_DEPTH .. " levels")
  end
  if getmetatable_raw(t) ~= nil then
    local vtype = rt.value_type_of(t)
    if vtype and vtype ~= "array" then
      fail("cannot encode a value of type " .. vtype .. " at " .. path_of(trail, depth) .. " to JSON")
    end
  end
  local keys, count, max_index, odd = nil, 0, 0, nil
  for k in next, t do
    count = count + 1
    if type(k) == "string" then
      if keys == nil then keys = {} end
      keys[#keys + 1] = k
    elseif math_type(k) == "integer" and k >= 1 then
      if k > max_index then max_index = k end
    elseif odd == nil then
      odd = k
    end
  end
  local strings = keys and #keys or 0
  local holey = holey_arrays[t]
  local child = depth + 1
  if count == 0 and not holey then
    n = n + 1
    out[n] = empty_objects[t] and "{}" or "[]"
    return n
  elseif odd ~= nil then
    fail("table at " .. path_of(trail, depth) .. " has a key of type " .. (math_type(odd) or type(odd)) .. " (" ..
      tostring(odd) .. "); JSON keys must be strings or array indexes 1..n")
  end
  open[depth] = t
  if strings == count and keys ~= nil then
    if strings > 1 then sort(keys) end
    for j = 1, strings do
      local k = keys[j]
      out[n + 1] = j == 1 and "{" or ","
      out[n + 2] = quote_key(k)
      out[n + 3] = ":"
      trail[child] = k
      n = encode_value(t[k], child, n + 3)
    end
    n = n + 1
    out[n] = "}"
  elseif strings == 0 then
    local length = count
    if holey and max_index <= holey then
      length = holey  -- a decoded array whose nulls are holes
    elseif max_index ~= count then
      fail(format("sparse array at %s: highest index is %d but it has only %d elements", path_of(trail, depth),
        max_index, count))
    end
    for j = 1, length do
      n = n + 1
      out[n] = j == 1 and "[" or ","
      trail[child] = j
      n = encode_value(t[j], child, n)
    end
    n = n + 1
    out[n] = length == 0 and "[]" or "]"
  else
    fail("table at " .. path_of(trail, depth) .. " mixes array indexes and string keys")
  end
  open[depth] = nil
  return n
end

encode_value = function(v, depth, n)
  local t = type(v)
  if t == "string" then
    out[n + 1] = quote(v)
  elseif t == "number" then
    out[n + 1] = number(v)
  elseif t == "boolean" then
    out[n + 1] = v and "true" or "false"
  elseif v == nil then
    out[n + 1] = "null"
  elseif t == "table" then
    return encode_table(v, depth, n)
  else
    fail("cannot encode " .. (t == "thread" and "a coroutine" or "a " .. t) .. " at " .. path_of(trail, depth)
      .. " to JSON")
  end
  return n + 1
end

-- Encode any Lua value as JSON. Object keys are sorted so the text is deterministic.
function M.encode(value)
  local ok, n = pcall(encode_value, value, 1, 0)
  if ok then
    local text = concat(out, "", 1, n)
    if n > 4096 then out = {} end  -- (a large document's pieces are not kept)
    return text, nil
  end
  local err = n
  if getmetatable_raw(err) ~= Fail then error(err, 0) end
  return nil, new_error("Internal", "json.encode: " .. err.message, false, { operation = "encode" })
end

---------------------------------------------------------------------------------------
-- Decoding
---------------------------------------------------------------------------------------
local simple_escapes = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}

local function describe_at(s, i)
  local c = byte(s, i)
  if c == nil then return "end of input" end
  if c >= 32 and c < 127 then return format("character '%s'", char(c)) end
  return format("byte 0x%02x", c)
end

local function skip_ws(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local function hex4(s, i)
  local h = sub(s, i, i + 3)
  if not find(h, "^%x%x%x%x$") then fail("invalid \\u escape in string", i - 2) end
  return tonumber(h, 16)
end

-- `i` points just past the opening quote; returns the string and the index after it.
local function parse_string(s, i)
  local parts, np = nil, 0
  local start = i
  while true do
    local j = find(s, '[\0-\31"\\]', i)
    if not j then fail("unterminated string", start - 1) end
    local c = byte(s, j)
    if c == 34 then
      if not parts then return sub(s, start, j - 1), j + 1 end
      np = np + 1; parts[np] = sub(s, i, j - 1)
      return concat(parts, "", 1, np), j + 1
    end
    if c ~= 92 then fail("control character in string (must be escaped)", j) end
    parts = parts or {}
    np = np + 1; parts[np] = sub(s, i, j - 1)
    local e = byte(s, j + 1)
    local simple = simple_escapes[e]
    if simple then
      np = np + 1; parts[np] = simple
      i = j + 2
    elseif e == 117 then  -- \uXXXX, with surrogate pairs
      local cp = hex4(s, j + 2)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        if sub(s, i, i + 1) == "\\u" then
          local lo = hex4(s, i + 2)
          if lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            i = i + 6
          else
            cp = 0xFFFD
          end
        else
          cp = 0xFFFD
        end
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        cp = 0xFFFD
      end
      np = np + 1; parts[np] = utf8_char(cp)
    else
      fail("invalid escape in string", j)
    end
  end
end

local function parse_number(s, i)
  local _, e = find(s, "^-?%d+", i)
  if not e then fail("invalid number", i) end
  if find(s, "^-?0%d", i) then fail("invalid number (leading zero)", i) end
  local is_float = false
  if byte(s, e + 1) == 46 then  -- .
    local _, fe = find(s, "^%d+", e + 2)
    if not fe then fail("invalid number (digits expected after '.')", e + 2) end
    e, is_float = fe, true
  end
  local x = byte(s, e + 1)
  if x == 101 or x == 69 then  -- e E
    local _, xe = find(s, "^[-+]?%d+", e + 2)
    if not xe then fail("invalid number (digits expected in exponent)", e + 2) end
    e, is_float = xe, true
  end
  local text = sub(s, i, e)
  local v = tonumber(text)  -- an integer when it fits in 64 bits, else a float
  if is_float then v = v + 0.0 end
  if v == huge or v == -huge then fail("number out of range", i) end
  return v, e + 1
end

local parse_value

local function parse_array(s, i, depth)
  local t, n = {}, 0
  i = skip_ws(s, i)
  if byte(s, i) == 93 then return t, i + 1 end
  while true do
    local v
    v, i = parse_value(s, i, depth)
    n = n + 1
    if v == nil then holey_arrays[t] = true else t[n] = v end
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 93 then
      if holey_arrays[t] then holey_arrays[t] = n end
      return t, i + 1
    end
    if c ~= 44 then fail("expected ',' or ']' in array, found " .. describe_at(s, i), i) end
    i = i + 1
  end
end

local function parse_object(s, i, depth)
  local t = {}
  i = skip_ws(s, i)
  if byte(s, i) == 125 then
    empty_objects[t] = true
    return t, i + 1
  end
  while true do
    if byte(s, i) ~= 34 then fail("expected a string key in object, found " .. describe_at(s, i), i) end
    local k
    k, i = parse_string(s, i + 1)
    i = skip_ws(s, i)
    if byte(s, i) ~= 58 then fail("expected ':' after object key, found " .. describe_at(s, i), i) end
    local v
    v, i = parse_value(s, i + 1, depth)
    t[k] = v
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 125 then
      if next(t) == nil then empty_objects[t] = true end  -- only null members
      return t, i + 1
    end
    if c ~= 44 then fail("expected ',' or '}' in object, found " .. describe_at(s, i), i) end
    i = skip_ws(s, i + 1)
  end
end

parse_value = function(s, i, depth)
  i = skip_ws(s, i)
  local c = byte(s, i)
  if c == 34 then return parse_string(s, i + 1) end
  if c == 123 or c == 91 then
    if depth >= DECODE_MAX_DEPTH then fail("nesting deeper than " .. DECODE_MAX_DEPTH .. " levels", i) end
    if c == 123 then return parse_object(s, i + 1, depth + 1) end
    return parse_array(s, i + 1, depth + 1)
  end
  if c == 45 or (c and c >= 48 and c <= 57) then return parse_number(s, i) end
  if c == 116 and sub(s, i, i + 3) == "true" then return true, i + 4 end
  if c == 102 and sub(s, i, i + 4) == "false" then return false, i + 5 end
  if c == 110 and sub(s, i, i + 3) == "null" then return nil, i + 4 end
  fail("unexpected " .. describe_at(s, i), i)
end

local function position(s, pos)
  local line, line_start = 1, 1
  for nl in s:sub(1, pos - 1):gmatch("()\n") do
    line, line_start = line + 1, nl + 1
  end
  return line, pos - line_start + 1
end

local function decode_document(s)
  local v, i = parse_value(s, 1, 0)
  i = skip_ws(s, i)
  if i <= #s then fail("unexpected " .. describe_at(s, i) .. " after the JSON value", i) end
  return v
end

-- Decode JSON text. Arrays become sequences, objects string-keyed tables, null nil;
-- integers that fit in 64 bits stay integers.
function M.decode(str)
  if type(str) ~= "string" then
    return nil, new_error("Invalid", "json.decode: string expected, got " .. type(str), false,
      { operation = "decode" })
  end
  if str == "" then
    return nil, new_error("Invalid", "json.decode: empty string is not valid JSON", false, { operation = "decode" })
  end
  local ok, v = pcall(decode_document, str)
  if ok then return v, nil end
  if getmetatable_raw(v) ~= Fail then error(v, 0) end
  local pos = v.pos or (#str + 1)
  local line, column = position(str, pos)
  return nil, new_error("Internal",
    format("json.decode: %s at line %d, column %d (byte %d)", v.message, line, column, pos), false,
    { operation = "decode", line = line, column = column, offset = pos })
end

---------------------------------------------------------------------------------------
-- Schema validation (Python side)
---------------------------------------------------------------------------------------
local function check_schema(fn, schema)
  if schema == nil then return new_error("Invalid", "json." .. fn .. ": schema is required", false) end
  local t = type(schema)
  if t ~= "table" and t ~= "string" and t ~= "boolean" then
    return new_error("Invalid", "json." .. fn .. ": schema must be a table or a JSON string, got " .. t, false)
  end
end

-- Validate a Lua value against a JSON Schema; returns true, or false and an INVALID error.
function M.validate(schema, data)
  local err = check_schema("validate", schema)
  if err then return false, err end
  if data == nil then  -- as upstream: nothing to validate is an error, not a schema mismatch
    return false, new_error("Invalid", "json.validate: data is required", false)
  end
  return natives.validate(schema, data)
end

-- Validate JSON text against a schema without decoding it into Lua.
function M.validate_string(schema, json_str)
  local err = check_schema("validate_string", schema)
  if err then return false, err end
  if type(json_str) ~= "string" then
    return false, new_error("Invalid", "json.validate_string: JSON text must be a string, got " .. type(json_str), false)
  end
  return natives.validate_string(schema, json_str)
end

-- For other modules (http: body_json, write_json), which load before this one.
rt.json_encode, rt.json_decode = M.encode, M.decode

return M
