-- security: the actor (who) and scope (which policies) of the running code.
--
-- They travel in the context under reserved keys ("@actor", "@scope"), so every call,
-- spawn and workflow inherits them exactly as it inherits context values, and
-- `funcs.new():with_actor(a)` / `process.with_actor(a)` replace them for what they start.
-- Policies are not evaluated yet: a scope holds policy IDs, `evaluate` answers
-- "undefined", and `security.can` allows unless both an actor and a scope are set.
local rt = ...
local call, raise, copy = rt.call, rt.raise, rt.copy
local setmetatable, type, getmetatable_raw, ipairs = setmetatable, type, debug.getmetatable, ipairs
local new_error = rt.new_error

local ActorMT, Actor = rt.class("security.Actor")
local ScopeMT, Scope = rt.class("security.Scope")
local PolicyMT, Policy = rt.class("security.Policy")

local function new_actor(id, meta)
  return setmetatable({ _id = id, _meta = meta or {} }, ActorMT)
end
local function new_scope(ids)
  return setmetatable({ _ids = ids }, ScopeMT)
end
local function new_policy(id) return setmetatable({ _id = id }, PolicyMT) end

function Actor:id() return self._id end
function Actor:meta() return copy(self._meta, "meta") end
ActorMT.__tostring = function(a) return "security.Actor{id=" .. a._id .. "}" end

function Policy:id() return self._id end

local function policy_id(p)
  if getmetatable_raw(p) == PolicyMT then return p._id end
  if type(p) == "string" and p ~= "" then return p end
  raise("Invalid", "expected a policy (security.policy) or a policy ID")
end

function Scope:policies()
  local out = {}
  for i, id in ipairs(self._ids) do out[i] = new_policy(id) end
  return out
end
function Scope:contains(id)
  id = policy_id(id)
  for _, have in ipairs(self._ids) do if have == id then return true end end
  return false
end
function Scope:with(p)
  local id = policy_id(p)
  if self:contains(id) then return self end
  local ids = { table.unpack(self._ids) }
  ids[#ids + 1] = id
  return new_scope(ids)
end
function Scope:without(p)
  local id = policy_id(p)
  local ids = {}
  for _, have in ipairs(self._ids) do if have ~= id then ids[#ids + 1] = have end end
  return new_scope(ids)
end
function Scope:evaluate(actor, action, resource, meta)
  return "undefined"  -- policies are not evaluated by this runtime yet
end

-- Plain data for the context (what crosses to called functions and spawned processes).
function rt.security_data(kind, value)
  if value == nil then raise("Invalid", kind .. " cannot be nil") end
  if kind == "actor" then
    if getmetatable_raw(value) ~= ActorMT then raise("Invalid", "security.Actor expected") end
    return { id = value._id, meta = value._meta }
  end
  if getmetatable_raw(value) ~= ScopeMT then raise("Invalid", "security.Scope expected") end
  return { policies = value._ids }
end

local M = {}

function M.new_actor(id, meta)
  if type(id) ~= "string" or id == "" then raise("Invalid", "security.new_actor: id must be a non-empty string") end
  if meta ~= nil and type(meta) ~= "table" then raise("Invalid", "security.new_actor: meta must be a table") end
  return new_actor(id, meta and copy(meta, "meta") or {})
end

function M.new_scope(policies)
  local ids = {}
  if policies ~= nil then
    if type(policies) ~= "table" then raise("Invalid", "security.new_scope: policies must be a list") end
    for i, p in ipairs(policies) do ids[i] = policy_id(p) end
  end
  return new_scope(ids)
end

function M.actor()
  local data = call("security.get", "@actor")
  if data == nil then return nil end
  return new_actor(data.id, data.meta)
end

function M.scope()
  local data = call("security.get", "@scope")
  if data == nil then return nil end
  return new_scope(data.policies or {})
end

function M.can(action, resource, meta)
  if type(action) ~= "string" then raise("Invalid", "security.can: action must be a string") end
  local actor, scope = M.actor(), M.scope()
  if actor and scope then return scope:evaluate(actor, action, resource, meta) == "allow" end
  return true
end

local function unsupported(what)
  return function() return nil, new_error("NotFound", what .. ": no security policies are defined in this runtime", false) end
end
M.policy = unsupported("security.policy")
M.named_scope = unsupported("security.named_scope")
M.token_store = unsupported("security.token_store")

return M
