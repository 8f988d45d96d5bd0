-- registry: the entries of the running application, as tables {id, kind, meta, data}.
-- Version 1 is the project as loaded; every applied changeset makes a new version, and
-- registry.apply_version moves between versions.
local rt, natives = ...
local call, raise, new_error = rt.call, rt.raise, rt.new_error
local type, tostring, setmetatable, math_type = type, tostring, setmetatable, math.type

local M = {}

local function fail(kind, message) return nil, new_error(kind, message, false) end

local function string_arg(fn, v, what)
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then
    raise("Invalid", "registry." .. fn .. ": " .. (what or "id") .. " must be a string, got " .. type(v))
  end
  return v
end

-- "ns:name" split at the first colon; without one, ns is "".
function M.parse_id(id)
  id = string_arg("parse_id", id)
  local i = id:find(":", 1, true)
  if not i then return { ns = "", name = id } end
  return { ns = id:sub(1, i - 1), name = id:sub(i + 1) }
end

---------------------------------------------------------------------------------------
-- Versions
---------------------------------------------------------------------------------------
local Version, VersionMethods = rt.class("registry.Version")
local version_id = setmetatable({}, { __mode = "k" })

local function new_version(id)
  local v = setmetatable({}, Version)
  version_id[v] = id
  return v
end

local function vid(v, method)
  local id = version_id[v]
  if id == nil then raise("Invalid", "version:" .. method .. " must be called on a Version (v:" .. method .. "())") end
  return id
end

function VersionMethods:id() return vid(self, "id") end
function VersionMethods:string() return "v" .. vid(self, "string") end

local function version_list()
  local ids, current = call("registry.versions")
  local out = {}
  for i = 1, #ids do out[i] = new_version(ids[i]) end
  return out, ids, current
end

local function neighbour(v, step)
  local id = vid(v, step > 0 and "next" or "previous")
  local _, ids = version_list()
  for i = 1, #ids do
    if ids[i] == id then
      local other = ids[i + step]
      return other and new_version(other) or nil
    end
  end
  return nil
end
function VersionMethods:previous() return neighbour(self, -1) end
function VersionMethods:next() return neighbour(self, 1) end
Version.__tostring = function(v) return "registry.Version{v" .. tostring(version_id[v]) .. "}" end
Version.__eq = function(a, b) return version_id[a] ~= nil and version_id[a] == version_id[b] end

---------------------------------------------------------------------------------------
-- Changesets
---------------------------------------------------------------------------------------
local Changes, ChangesMethods = rt.class("registry.Changes")
local ops_of = setmetatable({}, { __mode = "k" })  -- changeset -> its operations
Changes.__tostring = function(c) return "registry.Changes{ops=" .. #(ops_of[c] or {}) .. "}" end

local function entry_id_of(fn, id)
  if type(id) == "string" and id ~= "" then return id end
  if type(id) == "table" and type(id.ns) == "string" and type(id.name) == "string" then
    return id.ns .. ":" .. id.name
  end
  raise("Invalid", "changes:" .. fn .. ": the entry id must be \"ns:name\" or {ns = ..., name = ...}")
end

local function op_entry(fn, e)
  if type(e) ~= "table" then raise("Invalid", "changes:" .. fn .. ": entry must be a table, got " .. type(e)) end
  if type(e.kind) ~= "string" or e.kind == "" then raise("Invalid", "changes:" .. fn .. ": entry kind is required") end
  if e.meta ~= nil and type(e.meta) ~= "table" then raise("Invalid", "changes:" .. fn .. ": entry meta must be a table") end
  return rt.copy({ id = entry_id_of(fn, e.id), kind = e.kind, meta = e.meta or {}, data = e.data }, "entry")
end

local function ops(c, method)
  local list = ops_of[c]
  if list == nil then
    raise("Invalid", "changes:" .. method .. " must be called on a changeset (changes:" .. method .. "(...))")
  end
  return list
end

local function add(c, method, kind, entry)
  local list = ops(c, method)
  list[#list + 1] = { kind = kind, entry = entry }
  return c
end

function ChangesMethods:create(e) return add(self, "create", "entry.create", op_entry("create", e)) end
function ChangesMethods:update(e) return add(self, "update", "entry.update", op_entry("update", e)) end
function ChangesMethods:delete(id) return add(self, "delete", "entry.delete", { id = entry_id_of("delete", id) }) end
function ChangesMethods:ops() return rt.copy(ops(self, "ops"), "ops") end
-- Apply the operations as a new version (all or nothing): Version, or nil, err.
function ChangesMethods:apply()
  local list = ops(self, "apply")
  if #list == 0 then return fail("Invalid", "no changes to apply") end
  local id, err = call("registry.apply", list)
  if id == nil then return nil, err end
  return new_version(id), nil
end

local function new_changes()
  local c = setmetatable({}, Changes)
  ops_of[c] = {}
  return c
end

---------------------------------------------------------------------------------------
-- Snapshots
---------------------------------------------------------------------------------------
local Snapshot, SnapshotMethods = rt.class("registry.Snapshot")
local snapshot_version = setmetatable({}, { __mode = "k" })
Snapshot.__tostring = function(s) return "registry.Snapshot{version=v" .. tostring(snapshot_version[s]) .. "}" end

local function new_snapshot(id)
  local s = setmetatable({}, Snapshot)
  snapshot_version[s] = id
  return s
end

local function sv(s, method)
  local id = snapshot_version[s]
  if id == nil then raise("Invalid", "snapshot:" .. method .. " must be called on a Snapshot (snap:" .. method .. "(...))") end
  return id
end

function SnapshotMethods:entries() return call("registry.entries", sv(self, "entries")), nil end
function SnapshotMethods:get(id)
  local v = sv(self, "get")
  return call("registry.get", v, string_arg("snapshot:get", id))
end
function SnapshotMethods:namespace(ns)
  local v = sv(self, "namespace")
  return call("registry.namespace", v, string_arg("snapshot:namespace", ns, "namespace"))
end
function SnapshotMethods:find(filter)
  local v = sv(self, "find")
  if filter ~= nil and type(filter) ~= "table" then raise("Invalid", "snapshot:find: filter must be a table") end
  return call("registry.find", v, filter), nil
end
function SnapshotMethods:version() return new_version(sv(self, "version")) end
function SnapshotMethods:changes()
  sv(self, "changes")
  return new_changes()
end

---------------------------------------------------------------------------------------
-- The current registry
---------------------------------------------------------------------------------------
local function current_id()
  local _, _, current = version_list()
  return current
end

function M.get(id)
  return call("registry.get", current_id(), string_arg("get", id))
end

function M.find(filter)
  if filter ~= nil and type(filter) ~= "table" then raise("Invalid", "registry.find: filter must be a table") end
  return call("registry.find", current_id(), filter), nil
end

function M.snapshot() return new_snapshot(current_id()), nil end

local function at(fn, id, lowest)
  if math_type(id) == "float" and id == math.floor(id) then id = math.tointeger(id) end
  if math_type(id) ~= "integer" or id < lowest then return fail("Invalid", "invalid version ID") end
  local ok, err = call("registry.has_version", id)
  if not ok then return nil, err end
  return id
end

function M.snapshot_at(id)
  local v, err = at("snapshot_at", id, 1)
  if not v then return nil, err end
  return new_snapshot(v), nil
end

function M.current_version() return new_version(current_id()), nil end

function M.versions() return (version_list()), nil end

-- Move the registry to version v (a rollback, or forward again): true, or false, err.
function M.apply_version(v)
  local id = version_id[v]
  if id == nil then return false, new_error("Invalid", "registry.apply_version: a Version is required", false) end
  return call("registry.apply_version", id)
end

function M.build_delta(from, to)
  if type(from) ~= "table" or type(to) ~= "table" then
    return fail("Invalid", "registry.build_delta: from and to must be arrays of entries")
  end
  return natives.build_delta(from, to)
end

local History, HistoryMethods = rt.class("registry.History")
History.__tostring = function() return "registry.History{}" end

function M.history() return setmetatable({}, History), nil end
function HistoryMethods:versions() return (version_list()), nil end
function HistoryMethods:get_version(id)
  local v, err = at("get_version", id, 0)
  if not v then return nil, err end
  return new_version(v), nil
end
function HistoryMethods:snapshot_at(v)
  local id = version_id[v]
  if id == nil then id = v end
  local ok, err = at("snapshot_at", id, 0)
  if not ok then return nil, err end
  return new_snapshot(ok), nil
end

return M
