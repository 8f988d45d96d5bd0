-- funcs: call function entries, synchronously or as futures, optionally through an
-- immutable executor that carries context values and call options.
local rt = ...
local call, raise, copy, copy_args = rt.call, rt.raise, rt.copy, rt.copy_args
local setmetatable, type, getmetatable_raw, pairs = setmetatable, type, debug.getmetatable, pairs

-- Each class is a protected metatable (…MT) plus the methods table it indexes.
local PayloadMT, Payload = rt.class("wippy.payload")
function Payload:data() return self._v end
rt.register_value_type("payload", PayloadMT)
rt.PayloadMT = PayloadMT
function rt.make_payload(v) return setmetatable({ _v = v }, PayloadMT) end

local FutureMT, Future = rt.class("wippy.future")
local ExecutorMT, Executor = rt.class("wippy.executor")

local function new_future(handle, chan)
  return setmetatable({ _h = handle, _ch = chan }, FutureMT)
end

local function start(ctx, opts, target, ...)
  return call("funcs.async", target, ctx, opts, copy_args(...))
end

local function call_sync(ctx, opts, target, ...)
  local args = copy_args(...)
  if ctx == nil and opts == nil then
    local inline = rt.inline_call  -- (the driver's: the entry's profile when the call may run inline)
    local profile = inline and inline(target)
    if profile then return rt.call_inline(target, profile, args) end
  end
  return call("funcs.call", target, ctx, opts, args)
end

local function call_async(ctx, opts, target, ...)
  local handle, chan_or_err = start(ctx, opts, target, ...)
  if handle == nil then return nil, chan_or_err end
  return new_future(handle, rt.wrap_channel(chan_or_err))
end

local M = {}

function M.call(target, ...) return call_sync(nil, nil, target, ...) end
function M.async(target, ...) return call_async(nil, nil, target, ...) end
function M.new() return setmetatable({}, ExecutorMT) end

local function check_exec(self, method)
  if getmetatable_raw(self) ~= ExecutorMT then
    raise("Invalid", "executor:" .. method .. " must be called with ':' on an executor from funcs.new()")
  end
end

local function merged(base, extra)
  local out = {}
  if base then for k, v in pairs(base) do out[k] = v end end
  for k, v in pairs(extra) do out[k] = v end
  return out
end

function Executor:with_context(values)
  check_exec(self, "with_context")
  if type(values) ~= "table" then
    return nil, rt.new_error("Invalid", "with_context expects a table of values", false)
  end
  return setmetatable({ _ctx = merged(self._ctx, copy(values, "context")), _opts = self._opts }, ExecutorMT)
end

function Executor:with_options(options)
  check_exec(self, "with_options")
  if type(options) ~= "table" then
    return nil, rt.new_error("Invalid", "with_options expects a table of options", false)
  end
  return setmetatable({ _ctx = self._ctx, _opts = merged(self._opts, copy(options, "options")) }, ExecutorMT)
end

-- The security actor and scope travel in the context (see the security module).
local function with_security(kind)
  return function(self, value)
    check_exec(self, "with_" .. kind)
    local data = rt.security_data(kind, value)
    return setmetatable({ _ctx = merged(self._ctx, { ["@" .. kind] = data }), _opts = self._opts }, ExecutorMT)
  end
end
Executor.with_actor = with_security("actor")
Executor.with_scope = with_security("scope")

function Executor:call(target, ...)
  check_exec(self, "call")
  return call_sync(self._ctx, self._opts, target, ...)
end

function Executor:async(target, ...)
  check_exec(self, "async")
  return call_async(self._ctx, self._opts, target, ...)
end

local function check_future(self, method)
  if getmetatable_raw(self) ~= FutureMT then
    raise("Invalid", "future:" .. method .. " must be called with ':' on a future")
  end
  return self._h
end

function Future:response() check_future(self, "response") return self._ch end
Future.channel = Future.response

-- state: "pending" | "done" | "error" | "canceled"; value is the result or the error.
function Future:is_complete()
  local state = call("future.state", check_future(self, "is_complete"))
  return state ~= "pending"
end

function Future:is_canceled()
  local state = call("future.state", check_future(self, "is_canceled"))
  return state == "canceled"
end

function Future:result()
  local state, value = call("future.state", check_future(self, "result"))
  if state == "pending" then return nil, nil end
  if state == "done" then return rt.make_payload(value), nil end
  return nil, value
end

function Future:error()
  local state, value = call("future.state", check_future(self, "error"))
  if state == "error" or state == "canceled" then
    return rt.new_error("Internal", value:message(), false, nil, nil, value), true
  end
  return nil, false
end

function Future:cancel()
  return call("future.cancel", check_future(self, "cancel"))
end

return M
