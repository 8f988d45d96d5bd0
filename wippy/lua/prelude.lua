-- Trusted bootstrap. Runs once per Lua state with the full standard library and returns
-- `rt`, the internal API that Python and the Lua-side modules share. User code never sees
-- `rt`; it sees the sandbox environments built here.
--
-- The one idea: anything that would block does `coroutine.yield(CMD, op, ...)`. The Python
-- driver carries the command out and resumes the coroutine with `ok, ...`.
local natives = ...

local co_yield, co_resume, co_create = coroutine.yield, coroutine.resume, coroutine.create
local co_status, co_close, co_running = coroutine.status, coroutine.close, coroutine.running
local co_isyieldable = coroutine.isyieldable
local getinfo, getmetatable_raw, traceback = debug.getinfo, debug.getmetatable, debug.traceback
local sethook, gethook = debug.sethook, debug.gethook
local pack, unpack, concat = table.pack, table.unpack, table.concat
local type, next, pairs, ipairs, tostring, select, error, setmetatable, rawget =
    type, next, pairs, ipairs, tostring, select, error, setmetatable, rawget
local string_format, load_raw, pcall, xpcall = string.format, load, pcall, xpcall
local collectgarbage_raw = collectgarbage
-- Most of what a call or a message allocates (its coroutine, instance, tables) dies young;
-- the generational collector frees that without the incremental one's whole-heap passes,
-- which stalled a request now and then for most of a millisecond (bench/http.py).
collectgarbage_raw("generational")

local rt = {}

local CMD = setmetatable({}, { __metatable = "wippy.command" })
rt.CMD = CMD

---------------------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------------------
-- Runtime objects keep their methods in a table apart from their metatable: with
-- `mt.__index = mt`, `obj.__index` would hand user code the shared metatable, and changing
-- it would change every such object in every actor. rt.class(name) returns (mt, methods).
--
-- Upstream these objects are userdata: the sandbox's `type` says "userdata" for every
-- metatable registered here (rt.class does it; plain-table classes call rt.userdata).
local userdata_mts = {}
function rt.userdata(mt) userdata_mts[mt] = true; return mt end
function rt.class(name)
  local methods = {}
  return rt.userdata({ __name = name, __metatable = name, __index = methods }), methods
end

-- Objects whose fields user code must not change: value objects that cross actors (errors,
-- times, messages...) and shared ones (loggers). Assignment raises and the sandbox's rawset
-- refuses them; runtime code sets their fields with rawset.
local immutable_mts = {}
local function read_only_object(_, k)
  rt.raise("PermissionDenied", "this object is read-only (cannot set field '" .. tostring(k) .. "')")
end
function rt.immutable(mt)
  if mt.__newindex == nil then mt.__newindex = read_only_object end
  immutable_mts[mt] = true
  return mt
end

-- A class whose methods were defined on its metatable: move them to their own table, so
-- `obj.__index` cannot hand user code the shared metatable.
function rt.seal_class(mt)
  local methods = {}
  for k, v in pairs(mt) do
    if type(k) ~= "string" or k:sub(1, 2) ~= "__" then methods[k] = v end
  end
  mt.__index = methods
  return mt
end

local Error, ErrorMethods = rt.class("wippy.error")
rt.Error = Error
rt.immutable(Error)

function ErrorMethods:kind() return self._kind end
function ErrorMethods:message() return self._message end
function ErrorMethods:retryable() return self._retryable end
function ErrorMethods:details()
  local d = self._details
  if d == nil or (type(d) == "table" and next(d) == nil) then return nil end  -- none: nil, as upstream
  return d
end
function ErrorMethods:stack()
  local frames = self._frames
  if not frames then return "" end
  local lines = { "stack traceback:" }
  for i = 1, #frames do
    local f = frames[i]
    lines[#lines + 1] = string_format("\t%s:%d: in %s", f.source, f.line, f.name)
  end
  return concat(lines, "\n")
end
-- An error reads as its message, preceded by the context errors.wrap gave it.
local function error_text(e)
  local message, context = e._message, e._context
  if type(message) ~= "string" then message = tostring(message) end  -- changed by hand
  if context ~= nil then return tostring(context) .. ": " .. message end
  return message
end
Error.__tostring = error_text
-- "prefix: " .. err and err .. err2 work, as upstream: each error side is its text.
Error.__concat = function(a, b)
  return (getmetatable_raw(a) == Error and error_text(a) or tostring(a))
    .. (getmetatable_raw(b) == Error and error_text(b) or tostring(b))
end

local function is_error(v) return getmetatable_raw(v) == Error end
rt.is_error = is_error

-- Structured frames of the Lua stack, skipping C functions and the runtime's own chunks.
local function capture_frames(level)
  local frames = {}
  local i = level + 1
  while #frames < 32 do
    local info = getinfo(i, "Sln")
    if not info then break end
    if info.what ~= "C" and info.source:sub(1, 7) ~= "=wippy:" then
      local name = info.name
      if not name then  -- a tail call or the main chunk: name the function by where it starts
        name = info.what == "main" and "main chunk"
          or string_format("function <%s:%d>", info.short_src, info.linedefined)
      end
      frames[#frames + 1] = { source = info.short_src, line = info.currentline, name = name }
    end
    i = i + 1
  end
  return frames
end

-- kind "" is the unknown kind (upstream's errors.UNKNOWN).
local function new_error(kind, message, retryable, details, frames, cause, context)
  return setmetatable({
    _kind = kind or "",
    _message = message,
    _retryable = retryable,
    _details = details,
    _frames = frames,
    _cause = cause,
    _context = context,
  }, Error)
end
rt.new_error = new_error

-- Raise an error object of `kind` from runtime code, with the caller's stack.
local function raise(kind, message, retryable)
  error(new_error(kind, message, retryable == nil and false or retryable, nil, capture_frames(2)), 0)
end
rt.raise = raise

-- Turn anything Lua raised into an error object (message handler for xpcall).
local function on_error(e)
  if aborting then e = aborting end
  local mt = getmetatable_raw(e)
  if mt and mt.__name == "wippy.abort" then e = e.error end
  if e == "not enough memory" then
    return new_error("LimitExceeded", "the runtime's Lua memory limit was reached while this task allocated", false)
  end
  if is_error(e) then
    if not e._frames then rawset(e, "_frames", capture_frames(2)) end
    return e
  end
  local msg = type(e) == "string" and e or tostring(e)
  return new_error("Internal", msg, false, nil, capture_frames(2))
end
rt.on_error = on_error

local errors = {
  NOT_FOUND = "NotFound", ALREADY_EXISTS = "AlreadyExists", INVALID = "Invalid",
  PERMISSION_DENIED = "PermissionDenied", UNAVAILABLE = "Unavailable", INTERNAL = "Internal",
  CANCELED = "Canceled", CONFLICT = "Conflict", TIMEOUT = "Timeout",
  RATE_LIMITED = "RateLimited", UNKNOWN = "",
}

-- errors.new("message") or errors.new{message = ..., kind = ..., retryable = ..., details = ...}.
-- Any kind string is accepted (an application may have its own kinds).
function errors.new(spec)
  if type(spec) == "string" then
    return new_error("", spec, nil, nil, capture_frames(2))
  end
  if type(spec) ~= "table" then
    raise("Invalid", "errors.new expects a message string or a table with a string `message` field")
  end
  if type(spec.message) ~= "string" then
    raise("Invalid", spec.message == nil and "errors.new: message field is required"
      or "errors.new: message must be a string")
  end
  local kind = spec.kind
  if kind ~= nil and type(kind) ~= "string" then raise("Invalid", "errors.new: kind must be a string") end
  local retryable = spec.retryable
  if type(retryable) ~= "boolean" then retryable = nil end
  local details = spec.details
  if type(details) ~= "table" then details = nil end
  return new_error(kind or "", spec.message, retryable, details, capture_frames(2))
end

-- errors.wrap(err, context): the same kind, retryable and details; message() stays the
-- wrapped error's text, and tostring shows the context before it.
function errors.wrap(err, context)
  if err == nil then return nil end
  if is_error(context) then context = context._message end
  if type(context) ~= "string" then raise("Invalid", "errors.wrap: context must be a string or an error") end
  if not is_error(err) then
    return new_error("", tostring(err), nil, nil, capture_frames(2), nil, context)
  end
  return new_error(err._kind, error_text(err), err._retryable, err._details, err._frames or capture_frames(2),
    err, context)
end

function errors.is(err, kind)
  if is_error(kind) then kind = kind._kind end
  while is_error(err) do
    if err._kind == kind then return true end
    err = err._cause
  end
  return false
end

function errors.call_stack(err)
  if not is_error(err) or not err._frames then return nil end
  local frames = {}
  for i, f in ipairs(err._frames) do
    frames[i] = { source = f.source, line = f.line, name = f.name }
  end
  return { thread = "main", frames = frames }
end
rt.errors = errors

---------------------------------------------------------------------------------------
-- Copying values across boundaries
---------------------------------------------------------------------------------------
-- Metatables whose instances are plain data and keep their type when copied
-- (errors, Time, Duration, the empty-array marker). name -> metatable and back.
local value_types, value_type_names = {}, {}
-- check(v) -> nil, or why a value of the type is malformed (its fields were changed by
-- hand): checked when the value is copied, so a receiver never gets a broken one.
local value_checks = {}
function rt.register_value_type(name, mt, check)
  value_checks[mt] = check
  value_types[mt] = name
  value_type_names[name] = mt
end
rt.value_type_names = value_type_names
local function error_check(e)
  if type(e._kind) ~= "string" or type(e._message) ~= "string" then return "kind and message must be strings" end
  local r, c, f = e._retryable, e._context, e._frames
  if r ~= nil and type(r) ~= "boolean" then return "retryable must be a boolean" end
  if c ~= nil and type(c) ~= "string" then return "context must be a string" end
  if e._details ~= nil and type(e._details) ~= "table" then return "details must be a table" end
  if f ~= nil then
    if type(f) ~= "table" then return "frames must be a list" end
    for _, fr in ipairs(f) do
      if type(fr) ~= "table" or type(fr.source) ~= "string" or math.type(fr.line) ~= "integer"
        or type(fr.name) ~= "string" then return "frames are malformed" end
    end
  end
  return nil
end
rt.error_check = error_check
rt.register_value_type("error", Error, error_check)
-- Protected like every runtime metatable: it is shared by all empty arrays of all actors.
local EmptyArray = { __name = "wippy.array", __metatable = "wippy.array" }
rt.EmptyArray = EmptyArray
rt.register_value_type("array", EmptyArray)

-- Name of the value type of `v`, or nil for plain tables (used by the Python converter).
function rt.value_type_of(v)
  local mt = getmetatable_raw(v)
  return mt and value_types[mt]
end

function rt.error_fields(e)
  local bad = error_check(e)
  if bad then  -- changed by hand: report what can be trusted
    return "Internal", "an error object was changed by hand (" .. bad .. "): " .. tostring(rawget(e, "_message")),
      false, nil, nil, nil
  end
  return e._kind, e._message, e._retryable, e._details, (e._frames and ErrorMethods.stack(e)) or nil, e._context
end

local BAD = {}  -- sentinel raised by the fast copier; the slow path explains it

-- Runtime objects that become nil when copied rather than failing the copy: an HTTP
-- handler ends with `return http.response():status(200)...`, a value only its own call uses.
local copies_as_nil = {}
function rt.copies_as_nil(mt) copies_as_nil[mt] = true; return mt end

local function fast_copy(v, seen)
  if type(v) ~= "table" then
    local t = type(v)
    if t == "function" or t == "userdata" or t == "thread" then error(BAD, 0) end
    return v
  end
  local vmt = getmetatable_raw(v)
  if vmt and copies_as_nil[vmt] then return nil end
  if seen[v] then error(BAD, 0) end
  seen[v] = true
  local out = {}
  for k, x in next, v do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then error(BAD, 0) end
    if type(x) == "table" then out[k] = fast_copy(x, seen)
    else
      local xt = type(x)
      if xt == "function" or xt == "userdata" or xt == "thread" then error(BAD, 0) end
      out[k] = x
    end
  end
  seen[v] = nil
  local mt = getmetatable_raw(v)
  if mt then
    if value_types[mt] then
      local check = value_checks[mt]
      if check and check(out) then error(BAD, 0) end
      setmetatable(out, mt)
    elseif userdata_mts[mt] or immutable_mts[mt] then  -- a channel, future, type value...
      error(BAD, 0)
    end
  end
  return out
end

local function describe(v)
  local t = type(v)
  if t == "userdata" then return "a userdata value" end
  if t == "thread" then return "a coroutine" end
  return "a " .. t
end

-- Find why `v` cannot be copied; returns a message naming the offending value.
local function explain(v, path, seen)
  local t = type(v)
  if t == "function" or t == "userdata" or t == "thread" then
    return describe(v) .. " at " .. path .. " cannot cross an actor boundary (only data can)"
  end
  if t ~= "table" then return nil end
  if seen[v] then return "cyclic table at " .. path .. " cannot cross an actor boundary" end
  local mt = getmetatable_raw(v)
  local mt_name = mt and not value_types[mt] and rawget(mt, "__name")
  if mt and copies_as_nil[mt] then return nil end
  if mt and not value_types[mt] and (userdata_mts[mt] or immutable_mts[mt]) then  -- channel, future, ...
    local what = type(mt_name) == "string" and mt_name:gsub("^wippy%.", "") or "runtime object"
    return "a " .. what .. " at " .. path .. " cannot cross an actor boundary (only data can)"
  end
  local check = mt and value_checks[mt]
  local bad = check and check(v)
  if bad then
    return "a " .. value_types[mt] .. " at " .. path .. " was changed by hand and cannot cross (" .. bad .. ")"
  end
  seen[v] = true
  for k, x in next, v do
    local kt = type(k)
    local sub = path .. (kt == "string" and ("." .. k) or ("[" .. tostring(k) .. "]"))
    if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
      return "table key of type " .. kt .. " at " .. path .. " cannot cross an actor boundary"
    end
    local why = explain(x, sub, seen)
    if why then return why end
  end
  seen[v] = nil
  return nil
end

-- Copy one value for sending to another actor; raises INVALID naming the bad part.
-- `what` names the value in an error ("payload"); with `index`, it is "<what> #<index>"
-- (made only when there is an error to name).
local function label(what, index)
  if index then return what .. " #" .. index end
  return what or "value"
end

local function copy(v, what, index)
  if type(v) ~= "table" then
    local t = type(v)
    if t == "function" or t == "userdata" or t == "thread" then
      raise("Invalid", explain(v, label(what, index), {}))
    end
    return v
  end
  local ok, out = pcall(fast_copy, v, {})
  if ok then return out end
  if out ~= BAD then error(out, 0) end
  raise("Invalid", explain(v, label(what, index), {}) or "value cannot cross an actor boundary")
end
rt.copy = copy

-- Copy every argument into a packed table {n = count, ...}.
local function copy_args(...)
  local n = select("#", ...)
  local out = { n = n }
  for i = 1, n do
    out[i] = copy((select(i, ...)), "argument", i)
  end
  return out
end
rt.copy_args = copy_args

---------------------------------------------------------------------------------------
-- The blocking bridge
---------------------------------------------------------------------------------------
-- The CPU budget: how long a task may run between two commands. A count hook on every
-- runtime task (inherited by the coroutines it creates) looks at a wall clock only once a
-- step has run BUDGET_CHECK_EVERY instructions, so ordinary steps never read the clock.
-- Past the budget the task fails with an error that `pcall` cannot keep.
local wall_clock = natives.monotonic
local hook_ticks, tick_since = 0, 0.0  -- this step's hook calls, and when the first came
local aborting = nil  -- the abort of this step, once its budget is spent (every error then is it)
local default_budget = 1.0  -- seconds; rt.set_step_budget
local budget_of = setmetatable({}, { __mode = "k" })  -- runtime task -> its host's budget
local BUDGET_CHECK_EVERY = 100000  -- instructions between two checks
local Abort = rt.userdata({ __name = "wippy.abort", __metatable = "wippy.error" })

function rt.set_step_budget(seconds) default_budget = seconds end

local function budget_hook()
  hook_ticks = hook_ticks + 1
  if hook_ticks == 1 then tick_since = wall_clock() return end
  local budget = budget_of[co_running()] or default_budget
  local ran = wall_clock() - tick_since
  if budget > 0 and ran > budget then
    if not aborting then
      local err = new_error("LimitExceeded", string_format("ran %.1fs without yielding, over the CPU budget "
        .. "of %gs per step (a loop that never blocks?); it was stopped", ran, budget), false)
      aborting = setmetatable({ error = err }, Abort)
    end
    error(aborting, 0)
  end
end
rt.budget_hook = budget_hook

-- An abort (CPU budget, memory limit) is not an ordinary error: protected calls in user
-- code pass it on, so the task ends.
local function is_abort(e)
  return aborting ~= nil or getmetatable_raw(e) == Abort or e == "not enough memory"
end
rt.is_abort = is_abort

local function resumed(ok, ...)
  hook_ticks, aborting = 0, nil  -- a new step
  if ok then return ... end
  error((...), 0)
end

-- Yield a command to the driver; returns what the driver answers, or raises its error.
local function call(op, ...)
  if not co_isyieldable() then  -- inside a callback run by C (table.sort, string.gsub, ...)
    raise("Invalid", string_format("cannot block (%s) inside a callback called from C code such as a "
      .. "table.sort comparator, a string.gsub replacement or a __tostring; block outside it", op))
  end
  return resumed(co_yield(CMD, op, ...))
end
rt.call = call

-- Body of every runtime-driven coroutine. A leading `false` tells the driver it finished
-- (a command always starts with the CMD table).
local runtime_threads = setmetatable({}, { __mode = "k" })
-- `budget`: the task's CPU budget per step in seconds (0: none), nil for the default.
function rt.task_main(budget, fn, ...)
  local co = co_running()
  runtime_threads[co] = true
  hook_ticks, aborting = 0, nil
  if budget ~= 0 then
    if budget then budget_of[co] = budget end
    sethook(co, budget_hook, "", BUDGET_CHECK_EVERY)
  end
  return false, xpcall(fn, on_error, ...)
end
local task_main = rt.task_main

-- A synchronous call of an entry (funcs.call) run inside the caller's step: the callee gets
-- its own coroutine and instance as any call does, but no actor of its own unless it needs
-- one. It runs until it finishes -- the caller then has the result without any command --
-- or until its first command: the caller then hands the suspended callee to the driver
-- ("funcs.adopt"), which makes it a function call actor and carries that command out.
local INLINE_DEPTH = 16  -- nested inline calls at most (each holds a C stack level)
local inline_depth = 0

-- A failed task body's error as an error object: Lua runs no error handler for an
-- allocation failure, so the body hands back the bare "not enough memory".
local function failure_error(err)
  if is_error(err) then return err end
  if err == "not enough memory" then
    return new_error("LimitExceeded", "the runtime's Lua memory limit was reached while this task allocated; "
      .. "it was stopped", false)
  end
  return new_error("Internal", tostring(err), nil)
end
rt.failure_error = failure_error

local function inline_failure(target, err)
  err = failure_error(err)
  if err._kind == "LimitExceeded" then
    rawset(err, "_message", "function call " .. target .. ": " .. err._message)
    collectgarbage_raw()  -- a memory hog's garbage goes before anyone else allocates
  end
  return nil, err
end

local function inline_outcome(target, co, resumed_ok, first, ...)
  inline_depth = inline_depth - 1
  hook_ticks, aborting = 0, nil  -- the callee's step is over; the caller's goes on
  if not resumed_ok then error(first, 0) end  -- (task_main catches every error: not reached)
  if first == CMD then
    if not co_isyieldable() then  -- a callback run by C (table.sort, string.gsub, ...)
      co_close(co)
      raise("Invalid", "cannot block (funcs.call of " .. tostring(target) .. ") inside a callback called "
        .. "from C code such as a table.sort comparator, a string.gsub replacement or a __tostring; "
        .. "block outside it")
    end
    return call("funcs.adopt", target, co, ...)
  end
  co = nil  -- (the dead callee's stack is garbage now)
  local xok, ok, out, value = ...  -- the task body returned: false, xpcall's results
  if not xok then return inline_failure(target, ok) end
  if ok then return value, nil end
  return nil, out
end

-- `profile` comes from the driver's rt.inline_call (false: take the command path).
function rt.call_inline(target, profile, args)
  if inline_depth >= INLINE_DEPTH then return call("funcs.call", target, nil, nil, args) end
  inline_depth = inline_depth + 1
  local co = co_create(rt.task_main)
  return inline_outcome(target, co, co_resume(co, nil, rt.entry_task, target, profile, args))
end

-- Calls started from outside any task (FunctionRunner.run: an HTTP request) take their
-- first step in one call from the driver, rt.start_detached. Most end there, so their
-- coroutines are pooled: a pooled coroutine runs one task body after another, handing each
-- outcome back as a finished task does (false, xpcall's results) and waiting for the next
-- body. One that issued a command is the driver's from then on and never comes back.
-- `bind(...)`, when given, makes the state a service ties to the call; the call's code
-- finds it as rt.call_state[coroutine.running()] (nil in any other coroutine).
local call_state = setmetatable({}, { __mode = "k" })
rt.call_state = call_state
local pool, pooled, POOL_MAX = {}, 0, 64

-- (Its hook stays set from one body to the next while the budget is the same.)
local function pooled_next(budget, fn, ...)
  local co = co_running()
  if budget == 0 and budget_of[co] then sethook(co); budget_of[co] = nil end  -- (none now)
  if not budget or budget_of[co] ~= budget then return pooled_next(co_yield(task_main(budget, fn, ...))) end
  hook_ticks, aborting = 0, nil
  return pooled_next(co_yield(false, xpcall(fn, on_error, ...)))
end

-- What start_detached returns: the bound state, then either the coroutine and the command it
-- yielded, or nil and how its body ended (false, xpcall's results). An ended call hands back
-- neither its coroutine nor its results table (the driver wants only the first result).
local function detached_outcome(co, state, resumed, first, ...)
  if not resumed then return state, nil, false, false, first end  -- (Lua failed outside the body)
  if first ~= false then return state, co, first, ... end
  local xok, a, b, c = ...
  call_state[co] = nil
  if xok and pooled < POOL_MAX then pooled = pooled + 1; pool[pooled] = co end
  if xok and a then b = nil end
  return state, nil, false, xok, a, b, c
end

function rt.start_detached(budget, id, profile, args, bind, ...)
  local co
  if pooled > 0 then
    co, pool[pooled], pooled = pool[pooled], nil, pooled - 1
  else
    co = co_create(pooled_next)
  end
  local state = nil
  if bind then state = bind(...) end
  call_state[co] = state
  return detached_outcome(co, state, co_resume(co, budget, rt.entry_task, id, profile, args))
end

-- User coroutines suspended in a blocking call: only the driver's answer may resume them.
local blocked = setmetatable({}, { __mode = "k" })
local function unblock(co, ...)
  blocked[co] = nil
  return ...
end

-- A command yielded inside a user coroutine travels up through the user's `resume` to the
-- driver, and the answer travels back down; plain user yields return to the user.
local function pass_through(co, ok, first, ...)
  if ok and first == CMD and co_status(co) == "suspended" then
    blocked[co] = true
    return pass_through(co, co_resume(co, unblock(co, co_yield(CMD, ...))))
  end
  return ok, first, ...
end

-- Why user code may not resume or close `co` (a runtime task, or a coroutine waiting for
-- the driver), or nil.
local function busy(co)
  if blocked[co] then return "cannot resume coroutine: it is waiting for a blocking operation" end
  if runtime_threads[co] then return "cannot resume coroutine: it is a runtime task" end
  return nil
end

-- A coroutine user code creates runs under its creator's CPU budget: the hook's Lua
-- function is kept per thread, so a new coroutine needs its own.
local function budgeted(co)
  local parent = co_running()
  if gethook(parent) then
    budget_of[co] = budget_of[parent]
    sethook(co, budget_hook, "", BUDGET_CHECK_EVERY)
  end
  return co
end

-- An abort inside a user coroutine ends the task, whatever resumed it.
local function pass_abort_up(ok, ...)
  if not ok and is_abort((...)) then error(aborting or (...), 0) end
  return ok, ...
end

local user_coroutine = {}
for k, v in pairs(coroutine) do user_coroutine[k] = v end
function user_coroutine.create(fn) return budgeted(co_create(fn)) end
function user_coroutine.resume(co, ...)
  local why = busy(co)
  if why then return false, why end
  return pass_abort_up(pass_through(co, co_resume(co, ...)))
end
function user_coroutine.status(co)
  local status = co_status(co)
  if status == "suspended" and busy(co) then return "normal" end
  return status
end
function user_coroutine.close(co)
  local why = busy(co)
  if why then raise("Invalid", (why:gsub("resume", "close", 1))) end
  return co_close(co)
end
local function wrap_result(co, ok, ...)
  if ok then return ... end
  local e = ...
  if co_status(co) == "dead" then co_close(co) end
  error(e, 0)
end
function user_coroutine.wrap(fn)
  local co = budgeted(co_create(fn))
  return function(...)
    local why = busy(co)
    if why then raise("Invalid", why) end
    return wrap_result(co, pass_through(co, co_resume(co, ...)))
  end
end
function user_coroutine.yield(...)
  if runtime_threads[co_running()] then
    raise("Invalid", "coroutine.yield called outside a coroutine (use coroutine.create/wrap)")
  end
  if select("#", ...) > 0 and (...) == CMD then
    raise("Invalid", "coroutine.yield: cannot yield the runtime's command marker")
  end
  return co_yield(...)
end
function user_coroutine.spawn(fn)
  if type(fn) ~= "function" then raise("Invalid", "coroutine.spawn expects a function") end
  return call("coroutine.spawn", fn)
end
rt.user_coroutine = user_coroutine

---------------------------------------------------------------------------------------
-- Sandbox environments
---------------------------------------------------------------------------------------
-- Standard functions the sandbox leaves out keep their name, so calling one says what is
-- wrong instead of "attempt to call a nil value".
local function denied(name, instead)
  return function()
    raise("PermissionDenied", name .. " is not available in the wippy sandbox" .. (instead and ("; " .. instead) or ""))
  end
end

local string_lib = string
string_lib.dump = denied("string.dump", "bytecode cannot be produced")
-- Typed Lua: `string(x)` is a safe cast (returns x if it is a string, else raises an Invalid
-- error). modules/types.lua provides rt.cast_string; the metatable is hidden from user code.
setmetatable(string_lib, { __call = function(_, ...) return rt.cast_string(...) end, __metatable = false })
getmetatable("").__metatable = false
-- Host objects (channel handles, say) share lupa's one metatable; unprotected, user code
-- could call its __gc on a handle or change how every host object behaves.
getmetatable_raw(natives.print).__metatable = false

-- `env` is the caller's instance environment (see instantiate), never a shared table:
-- a loaded chunk that sets a global must not leak it into other instances.
local function safe_load(env, chunk, name, mode, chunk_env)
  if mode ~= nil and (type(mode) ~= "string" or not mode:find("t", 1, true)) then
    raise("PermissionDenied", "load: only text chunks are allowed (mode 't')")
  end
  if type(chunk) == "string" and chunk:byte(1) == 27 then
    raise("PermissionDenied", "load: binary chunks are not allowed")
  end
  return load_raw(chunk, name, "t", chunk_env or env)
end

local function lua_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  natives.print(concat(parts, "\t"))
end

local function shallow(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end


-- Tables every instance shares (the standard libraries, module tables) reach user code
-- only as read-only views, and the sandbox's `rawset` refuses them: nothing one instance
-- does can change what another sees. Views are made once per Lua state, so they cost an
-- instance nothing.
local shared_views = setmetatable({}, { __mode = "k" })
local function readonly(name, tbl, extra)
  if getmetatable_raw(tbl) ~= nil then return tbl end  -- an object (logger): it guards itself
  for k, v in next, tbl do
    if type(v) == "table" and getmetatable_raw(v) == nil then tbl[k] = readonly(name .. "." .. k, v) end
  end
  local mt = {
    __index = tbl,
    __newindex = function(_, k)
      raise("PermissionDenied", "'" .. name .. "' is shared and read-only (cannot set field '"
        .. tostring(k) .. "'); keep your own values in a local table")
    end,
    -- the iterator closes over the table: `pairs` must not hand out the shared table itself
    __pairs = function(self) return function(_, k) return next(tbl, k) end, self, nil end,
    __len = function() return #tbl end,
    __metatable = "wippy.module",
  }
  for k, v in pairs(extra or {}) do mt[k] = v end
  local view = setmetatable({}, mt)
  shared_views[view] = true
  return view
end
rt.readonly = readonly

-- Mark a table every instance can reach (and only read): rawset refuses it.
function rt.share(t) shared_views[t] = true; return t end

local function sandbox_rawset(t, k, v)
  if shared_views[t] or immutable_mts[getmetatable_raw(t)] then
    raise("PermissionDenied", "rawset: this table is shared or read-only")
  end
  return rawset(t, k, v)
end

-- No finalizers in user code: a __gc runs in whichever actor happens to allocate, outside
-- any CPU budget. (A __gc field present at setmetatable time is what marks an object.)
local function sandbox_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    raise("PermissionDenied", "setmetatable: __gc finalizers are not available in the wippy sandbox "
      .. "(they would run in another actor); use a <close> variable instead")
  end
  return setmetatable(t, mt)
end

local function sandbox_type(v)
  local t = type(v)
  if t == "table" and userdata_mts[getmetatable_raw(v)] then return "userdata" end
  return t
end

-- Protected calls in user code hand aborts (CPU budget, memory limit) on.
local function pass_abort(ok, ...)
  if not ok and is_abort((...)) then error(aborting or (...), 0) end
  return ok, ...
end
local function sandbox_pcall(f, ...) return pass_abort(pcall(f, ...)) end
local function sandbox_xpcall(f, handler, ...)
  return pass_abort(xpcall(f, function(e)
    if is_abort(e) then return e end
    return handler(e)
  end, ...))
end

-- String functions take error objects as their text (upstream tests `string.find(err, "x")`).
local string_api = {}
for k, v in pairs(string_lib) do string_api[k] = v end
for _, name in ipairs({ "find", "match", "gmatch", "gsub", "sub", "len", "lower", "upper", "rep", "byte",
                        "reverse" }) do
  local f = string_lib[name]
  string_api[name] = function(s, ...)
    if getmetatable_raw(s) == Error then s = error_text(s) end
    return f(s, ...)
  end
end

-- go-lua's table extras that upstream code uses.
local table_api = {}
for k, v in pairs(table) do table_api[k] = v end
function table_api.create() return {} end  -- (narr, nhash): sizes are a hint Lua cannot take
function table_api.getn(t) return #t end
function table_api.maxn(t)
  local n = 0
  for k in next, t do if math.type(k) and k > n then n = k end end
  return n
end
local Frozen = { __metatable = "wippy.immutable" }
function table_api.make_immutable(t)
  if type(t) ~= "table" then raise("Invalid", "table.make_immutable expects a table") end
  if getmetatable_raw(t) ~= nil then return t end
  local frozen = {}
  for k, v in next, t do frozen[k] = v end
  for k in next, frozen do t[k] = nil end
  return setmetatable(t, {
    __index = frozen, __len = function() return #frozen end, __pairs = function() return next, frozen, nil end,
    __newindex = function() raise("PermissionDenied", "table is immutable") end,
    __metatable = "wippy.immutable",
  })
end
function table_api.is_immutable(t) return getmetatable_raw(t) ~= nil and getmetatable(t) == "wippy.immutable" end

-- Base globals by profile. A profile is how an instance is run: `function`, `process`,
-- `workflow`. Modules may add globals (`channel`, `process`) with rt.add_global.
local base = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = sandbox_pcall, xpcall = sandbox_xpcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = sandbox_rawset, select = select, setmetatable = sandbox_setmetatable, getmetatable = getmetatable,
  tonumber = tonumber, tostring = tostring, type = sandbox_type, unpack = unpack,
  _VERSION = _VERSION, print = lua_print,
  string = readonly("string", string_api, { __call = function(_, ...) return string_lib(...) end }),
  table = readonly("table", table_api), math = readonly("math", math), utf8 = readonly("utf8", utf8),
  coroutine = readonly("coroutine", user_coroutine),
  os = readonly("os", {
    time = os.time, clock = os.clock, date = os.date, difftime = os.difftime,
    execute = denied("os.execute", "use the exec module"), exit = denied("os.exit"),
    getenv = denied("os.getenv", "use the env module"), remove = denied("os.remove", "use the fs module"),
    rename = denied("os.rename", "use the fs module"), tmpname = denied("os.tmpname", "use the fs module"),
    setlocale = denied("os.setlocale"),
  }),
  dofile = denied("dofile", "declare the file as a library.lua entry and list it in `imports:`"),
  loadfile = denied("loadfile", "declare the file as a library.lua entry and list it in `imports:`"),
  collectgarbage = denied("collectgarbage", "memory is managed by the runtime"),
}
rt.profiles = { ["function"] = base, process = shallow(base), workflow = shallow(base) }

-- Workflows replay, so their globals must not depend on hash order, the clock or chance.
local type_rank = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ra, rb = type_rank[type(a)] or 4, type_rank[type(b)] or 4
  if ra ~= rb then return ra < rb end
  if ra == 3 then return (not a) and b end
  if ra == 4 then return tostring(a) < tostring(b) end
  return a < b
end
local function sorted_pairs(t)
  local mt = getmetatable_raw(t)
  if mt and mt.__pairs then return mt.__pairs(t) end
  local keys, n = {}, 0
  for k in next, t do n = n + 1; keys[n] = k end
  table.sort(keys, key_less)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end, t, nil
end
rt.sorted_pairs = sorted_pairs

local function forbidden(name, instead)
  return function()
    raise("PermissionDenied", name .. " is not available in workflows (it would differ on replay); use " .. instead)
  end
end
do
  local wf = rt.profiles.workflow
  wf.pairs = sorted_pairs
  wf.os = readonly("os", {
    time = forbidden("os.time", "time.now()"), clock = forbidden("os.clock", "time.now()"),
    date = forbidden("os.date", "time.now():format(...)"), difftime = os.difftime,
  })
  local m = {}
  for k, v in pairs(math) do m[k] = v end
  m.random = forbidden("math.random", "uuid.v4() or crypto.random_bytes() (recorded), or an activity")
  m.randomseed = forbidden("math.randomseed", "uuid.v4() or crypto.random_bytes() (recorded)")
  wf.math = readonly("math", m)
end

function rt.add_global(name, value, profiles)
  for pname, env in pairs(rt.profiles) do
    if profiles == nil or profiles[pname] then env[name] = value end
  end
end

---------------------------------------------------------------------------------------
-- Entries: compile once, instantiate per run
---------------------------------------------------------------------------------------
-- Module tables by name, shared by every instance. Global ones need no `modules:` line.
local modules, global_modules = {}, {}
-- Modules are shared by every instance, so user code gets a read-only view: writing a
-- field of `funcs` or `process.registry` in one actor must not change it for the others.

-- Register a module; returns the read-only view that `require` (and the global) hand out.
-- rt.module_getters[name] may give fields computed on every read (fresh objects).
function rt.add_module(name, tbl, is_global)
  local getters = rt.module_getters and rt.module_getters[name]
  local view = readonly(name, tbl, getters and {
    __index = function(_, k)
      local get = getters[k]
      if get then return get() end
      return tbl[k]
    end,
  })
  modules[name] = view
  if is_global then global_modules[name] = true end
  return view
end
rt.add_global("errors", rt.add_module("errors", errors, true))

local entries = {}  -- id -> record
rt.entries = entries

-- Compile `source` for entry `id`. The chunk gets its _ENV as its first argument, so one
-- compiled prototype serves every instance, each with its own globals.
function rt.compile(id, source, chunkname)
  if source:sub(1, 2) == "#!" then source = "--" .. source end
  local chunk, err = load_raw("local _ENV = ...; " .. source, chunkname, "t", {})
  if not chunk then return nil, err end
  return chunk
end

-- Register a compiled entry. `allowed` is a set of module names, `imports` alias -> entry id.
function rt.define(id, chunk, allowed, imports, method)
  entries[id] = { id = id, chunk = chunk, allowed = allowed, imports = imports, method = method }
end

function rt.undefine(id) entries[id] = nil end

local instantiate

local function make_require(rec, profile)
  local loaded = {}
  return function(name)
    if type(name) ~= "string" then raise("Invalid", "require expects a module name string") end
    local hit = loaded[name]
    if hit ~= nil then return hit end
    local target = rec.imports[name]
    local value
    if target then
      value = instantiate(target, profile)
    elseif modules[name] and (rec.allowed[name] or global_modules[name]) then
      value = modules[name]
    elseif modules[name] then
      raise("PermissionDenied", string_format(
        "module '%s' is not declared by entry %s: add it to the entry's `modules:` list", name, rec.id))
    elseif rec.allowed[name] then
      raise("NotFound", string_format(
        "module '%s' (declared by entry %s) is not available in this runtime", name, rec.id))
    else
      raise("NotFound", string_format(
        "unknown module '%s' required by entry %s: declare a module in `modules:` or an entry in `imports:`",
        name, rec.id))
    end
    loaded[name] = value
    return value
  end
end

-- Run an entry's chunk in a fresh environment and return what it returned (its module).
instantiate = function(id, profile)
  local rec = entries[id]
  if not rec then raise("NotFound", "entry " .. tostring(id) .. " is not loaded") end
  local mt = rec[profile]
  if not mt then
    -- Protected: through getmetatable(_G) user code could reach and change the shared
    -- profile table, i.e. the globals of every instance of every entry.
    mt = { __index = rt.profiles[profile], __metatable = false }
    rec[profile] = mt
  end
  local env = setmetatable({ require = make_require(rec, profile) }, mt)
  env._G = env
  env.load = function(chunk, name, mode, chunk_env) return safe_load(env, chunk, name, mode, chunk_env) end
  return rec.chunk(env)
end
rt.instantiate = instantiate

-- Entry point of a runtime task that runs an entry's method with arguments.
function rt.run_entry(id, profile, args)
  local mod = instantiate(id, profile)
  local rec = entries[id]
  local fn = mod
  if type(mod) == "table" then fn = mod[rec.method] end
  if type(fn) ~= "function" then
    raise("NotFound", string_format("entry %s: method '%s' is not a function in the table its source returns",
      id, tostring(rec.method)))
  end
  return fn(unpack(args, 1, args.n))
end

-- Task body for one run of an entry: results come back as (true, {n=..., ...}, first) or
-- (false, err); `first` spares the driver a lookup in the table (most callers want only it).
function rt.entry_task(id, profile, args)
  local ok, out = rt.finish_results(rt.run_entry(id, profile, args))
  if ok then return true, out, out[1] end
  return false, out
end

-- Copy an entry's results for its caller, turning `nil, err` into an error.
-- As upstream, a second result that is an error object or a string is an error, whatever
-- the first is (`return nil, err`, `return false, "why"`).
function rt.finish_results(...)
  local first, second = ...
  if second ~= nil and (type(second) == "string" or is_error(second)) then
    if is_error(second) then return false, copy(second) end
    return false, new_error("", second, nil)
  end
  local n = select("#", ...)
  local out = { n = n }
  for i = 1, n do out[i] = copy((select(i, ...)), "result", i) end
  return true, out
end

rt.pack, rt.unpack = pack, unpack
rt.co_running = co_running
rt.traceback = traceback
return rt
