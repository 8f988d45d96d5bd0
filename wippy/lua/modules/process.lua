-- process: spawn, message, monitor and link processes. Always available as a global.
local rt = ...
local call, raise, copy, copy_args = rt.call, rt.raise, rt.copy, rt.copy_args
local setmetatable, type, pcall, select, pairs = setmetatable, type, pcall, select, pairs
local getmetatable_raw = debug.getmetatable
local new_error = rt.new_error

local P = {}
P.event = { CANCEL = "pid.cancel", EXIT = "pid.exit", LINK_DOWN = "pid.link.down" }
local EVENT_KINDS = { EXIT = P.event.EXIT, LINK_DOWN = P.event.LINK_DOWN, CANCEL = P.event.CANCEL }

---------------------------------------------------------------------------------------
-- Messages and events
---------------------------------------------------------------------------------------
local MessageMethods = {}
function MessageMethods:topic() return self._t end
function MessageMethods:from() return self._f or "" end
function MessageMethods:payload() return self._p end

-- Methods first; any other field reads the payload's data (`msg.approved` for a message
-- whose payload is a table with `approved`), which upstream leaves nil.
local Message = rt.userdata({ __name = "wippy.message", __metatable = "wippy.message" })
function Message.__index(m, k)
  local method = MessageMethods[k]
  if method ~= nil then return method end
  local data = m._p._v
  if type(data) == "table" then return data[k] end
  return nil
end
Message.__tostring = function(m) return "process.Message{topic=" .. tostring(m._t) .. "}" end
rt.register_value_type("message", Message, function(m)
  if type(m._t) ~= "string" or (m._f ~= nil and type(m._f) ~= "string") or getmetatable_raw(m._p) ~= rt.PayloadMT then
    return "topic, sender and payload are malformed"
  end
end)

local make_payload = rt.make_payload
function rt.make_message(topic, from, payload)
  return setmetatable({ _t = topic, _f = from, _p = make_payload(payload) }, Message)
end

-- Events carry `kind` (a process.event value) and `from`; `type` and `pid` are the same
-- values under the names older docs use. The Python side names kinds EXIT, LINK_DOWN and
-- CANCEL.
function rt.make_event(fields, has_result, value, err)
  if has_result then fields.result = { value = value, error = err } end
  local kind = EVENT_KINDS[fields.kind] or fields.kind
  fields.kind, fields.type, fields.pid = kind, kind, fields.from
  return fields
end

-- make_event for an event with only kind, from and result (EXIT, LINK_DOWN), built in one go.
function rt.make_exit_event(kind, from, value, err)
  kind = EVENT_KINDS[kind] or kind
  return { kind = kind, type = kind, from = from, pid = from, result = { value = value, error = err } }
end

local function invalid(message) return nil, new_error("Invalid", message, false) end

local function check_dest(dest, fn)
  if type(dest) ~= "string" or dest == "" then
    return "process." .. fn .. ": destination must be a PID or a registered name"
  end
end

local function check_topic(topic, fn)
  if type(topic) ~= "string" or topic == "" then
    return "process." .. fn .. ": topic must be a non-empty string"
  end
  if topic:sub(1, 1) == "@" then
    return "process." .. fn .. ": topic '" .. topic .. "' is reserved (topics starting with '@' belong to the kernel)"
  end
end

-- The payload of a message: nothing, one value, or several as an array.
local function message_payload(...)
  local n = select("#", ...)
  if n == 0 then return true, nil end
  if n == 1 then return pcall(copy, (...), "payload") end
  return pcall(copy, { ... }, "payload")
end

---------------------------------------------------------------------------------------
-- Identity and messaging
---------------------------------------------------------------------------------------
function P.pid() return call("process.pid") end
function P.id() return call("process.id") end

function P.send(dest, topic, ...)
  local bad = check_dest(dest, "send") or check_topic(topic, "send")
  if bad then return invalid(bad) end
  local ok, payload = message_payload(...)
  if not ok then return nil, payload end
  local direct = rt.direct_send  -- no command where nothing can block (an in-memory receiver)
  if direct then
    local sent, err = direct(dest, topic, setmetatable({ _t = topic, _p = make_payload(payload) }, Message))
    if sent ~= false then return sent, err end
  end
  return call("process.send", dest, topic, payload)
end

function P.inbox() return rt.wrap_channel(call("process.inbox")) end
function P.events() return rt.wrap_channel(call("process.events")) end

local function unwrap_message(m) return m._p._v end

function P.listen(topic, options)
  local bad = check_topic(topic, "listen")
  if bad then raise("Invalid", bad) end
  if options ~= nil and type(options) ~= "table" then
    raise("Invalid", "process.listen: options must be a table like {message = true}")
  end
  local as_message = options ~= nil and options.message == true
  local ch = rt.wrap_channel(call("process.listen", topic))
  rawset(ch, "_unwrap", (not as_message) and unwrap_message or nil)
  return ch
end

function P.unlisten(ch)
  if getmetatable_raw(ch) ~= rt.Channel then
    raise("Invalid", "process.unlisten expects a channel returned by process.listen")
  end
  return call("process.unlisten", rt.channel_handle(ch))
end

---------------------------------------------------------------------------------------
-- Control, monitoring, links, options
---------------------------------------------------------------------------------------
local function dest_call(op, fn)
  return function(dest, ...)
    local bad = check_dest(dest, fn)
    if bad then return invalid(bad) end
    return call(op, dest, ...)
  end
end
P.terminate = dest_call("process.terminate", "terminate")
P.monitor = dest_call("process.monitor", "monitor")
P.unmonitor = dest_call("process.unmonitor", "unmonitor")
P.link = dest_call("process.link", "link")
P.unlink = dest_call("process.unlink", "unlink")

-- cancel(dest [, deadline] [, reason]): deadline as ms, a duration string or a Duration.
function P.cancel(dest, a, b)
  local bad = check_dest(dest, "cancel")
  if bad then return invalid(bad) end
  local deadline, reason = nil, nil
  local function as_deadline(v)
    if type(v) == "number" then return v end
    if getmetatable_raw(v) == rt.value_type_names.duration then return v.ns / 1e6 end  -- time.Duration
    if type(v) == "string" and v:match("^%s*[%d.]+%a+") then return v end
  end
  local d = as_deadline(a)
  if d ~= nil then deadline, reason = d, b else reason, deadline = a, as_deadline(b) end
  if reason ~= nil and type(reason) ~= "string" then return invalid("process.cancel: reason must be a string") end
  return call("process.cancel", dest, deadline, reason)
end

function P.get_options() return call("process.get_options") end

function P.set_options(options)
  if type(options) ~= "table" then return invalid("process.set_options expects a table") end
  if options.trap_links ~= nil and type(options.trap_links) ~= "boolean" then
    return invalid("process.set_options: trap_links must be a boolean")
  end
  return call("process.set_options", options.trap_links)
end

function P.upgrade(id, ...)
  if id ~= nil and type(id) ~= "string" then raise("Invalid", "process.upgrade: id must be an entry ID or nil") end
  return call("process.upgrade", id, copy_args(...))
end

---------------------------------------------------------------------------------------
-- Spawning: module functions and the immutable spawner builder
---------------------------------------------------------------------------------------
local Spawner = rt.userdata({ __name = "wippy.spawner", __metatable = "wippy.spawner" })

local function derive(base, field, value)
  local s = { _ctx = base._ctx, _opts = base._opts, _name = base._name, _msgs = base._msgs }
  s[field] = value
  return setmetatable(s, Spawner)
end

local function merged(a, b)
  local out = {}
  if a then for k, v in pairs(a) do out[k] = v end end
  for k, v in pairs(b) do out[k] = v end
  return out
end

local function check_spawner(self, method)
  if getmetatable_raw(self) ~= Spawner then
    raise("Invalid", "spawner:" .. method .. " must be called with ':' on a spawner (process.with_context/with_options/...)")
  end
end

function Spawner:with_context(values)
  check_spawner(self, "with_context")
  if type(values) ~= "table" then raise("Invalid", "with_context expects a table of values") end
  return derive(self, "_ctx", merged(self._ctx, copy(values, "context")))
end

function Spawner:with_options(options)
  check_spawner(self, "with_options")
  if type(options) ~= "table" then raise("Invalid", "with_options expects a table of options") end
  return derive(self, "_opts", merged(self._opts, copy(options, "options")))
end

function Spawner:with_name(name)
  check_spawner(self, "with_name")
  if type(name) ~= "string" or name == "" then raise("Invalid", "with_name expects a non-empty string") end
  return derive(self, "_name", name)
end

function Spawner:with_message(topic, ...)
  check_spawner(self, "with_message")
  local bad = check_topic(topic, "with_message")
  if bad then raise("Invalid", bad) end
  local ok, payload = message_payload(...)
  if not ok then error(payload, 0) end
  local msgs = {}
  if self._msgs then for i, m in ipairs(self._msgs) do msgs[i] = m end end
  msgs[#msgs + 1] = { topic, payload }
  return derive(self, "_msgs", msgs)
end

-- The security actor and scope travel in the context (see the security module).
local function with_security(kind)
  return function(self, value)
    check_spawner(self, "with_" .. kind)
    return derive(self, "_ctx", merged(self._ctx, { ["@" .. kind] = rt.security_data(kind, value) }))
  end
end
Spawner.with_actor = with_security("actor")
Spawner.with_scope = with_security("scope")

local MONITOR, LINK = 1, 2

local function spawn_with(self, mode, id, host, ...)
  if type(id) ~= "string" or id == "" then return invalid("process.spawn: id must be an entry ID") end
  if type(host) ~= "string" or host == "" then return invalid("process.spawn: host must be a host entry ID") end
  local ok, args = pcall(copy_args, ...)
  if not ok then return nil, args end
  return call("process.spawn", id, host, mode, self._ctx, self._opts, self._name, self._msgs, args)
end

function Spawner:spawn(id, host, ...) check_spawner(self, "spawn") return spawn_with(self, 0, id, host, ...) end
function Spawner:spawn_monitored(id, host, ...) check_spawner(self, "spawn_monitored") return spawn_with(self, MONITOR, id, host, ...) end
function Spawner:spawn_linked(id, host, ...) check_spawner(self, "spawn_linked") return spawn_with(self, LINK, id, host, ...) end
function Spawner:spawn_linked_monitored(id, host, ...)
  check_spawner(self, "spawn_linked_monitored")
  return spawn_with(self, MONITOR + LINK, id, host, ...)
end

function Spawner:exec(id, host, ...)
  check_spawner(self, "exec")
  if type(id) ~= "string" or id == "" then return invalid("process.exec: id must be an entry ID") end
  if type(host) ~= "string" or host == "" then return invalid("process.exec: host must be a host entry ID") end
  local ok, args = pcall(copy_args, ...)
  if not ok then return nil, args end
  return call("process.exec", id, host, self._ctx, self._opts, self._name, self._msgs, args)
end

local plain = setmetatable({}, Spawner)
function P.spawn(...) return plain:spawn(...) end
function P.spawn_monitored(...) return plain:spawn_monitored(...) end
function P.spawn_linked(...) return plain:spawn_linked(...) end
function P.spawn_linked_monitored(...) return plain:spawn_linked_monitored(...) end
function P.exec(...) return plain:exec(...) end
function P.with_context(values) return plain:with_context(values) end
function P.with_options(options) return plain:with_options(options) end
function P.with_name(name) return plain:with_name(name) end
function P.with_message(topic, ...) return plain:with_message(topic, ...) end
function P.with_actor(actor) return plain:with_actor(actor) end
function P.with_scope(scope) return plain:with_scope(scope) end

---------------------------------------------------------------------------------------
-- Name registry (LOCAL scope; cluster scopes need a cluster)
---------------------------------------------------------------------------------------
local registry = { LOCAL = 0, EVENTUAL = 1, CONSISTENT = 2, STRONG = 3 }

local function check_scope(scope, fn)
  if scope ~= nil and scope ~= 0 then
    return "process.registry." .. fn .. ": only the LOCAL scope is available without a cluster"
  end
end

function registry.register(name, pid, scope)
  if type(name) ~= "string" or name == "" then return invalid("process.registry.register: name must be a non-empty string") end
  if pid ~= nil and type(pid) ~= "string" then return invalid("process.registry.register: pid must be a PID string") end
  local bad = check_scope(scope, "register")
  if bad then return invalid(bad) end
  return call("process.register", name, pid)
end

function registry.lookup(name)
  if type(name) ~= "string" or name == "" then return invalid("process.registry.lookup: name must be a non-empty string") end
  return call("process.lookup", name)
end

function registry.unregister(name, scope)
  if type(name) ~= "string" or name == "" then return invalid("process.registry.unregister: name must be a non-empty string") end
  local bad = check_scope(scope, "unregister")
  if bad then return invalid(bad) end
  return call("process.unregister", name)
end
P.registry = registry

rt.seal_class(Spawner)

return P
