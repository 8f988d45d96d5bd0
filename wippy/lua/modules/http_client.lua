-- http_client: outgoing HTTP requests (aiohttp underneath; wippy/actors/commands/http_client.py).
--
-- Requests are commands, so they block only the calling coroutine. Options with a wrong
-- type are ignored, as upstream. The response is a table (status_code, url, body,
-- body_size, headers, cookies, stream); durable workflows have no http_client commands:
-- call it from an activity.
local rt, natives = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local type, pairs, ipairs, setmetatable, tostring, rawget = type, pairs, ipairs, setmetatable, tostring, rawget
local getmetatable_raw = debug.getmetatable
local math_type = math.type

local M = {}

-- Responses are plain tables, as upstream. The docs' activity examples also call
-- `response:status()` and `response:body()`: `status` is a method here, and `body` (the
-- body string, absent when the body is empty) may be called on its response.
local Methods = {}
local ResponseMT = { __index = Methods, __metatable = false }
function Methods.status(self) return rawget(self, "status_code") end

local string_mt = getmetatable_raw("")
string_mt.__call = function(s, self)
  if getmetatable_raw(self) == ResponseMT and rawget(self, "body") == s then return s end
  error("attempt to call a string value", 2)
end

local function strings(t)
  if type(t) ~= "table" then return nil end
  local out, any = {}, false
  for k, v in pairs(t) do
    if type(k) == "string" then
      local tv = type(v)
      if tv == "string" then out[k], any = v, true end  -- upstream drops numbers: quote them
    end
  end
  return any and out or nil
end

local function seconds(v)
  if type(v) == "number" then return v > 0 and v or nil end
  if type(v) == "string" then
    local s = natives.seconds(v)
    if s and s > 0 then return s end
  end
  return nil
end

local function files(list)
  if type(list) ~= "table" then return nil end
  local out = {}
  for _, f in ipairs(list) do
    if type(f) == "table" and type(f.name) == "string" and type(f.content) == "string" then
      out[#out + 1] = { name = f.name, filename = type(f.filename) == "string" and f.filename or nil,
        content = f.content }
    end
  end
  return out[1] and out or nil
end

-- Only the options upstream reads, with the types it accepts; the rest is dropped.
local function clean(opts)
  if type(opts) ~= "table" then return nil end
  local auth = opts.auth
  return {
    headers = strings(opts.headers), query = strings(opts.query), cookies = strings(opts.cookies),
    form = strings(opts.form), files = files(opts.files),
    body = type(opts.body) == "string" and opts.body ~= "" and opts.body or nil,
    timeout = seconds(opts.timeout),
    auth = type(auth) == "table" and type(auth.user) == "string" and { user = auth.user,
      pass = type(auth.pass) == "string" and auth.pass or "" } or nil,
    stream = opts.stream == true or nil,
    max_response_body = math_type(opts.max_response_body) and opts.max_response_body > 0
      and opts.max_response_body or nil,
  }
end

local function response(resp, err, handle)
  if resp == nil then return nil, err end
  if handle ~= nil then resp.stream = rt.new_stream("http_client.read", handle, nil) end
  return setmetatable(resp, ResponseMT), nil
end

local function check_url(fn, url)
  if type(url) ~= "string" or url == "" then
    raise("Invalid", "http_client." .. fn .. ": URL must be a non-empty string")
  end
end

local function send(fn, method, url, opts)
  check_url(fn, url)
  return response(call("http_client.request", method, url, clean(opts)))
end

function M.request(method, url, opts)
  if type(method) ~= "string" or method == "" then
    raise("Invalid", "http_client.request: method must be a non-empty string")
  end
  return send("request", method:upper(), url, opts)
end

for _, name in ipairs({ "get", "post", "put", "delete", "head", "patch" }) do
  local method = name:upper()
  M[name] = function(url, opts) return send(name, method, url, opts) end
end

function M.request_batch(requests)
  if type(requests) ~= "table" or requests[1] == nil then
    raise("Invalid", "http_client.request_batch: expects a non-empty array of {method, url, options?}")
  end
  local items = {}
  for i, r in ipairs(requests) do
    if type(r) ~= "table" then return nil, new_error("Invalid", "each request must be a table", false) end
    if type(r[1]) ~= "string" then return nil, new_error("Invalid", "method must be a string", false) end
    if type(r[2]) ~= "string" then return nil, new_error("Invalid", "URL must be a string", false) end
    local opts = clean(r[3])
    if opts and opts.stream then
      return nil, new_error("Invalid", "streaming is not supported in batch requests", false)
    end
    items[i] = { r[1]:upper(), r[2], opts or false }
  end
  for _, item in ipairs(items) do if item[3] == false then item[3] = nil end end
  local responses, errors = call("http_client.batch", items)
  for i, resp in pairs(responses) do setmetatable(resp, ResponseMT) end
  return responses, errors
end

function M.encode_uri(s)
  if type(s) ~= "string" then raise("Invalid", "http_client.encode_uri: string expected") end
  return natives.encode_uri(s)
end

function M.decode_uri(s)
  if type(s) ~= "string" then raise("Invalid", "http_client.decode_uri: string expected") end
  local out = natives.decode_uri(s)
  if out == nil then return nil, new_error("Invalid", "invalid URL escape in " .. s, false) end
  return out, nil
end

return M
