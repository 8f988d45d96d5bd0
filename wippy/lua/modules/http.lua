-- http: the request an HTTP endpoint's function answers, and its response.
--
-- http.request() / http.response() work only inside the function an http.endpoint called
-- (elsewhere: nil, err Internal "no HTTP request context found"). The request's accessors
-- are commands (http.req, http.body, http.read) answered from the request the server
-- attached to this call (wippy/actors/commands/http.py); the response is built in Lua (see
-- Response below). Request and Response objects are plain data with a class metatable;
-- all objects of one call share the call's state.
local rt = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local co_running = coroutine.running
local type, tostring, setmetatable, pairs, ipairs = type, tostring, setmetatable, pairs, ipairs
local getmetatable_raw = debug.getmetatable
local math_type, string_format = math.type, string.format

local M = {}

M.METHOD = { GET = "GET", POST = "POST", PUT = "PUT", DELETE = "DELETE", PATCH = "PATCH", HEAD = "HEAD",
  OPTIONS = "OPTIONS" }
M.STATUS = {
  OK = 200, CREATED = 201, ACCEPTED = 202, NO_CONTENT = 204, PARTIAL_CONTENT = 206,
  MOVED_PERMANENTLY = 301, FOUND = 302, SEE_OTHER = 303, NOT_MODIFIED = 304, TEMPORARY_REDIRECT = 307,
  PERMANENT_REDIRECT = 308, BAD_REQUEST = 400, UNAUTHORIZED = 401, PAYMENT_REQUIRED = 402, FORBIDDEN = 403,
  NOT_FOUND = 404, METHOD_NOT_ALLOWED = 405, NOT_ACCEPTABLE = 406, CONFLICT = 409, GONE = 410,
  UNPROCESSABLE = 422, TOO_MANY_REQUESTS = 429, INTERNAL_ERROR = 500, INTERNAL_SERVER_ERROR = 500,
  NOT_IMPLEMENTED = 501, BAD_GATEWAY = 502, SERVICE_UNAVAILABLE = 503, GATEWAY_TIMEOUT = 504,
  VERSION_NOT_SUPPORTED = 505,
}
M.CONTENT = { JSON = "application/json", FORM = "application/x-www-form-urlencoded",
  MULTIPART = "multipart/form-data", TEXT = "text/plain", STREAM = "application/octet-stream",
  HTML = "text/html" }
M.TRANSFER = { CHUNKED = "chunked", SSE = "sse" }
M.ERROR = { PARSE_FAILED = "PARSE_FAILED", INVALID_STATE = "INVALID_STATE", WRITE_FAILED = "WRITE_FAILED",
  STREAM_ERROR = "STREAM_ERROR" }

local RequestMT, Request = rt.class("wippy.http.request")
local ResponseMT, Response = rt.class("wippy.http.response")
local StreamMT, Stream = rt.class("wippy.stream")

RequestMT.__tostring = function(r) return string_format("http.Request{method=%s, path=%s}", r._method, r._path) end
ResponseMT.__tostring = function() return "http.Response{}" end
rt.copies_as_nil(RequestMT)  -- a handler may end with `return http.response():...`
rt.copies_as_nil(ResponseMT)
StreamMT.__tostring = function() return "stream.Stream{}" end

local function arg_error(fn, n, expected, got)
  raise("Invalid", string_format("%s: bad argument #%d (%s expected, got %s)", fn, n, expected, type(got)))
end

local function check(self, mt, fn)
  if getmetatable_raw(self) ~= mt then
    raise("Invalid", fn .. " must be called with ':' on the object (e.g. req:" .. fn:match("[^.:]+$") .. "())")
  end
end

-- A positive integer option, else the default (nil: the server's default).
local function option(opts, key)
  if type(opts) ~= "table" then return nil end
  local v = opts[key]
  if math_type(v) == nil or v <= 0 then return nil end
  return v
end

-- The server binds each endpoint call to the call's state (rt.http_bind, through
-- rt.start_detached), so http.request() / http.response() in the handler itself need no
-- command; from anywhere else (a coroutine the handler made) they ask the server (http.open).
local call_state = rt.call_state

function rt.http_bind(method, path)
  return { headers = {}, body = {}, n = 0, method = method, path = path }
end

function M.request(opts)
  local st, method, path_or_err = call_state[co_running()], nil, nil
  if st ~= nil then
    method, path_or_err = st.method, st.path
  else
    method, path_or_err = call("http.open", "request")
    if method == nil then return nil, path_or_err end
  end
  return setmetatable({ _method = method, _path = path_or_err, _timeout = option(opts, "timeout"),
    _max = option(opts, "max_body") }, RequestMT), nil
end

-- Request ----------------------------------------------------------------------------
function Request:method() check(self, RequestMT, "request:method") return self._method, nil end
function Request:path() check(self, RequestMT, "request:path") return self._path, nil end

local function getter(name, with_arg)
  local fn = "request:" .. name
  if with_arg then
    return function(self, arg)
      check(self, RequestMT, fn)
      if type(arg) ~= "string" then arg_error(fn, 1, "string", arg) end
      return call("http.req", name, arg)
    end
  end
  return function(self)
    check(self, RequestMT, fn)
    return call("http.req", name)
  end
end
for _, name in pairs({ "query_params", "headers", "content_type", "content_length", "host", "remote_addr",
  "has_body", "params" }) do
  Request[name] = getter(name, false)
end
for _, name in pairs({ "query", "header", "accepts", "is_content_type", "param" }) do
  Request[name] = getter(name, true)
end

function Request:body()
  check(self, RequestMT, "request:body")
  return call("http.body", self._max, self._timeout)
end

function Request:body_json()
  check(self, RequestMT, "request:body_json")
  local body, err = call("http.body", self._max, self._timeout)
  if body == nil then return nil, err end
  if body == "" then return nil, new_error("Invalid", "invalid JSON: empty body", false) end
  local value, derr = rt.json_decode(body)
  if derr ~= nil then
    return nil, new_error("Invalid", "invalid JSON: " .. (derr:message():gsub("^json%.decode: ", "")), false)
  end
  return value, nil
end

-- A stream over a body: read(n) -> chunk | nil, nil at the end | nil, err; close() -> true.
local function new_stream(op, handle, timeout)
  return setmetatable({ _op = op, _h = handle, _timeout = timeout }, StreamMT)
end
rt.new_stream = new_stream

function Stream:read(n)
  check(self, StreamMT, "stream:read")
  if n ~= nil and math_type(n) == nil then arg_error("stream:read", 1, "number", n) end
  if self._closed then return nil, nil end
  return call(self._op, n and math.tointeger(n) or n, self._timeout, self._h)
end

function Stream:close()
  check(self, StreamMT, "stream:close")
  if not self._closed then
    self._closed = true
    if self._h ~= nil then call(self._op, -1, nil, self._h) end
  end
  return true, nil
end

-- Multipart forms: files become MultipartFile objects over their (in-memory) content.
local FileMT, File = rt.class("wippy.http.multipart_file")
FileMT.__tostring = function(f) return string_format("http.MultipartFile{name=%s, size=%d}", f._name, f._size) end
local ContentMT, Content = rt.class("wippy.stream")
ContentMT.__tostring = StreamMT.__tostring

function File:name() check(self, FileMT, "file:name") return self._name end
function File:size() check(self, FileMT, "file:size") return self._size end
function File:header(name)
  check(self, FileMT, "file:header")
  if type(name) ~= "string" then arg_error("file:header", 1, "string", name) end
  local want = name:lower()
  for k, v in pairs(self._headers) do
    if k:lower() == want then return v end
  end
  return nil
end
function File:stream()
  check(self, FileMT, "file:stream")
  return setmetatable({ _data = self._content, _pos = 1 }, ContentMT), nil
end
function Content:read(n)
  check(self, ContentMT, "stream:read")
  if self._closed or self._pos > #self._data then return nil, nil end
  n = math_type(n) and n > 0 and n or 4096
  local chunk = self._data:sub(self._pos, self._pos + n - 1)
  self._pos = self._pos + #chunk
  return chunk, nil
end
function Content:close() check(self, ContentMT, "stream:close") self._closed = true return true, nil end

function Request:parse_multipart(max_mem)
  check(self, RequestMT, "request:parse_multipart")
  local form, err = call("http.multipart", math_type(max_mem) and max_mem or self._max, self._timeout)
  if form == nil then return nil, err end
  for _, list in pairs(form.files) do
    for i, f in ipairs(list) do
      list[i] = setmetatable({ _name = f.name, _size = f.size, _headers = f.headers, _content = f.content }, FileMT)
    end
  end
  return form, nil
end

function Request:stream()
  check(self, RequestMT, "request:stream")
  return new_stream("http.read", nil, self._timeout), nil
end

-- Response -----------------------------------------------------------------------------
-- The response state of a call lives in one Lua table shared by every Response object of
-- the call (st: status, headers = {lower name -> {name, value}}, body parts, committed =
-- "headers sent", handled, transfer, streaming). Setting headers and writing a buffered
-- body are plain Lua; the server reads the table when the call ends. Only a streamed
-- response (set_transfer, flush, write_event) sends each write as a command.
-- Upstream's methods return nil on success or an error value.
local function invalid(message) return new_error("Invalid", message, false) end

function M.response()
  local st = call_state[co_running()]
  if st == nil then
    local err
    st, err = call("http.open", "response", { headers = {}, body = {}, n = 0 })
    if st == nil then return nil, err end
  end
  return setmetatable({ _s = st }, ResponseMT), nil
end

-- For the server (Python): the state in one call. status, handled, committed, transfer,
-- the headers as "name\0value\0..." and the buffered body, which is emptied.
local concat = table.concat
function rt.http_pull(st)
  local parts, i = {}, 0
  for _, pair in pairs(st.headers) do
    parts[i + 1], parts[i + 2], i = pair[1], pair[2], i + 2
  end
  local n, body = st.n, ""
  if n > 0 then
    body = concat(st.body, "", 1, n)
    st.body, st.n = {}, 0
  end
  return st.status, st.handled == true, st.committed == true, st.transfer, concat(parts, "\0"), body
end

local function state(self, fn)
  check(self, ResponseMT, fn)
  return self._s
end

local function put_header(st, name, value)
  st.headers[name:lower()] = { name, value }
end

local function write(st, data)
  st.committed, st.handled = true, true
  if st.transfer or st.streaming then
    return (call("http.stream", data))
  end
  local n = st.n + 1
  st.body[n], st.n = data, n
  return nil
end

function Response:set_status(code)
  local st = state(self, "response:set_status")
  if math_type(code) ~= "integer" then arg_error("response:set_status", 1, "integer", code) end
  if st.committed then return invalid("cannot set status after headers are sent") end
  st.status, st.committed, st.handled = code, true, true
  return nil
end

function Response:set_header(name, value)
  local st = state(self, "response:set_header")
  if type(name) ~= "string" then arg_error("response:set_header", 1, "string", name) end
  local tv = type(value)
  if tv == "number" then value = tostring(value) elseif tv ~= "string" then arg_error("response:set_header", 2, "string", value) end
  if st.committed then return invalid("cannot set headers after they are sent") end
  put_header(st, name, value)
  st.handled = true
  return nil
end

function Response:set_content_type(ct)
  local st = state(self, "response:set_content_type")
  if type(ct) ~= "string" then arg_error("response:set_content_type", 1, "string", ct) end
  if st.committed then return invalid("cannot set content type after headers are sent") end
  put_header(st, "Content-Type", ct)
  return nil
end

local function set_transfer(st, mode)
  if st.committed then return invalid("cannot set transfer mode after headers are sent") end
  st.transfer = mode
  put_header(st, "Cache-Control", "no-cache")
  if mode == "sse" then
    put_header(st, "Content-Type", "text/event-stream")
    put_header(st, "Connection", "keep-alive")
  end
  return nil
end

function Response:set_transfer(mode)
  local st = state(self, "response:set_transfer")
  if mode ~= "chunked" and mode ~= "sse" then
    raise("Invalid", "response:set_transfer: invalid transfer type " .. tostring(mode) .. " (chunked or sse)")
  end
  return set_transfer(st, mode)
end

function Response:write(data)
  local st = state(self, "response:write")
  local t = type(data)
  if t == "number" then data = tostring(data) elseif t ~= "string" then arg_error("response:write", 1, "string", data) end
  return write(st, data)
end

local function encode(value)
  local text, err = rt.json_encode(value)
  if text == nil then return nil, new_error("Invalid", err:message(), false) end
  return text
end

local function write_json(st, value)
  local text, err = encode(value)
  if text == nil then return err end
  -- Upstream sets the JSON type only while headers are unsent; a body written after
  -- set_status would go out as text/plain. Here it is JSON unless a type was chosen.
  if not st.streaming and st.headers["content-type"] == nil then put_header(st, "Content-Type", "application/json") end
  return write(st, text)
end

function Response:write_json(value)
  return write_json(state(self, "response:write_json"), value)
end

function Response:flush()
  local st = state(self, "response:flush")
  if not st.streaming then
    st.transfer = st.transfer or "chunked"
    write(st, "")
  end
  return nil
end

function Response:write_event(event)
  local st = state(self, "response:write_event")
  if type(event) ~= "table" then arg_error("response:write_event", 1, "table", event) end
  if event.name == nil then raise("Invalid", "response:write_event: event name is required") end
  if event.data == nil then raise("Invalid", "response:write_event: event data is required") end
  if st.transfer ~= "sse" then
    if st.committed then return invalid("cannot switch to SSE mode after headers are sent") end
    set_transfer(st, "sse")
  end
  local text, err = encode(event.data)
  if text == nil then return err end
  return write(st, "event: " .. tostring(event.name) .. "\ndata: " .. text .. "\n\n")
end

-- The fluent form (an extension; upstream has none): each returns the response and raises
-- on failure, so `return http.response():status(409):json({...})` reads as one answer.
-- status() only records the code: headers and the body's content type may still follow.
local function must(err)
  if err ~= nil then error(err, 0) end
end

function Response:status(code)
  local st = state(self, "response:status")
  if math_type(code) ~= "integer" then arg_error("response:status", 1, "integer", code) end
  if st.committed then must(invalid("cannot set status after headers are sent")) end
  st.status, st.handled = code, true
  return self
end

function Response:header(name, value)
  must(Response.set_header(self, name, value))
  return self
end

function Response:json(value)
  must(write_json(state(self, "response:json"), value))
  return self
end

function Response:text(s)
  local st = state(self, "response:text")
  if type(s) ~= "string" then arg_error("response:text", 1, "string", s) end
  if not st.committed and st.headers["content-type"] == nil then
    put_header(st, "Content-Type", "text/plain; charset=utf-8")
  end
  must(write(st, s))
  return self
end

return M
