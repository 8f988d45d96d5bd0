-- types: run-time values for the types of typed Lua (docs/typed-lua.md).
--
-- A type value is an empty proxy table with the `Type` metatable; what it describes lives
-- in the private table `D`, so user code can use a type but neither see nor change its
-- insides. That matters because one type value serves every instance of the code that
-- declared it, in every actor (and libraries hand their types to other entries).
--
-- Calling a type validates and returns the value or raises an Invalid error
-- (`Point(data)`, and `string(x)` through the string library's __call, see prelude.lua);
-- `T:is(v)` returns `v, nil` or `nil, err`. The typed-Lua front end emits, once per
-- chunk, `__wippy_types[key] or __wippy_types.chunk(key, {descriptions})` and binds each
-- declared type with `local Name = __wt[i]` (see wippy/lua/typed/_runtime.py for the
-- description format read by `build` below).
local rt, natives = ...
local type, next, ipairs, select, tostring, setmetatable, rawequal, pcall =
  type, next, ipairs, select, tostring, setmetatable, rawequal, pcall
local math_type, tointeger, utf8_len = math.type, math.tointeger, utf8.len
local string_format, concat = string.format, table.concat
local getmetatable_raw = debug.getmetatable
local new_error, raise, is_error = rt.new_error, rt.raise, rt.is_error
local sorted_pairs = rt.sorted_pairs or pairs
local INVALID = rt.errors.INVALID

local WEAK = { __mode = "k" }
local D = setmetatable({}, WEAK)        -- type value -> description
local pending = setmetatable({}, WEAK)  -- declared type value -> function that fills it
local filling = setmetatable({}, WEAK)  -- declared type values being filled (cycles)

local Type = { __name = "wippy.type", __metatable = "wippy.type" }
local methods = {}

local function shell() return setmetatable({}, Type) end
local function make(d)
  local t = setmetatable({}, Type)
  D[t] = d
  return t
end
local function copy(d)
  local c = {}
  for k, v in next, d do c[k] = v end
  return c
end
-- A new description from `d`: same structure, without d's identity (name, generic, ...).
local function derive(d)
  local c = copy(d)
  c.n, c.builtin, c.gen, c.method, c.method_field = nil, nil, nil, nil, nil
  return c
end

---------------------------------------------------------------------------------------
-- Built-in types
---------------------------------------------------------------------------------------
local B = {}
for _, k in ipairs({ "number", "integer", "string", "boolean", "nil", "any", "unknown",
    "never", "table", "function", "thread", "userdata", "error", "type" }) do
  B[k] = make({ k = k, n = k, builtin = true })
end
local ANY, NIL = B.any, B["nil"]

local function opaque(name)  -- a name the front end could not resolve: accepts anything
  return make({ k = "any", n = name })
end

-- Make sure a declared type value has its description (it may be declared further down
-- in the same chunk, or be part of a cycle, in which case it accepts anything).
local function need(t)
  if D[t] == nil then
    local fill = pending[t]
    if fill and not filling[t] then
      filling[t] = true
      fill()
      filling[t] = nil
    end
    if D[t] == nil then D[t] = { k = "any" } end
  end
  return t
end

---------------------------------------------------------------------------------------
-- Rendering (type syntax) and messages
---------------------------------------------------------------------------------------
local render

local function quote(s)
  return (string_format("%q", s):gsub("\\\n", "\\n"))
end

local function literal_text(v)
  if type(v) == "string" then return quote(v) end
  return tostring(v)
end

-- A value as shown after "got" in a message.
local function show(v)
  local tv = type(v)
  if tv == "string" then
    if #v > 40 then v = v:sub(1, 37) .. "..." end
    return quote(v)
  elseif tv == "number" or tv == "boolean" or tv == "nil" then
    return tostring(v)
  elseif D[v] then
    return "type " .. render(v)
  elseif is_error(v) then
    return "error"
  end
  return tv
end

local function join(list, sep)
  local parts = {}
  for i = 1, #list do parts[i] = render(list[i]) end
  return concat(parts, sep)
end

local function render_fields(fs)
  local parts = {}
  for i = 1, #fs do
    local f = fs[i]
    parts[i] = f.name .. (f.opt and "?: " or ": ") .. render(f.type)
  end
  return concat(parts, ", ")
end

local renderers = {
  literal = function(d) return literal_text(d.lit) end,
  optional = function(d)
    local inner = D[d.inner]
    local s = render(d.inner)
    if not inner.n and (inner.k == "union" or inner.k == "intersection" or inner.k == "function") then
      s = "(" .. s .. ")"
    end
    return s .. "?"
  end,
  union = function(d) return join(d.vs, " | ") end,
  intersection = function(d) return join(d.vs, " & ") end,
  array = function(d) return "{" .. render(d.e) .. "}" end,
  map = function(d) return "{[" .. render(d.key) .. "]: " .. render(d.val) .. "}" end,
  record = function(d)
    local s = render_fields(d.fs)
    if d.key then s = (s == "" and "" or s .. ", ") .. "[" .. render(d.key) .. "]: " .. render(d.val) end
    return "{" .. s .. "}"
  end,
  interface = function(d) return "interface {" .. render_fields(d.fs) .. "}" end,
  ["function"] = function(d)
    if not d.ps then return "function" end
    local ps = join(d.ps, ", ")
    if d.va then ps = (ps == "" and "" or ps .. ", ") .. "..." .. render(d.va) end
    local rs = #d.rs == 1 and render(d.rs[1]) or "(" .. join(d.rs, ", ") .. ")"
    return "(" .. ps .. ") -> " .. rs
  end,
}

local function render_checks(d, s)
  local cs = d.cs
  if not cs then return s end
  local parts = { s }
  for i = 1, #cs do
    local c = cs[i]
    parts[#parts + 1] = "@" .. c.op .. (c.arg ~= nil and ("(" .. literal_text(c.arg) .. ")") or "")
  end
  return concat(parts, " ")
end

-- Type syntax for `t`: named types by name unless `expand` (the top of a message).
render = function(t, expand)
  local d = D[need(t)]
  if d.n and not expand then return d.n end
  if d.builtin then return d.k end
  local r = renderers[d.k]
  local s = r and r(d) or d.k
  if d.ro then s = "readonly " .. s end
  return render_checks(d, s)
end

-- "Point.y: <message>" from the failing type's name and the path inside the value.
local function message(t, msg, path)
  local d = D[t]
  local where = (d.n and not d.builtin) and d.n or ""
  if path then
    where = where .. path
    if where:sub(1, 1) == "." then where = where:sub(2) end
  end
  if where == "" then return msg end
  return where .. ": " .. msg
end

local function key_path(k)
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") then return "." .. k end
    return "[" .. quote(k) .. "]"
  end
  return "[" .. tostring(k) .. "]"
end

---------------------------------------------------------------------------------------
-- Validation: check(t, v) returns nil, or a message and the path where it failed
---------------------------------------------------------------------------------------
local check

-- What a type expects, for messages ("a function (number) -> boolean", "{x: number}").
local function expected(t)
  local d = D[t]
  if d.k == "function" and d.ps then return "a function " .. render(t, true) end
  return render(t, true)
end

local function mismatch(t, v)
  return "expected " .. expected(t) .. ", got " .. show(v)
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable_raw(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local function of_type(name)
  return function(t, _, v) if type(v) ~= name then return mismatch(t, v) end end
end

local function fields_of(d)
  if d.fs then return d.fs, d.fm end
  if d.k ~= "intersection" then return nil, nil end
  if not d.mfs then  -- the fields of every record part, merged (computed once)
    local fs, fm = {}, {}
    for i = 1, #d.vs do
      local pd = D[need(d.vs[i])]
      local pfs = fields_of(pd)
      if pfs then
        for j = 1, #pfs do
          local f = pfs[j]
          if not fm[f.name] then fs[#fs + 1] = f end
          fm[f.name] = f
        end
      end
    end
    d.mfs, d.mfm = fs, fm
  end
  return d.mfs, d.mfm
end

local function entry_failure(kt, vt, k, x)
  local m, p = check(kt, k)
  if m then return "key " .. show(k) .. ": " .. m, p end
  m, p = check(vt, x)
  if m then return m, key_path(k) .. (p or "") end
end

-- Entries of a map (or of a record beyond its fields): the failure reported is the one
-- at the first key in sorted order, so the message does not depend on hash order (a
-- workflow replaying it sees the same text).
local function check_entries(kt, vt, v, skip)
  for k, x in next, v do
    if (skip == nil or skip[k] == nil) and entry_failure(kt, vt, k, x) then
      for k2, x2 in sorted_pairs(v) do
        if skip == nil or skip[k2] == nil then
          local m, p = entry_failure(kt, vt, k2, x2)
          if m then return m, p end
        end
      end
    end
  end
end

local function check_fields(d, v)
  local fs = d.fs
  for i = 1, #fs do
    local f = fs[i]
    local x = v[f.name]
    if x == nil then
      if not f.opt and check(f.type, nil) then
        return "expected " .. expected(f.type) .. ", got nil (missing field)", key_path(f.name)
      end
    else
      local m, p = check(f.type, x)
      if m then return m, key_path(f.name) .. (p or "") end
    end
  end
  if d.key then return check_entries(d.key, d.val, v, d.fm) end
end

local checkers = {
  number = of_type("number"),
  string = of_type("string"),
  boolean = of_type("boolean"),
  ["nil"] = of_type("nil"),
  table = of_type("table"),
  thread = of_type("thread"),
  userdata = of_type("userdata"),
  any = function() end,
  unknown = function() end,
  never = function(t, _, v) return mismatch(t, v) end,
  integer = function(t, _, v)
    if math_type(v) ~= "integer" and not (math_type(v) == "float" and tointeger(v)) then
      return mismatch(t, v)
    end
  end,
  error = function(t, _, v)
    if not is_error(v) and type(v) ~= "string" then return mismatch(t, v) end
  end,
  type = function(t, _, v) if D[v] == nil then return mismatch(t, v) end end,
  ["function"] = function(t, _, v) if not callable(v) then return mismatch(t, v) end end,
  literal = function(t, d, v)
    if v ~= d.lit or type(v) ~= type(d.lit) then return mismatch(t, v) end
  end,
  optional = function(_, d, v)
    if v ~= nil then return check(d.inner, v) end
  end,
  union = function(t, d, v)
    local vs = d.vs
    for i = 1, #vs do
      if not check(vs[i], v) then return nil end
    end
    return mismatch(t, v)
  end,
  intersection = function(_, d, v)
    local vs = d.vs
    for i = 1, #vs do
      local m, p = check(vs[i], v)
      if m then return m, p end
    end
  end,
  array = function(t, d, v)
    if type(v) ~= "table" then return mismatch(t, v) end
    local e = d.e
    for i = 1, #v do
      local m, p = check(e, v[i])
      if m then return m, "[" .. i .. "]" .. (p or "") end
    end
  end,
  map = function(t, d, v)
    if type(v) ~= "table" then return mismatch(t, v) end
    return check_entries(d.key, d.val, v, nil)
  end,
  record = function(t, d, v)
    if type(v) ~= "table" then return mismatch(t, v) end
    return check_fields(d, v)
  end,
}
checkers.interface = checkers.record

local function length(v)
  if type(v) == "string" then return utf8_len(v) or #v end
  if type(v) == "table" then return #v end
  return nil
end

local function number_text(n)
  if math_type(n) == "float" and n == tointeger(n) then return tostring(tointeger(n)) end
  return tostring(n)
end

-- Validators: function(value, argument) -> message or nil; value already has the base type.
local validators = {
  min = function(v, n)
    if type(v) == "number" and v < n then
      return number_text(v) .. " is below the minimum " .. number_text(n)
    end
  end,
  max = function(v, n)
    if type(v) == "number" and v > n then
      return number_text(v) .. " is above the maximum " .. number_text(n)
    end
  end,
  min_len = function(v, n)
    local len = length(v)
    if len and len < n then
      return "length " .. len .. " is below the minimum length " .. number_text(n)
    end
  end,
  max_len = function(v, n)
    local len = length(v)
    if len and len > n then
      return "length " .. len .. " is above the maximum length " .. number_text(n)
    end
  end,
  pattern = function(v, p)
    if type(v) == "string" and not natives.pattern_find(p, v) then
      return show(v) .. " does not match the pattern " .. quote(p)
    end
  end,
}
local validator_arg = { min = "number", max = "number", min_len = "number", max_len = "number",
  pattern = "string" }

check = function(t, v)
  local d = D[t]
  local m, p = checkers[d.k](t, d, v)
  if m then return m, p end
  local cs = d.cs
  if cs and v ~= nil then
    for i = 1, #cs do
      local c = cs[i]
      m = c.fn(v, c.arg)
      if m then return m end
    end
  end
end

---------------------------------------------------------------------------------------
-- Subtyping (for <=, < and ==)
---------------------------------------------------------------------------------------
local subtype

local TABLE_LIKE = { table = true, record = true, interface = true, array = true, map = true }
local SCALAR = { number = true, integer = true, string = true, boolean = true, ["nil"] = true,
  table = true, thread = true, userdata = true, error = true, type = true }

-- b's validators must all be on a too (a type with fewer constraints is not a subtype).
local function checks_within(da, db)
  local cb = db.cs
  if not cb then return true end
  local ca = da.cs or {}
  for i = 1, #cb do
    local found = false
    for j = 1, #ca do
      if ca[j].op == cb[i].op and ca[j].arg == cb[i].arg then found = true break end
    end
    if not found then return false end
  end
  return true
end

local function any_of(list, f)
  for i = 1, #list do if f(list[i]) then return true end end
  return false
end
local function all_of(list, f)
  for i = 1, #list do if not f(list[i]) then return false end end
  return true
end

local function literal_base(v)
  if math_type(v) == "integer" then return B.integer end
  return B[type(v)]
end

local function function_sub(da, db, seen)
  if not db.ps then return true end  -- any function
  if not da.ps then return false end
  for i = 1, #db.ps do
    local pa = da.ps[i] or da.va
    if pa and not subtype(db.ps[i], pa, seen) then return false end
  end
  for i = 1, #db.rs do
    local ra = da.rs[i]
    if not ra or not subtype(ra, db.rs[i], seen) then return false end
  end
  return true
end

local function record_sub(da, db, seen)
  local fa, fb = select(2, fields_of(da)), fields_of(db)
  if not fa or not fb then return false end
  for i = 1, #fb do
    local f = fb[i]
    local g = fa[f.name]
    if g then
      if (g.opt and not f.opt) or not subtype(g.type, f.type, seen) then return false end
    elseif not f.opt then
      return false
    end
  end
  return true
end

local function structural(a, da, b, db, seen)
  local ka, kb = da.k, db.k
  if ka == "optional" then return subtype(NIL, b, seen) and subtype(da.inner, b, seen) end
  if ka == "union" then return all_of(da.vs, function(x) return subtype(x, b, seen) end) end
  if kb == "optional" then return ka == "nil" or subtype(a, db.inner, seen) end
  if kb == "union" then return any_of(db.vs, function(x) return subtype(a, x, seen) end) end
  if kb == "intersection" then return all_of(db.vs, function(x) return subtype(a, x, seen) end) end
  if ka == "intersection" then
    if any_of(da.vs, function(x) return subtype(x, b, seen) end) then return true end
    if kb ~= "record" and kb ~= "interface" then return false end
    return record_sub(da, db, seen)
  end
  if ka == "literal" then
    if kb == "literal" then return da.lit == db.lit and type(da.lit) == type(db.lit) end
    return subtype(literal_base(da.lit), b, seen)
  end
  if not checks_within(da, db) then return false end
  if ka == kb and SCALAR[ka] then return true end
  if ka == "integer" and kb == "number" then return true end
  if kb == "table" then return TABLE_LIKE[ka] == true end
  if kb == "function" then return ka == "function" and function_sub(da, db, seen) end
  if ka == "array" and kb == "array" then return subtype(da.e, db.e, seen) end
  if ka == "map" and kb == "map" then
    return subtype(da.key, db.key, seen) and subtype(da.val, db.val, seen)
  end
  if (kb == "record" or kb == "interface") and (ka == "record" or ka == "interface") then
    return record_sub(da, db, seen)
  end
  return false
end

subtype = function(a, b, seen)
  if rawequal(a, b) then return true end
  local da, db = D[need(a)], D[need(b)]
  if (db.k == "any" or db.k == "unknown") and checks_within(da, db) then return true end
  if da.k == "never" then return true end
  seen = seen or {}
  local row = seen[a]
  if row and row[b] then return true end  -- a recursive type: assume, then verify the rest
  if not row then row = {}; seen[a] = row end
  row[b] = true
  return structural(a, da, b, db, seen)
end

---------------------------------------------------------------------------------------
-- Type values: methods and metamethods
---------------------------------------------------------------------------------------
local function data(t, what)
  local d = D[t]
  if d == nil then
    raise(INVALID, "types: " .. what .. " must be called on a type (use Type:" .. what .. "(...))")
  end
  return d
end

local function unsupported(t, what)
  raise(INVALID, string_format("%s() is not available on %s (a %s type)", what, render(t), D[t].k))
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    return list[i]
  end
end

function methods.is(t, v)
  data(t, "is")
  local m, p = check(t, v)
  if m == nil then return v, nil end
  return nil, new_error(INVALID, message(t, m, p), false)
end

function methods.kind(t) return data(t, "kind").k end
function methods.name(t) return data(t, "name").n end

function methods.fields(t)
  local d = data(t, "fields")
  local fs = fields_of(d)
  if not fs then unsupported(t, "fields") end
  local i = 0
  return function()
    i = i + 1
    local f = fs[i]
    if f then return f.name, f.type, f.opt or false end
  end
end

function methods.field(t, name)
  local _, fm = fields_of(data(t, "field"))
  local f = fm and fm[name]
  return f and f.type, f and (f.opt or false)
end

function methods.elem(t)
  local d = data(t, "elem")
  if d.k ~= "array" then unsupported(t, "elem") end
  return d.e
end

function methods.key(t)
  local d = data(t, "key")
  if not d.key then unsupported(t, "key") end
  return d.key
end

function methods.val(t)
  local d = data(t, "val")
  if not d.val then unsupported(t, "val") end
  return d.val
end

function methods.inner(t)
  local d = data(t, "inner")
  if d.k ~= "optional" then unsupported(t, "inner") end
  return d.inner
end

local function flatten(vs, out)
  for i = 1, #vs do
    local d = D[need(vs[i])]
    if d.k == "union" and not d.n then flatten(d.vs, out) else out[#out + 1] = vs[i] end
  end
  return out
end

function methods.variants(t)
  local d = data(t, "variants")
  if d.k ~= "union" then unsupported(t, "variants") end
  return iterate(flatten(d.vs, {}))
end

function methods.params(t)
  local d = data(t, "params")
  if not d.ps then unsupported(t, "params") end
  return iterate(d.ps)
end

function methods.returns(t)
  local d = data(t, "returns")
  if not d.ps then unsupported(t, "returns") end
  return iterate(d.rs)
end

function methods.ret(t)
  local d = data(t, "ret")
  if not d.ps then unsupported(t, "ret") end
  return d.rs[1] or NIL
end

function methods.value(t)
  local d = data(t, "value")
  if d.k ~= "literal" then unsupported(t, "value") end
  return d.lit
end

-- Record fields come first: `User.age` is the type of User's `age` field. A field whose
-- name is also a method (`name`, `kind`, `is`, ...) gives a copy of its type that, called
-- as a method of its record (`User:name()`), runs the method instead.
function Type.__index(t, k)
  local d = D[t]
  if d ~= nil then
    local _, fm = fields_of(d)
    local f = fm and fm[k]
    if f then
      if methods[k] == nil then return f.type end
      local view = f.view
      if view == nil then
        local c = copy(D[need(f.type)])
        c.method, c.method_field = k, f
        view = make(c)
        f.view = view
      end
      return view
    end
  end
  return methods[k]
end

function Type.__newindex()
  raise(INVALID, "type values are read-only")
end
rt.immutable(Type)  -- type values are shared by every instance: rawset refuses them too

local function cast(t, v, ...)
  local d = D[t]
  local field = d.method_field
  if field ~= nil and D[v] ~= nil then  -- `User:name()` where User has a `name` field
    local _, fm = fields_of(D[v])
    if fm and fm[d.method] == field then return methods[d.method](v, ...) end
  end
  local m, p = check(t, v)
  if m then raise(INVALID, message(t, m, p)) end
  if math_type(v) == "float" and d.k == "integer" then return tointeger(v) end
  return v
end
Type.__call = cast
Type.__tostring = function(t) return render(t) end
Type.__le = function(a, b) return D[a] ~= nil and D[b] ~= nil and subtype(a, b) end
Type.__lt = function(a, b)
  return D[a] ~= nil and D[b] ~= nil and subtype(a, b) and not subtype(b, a)
end
Type.__eq = function(a, b)
  return D[a] ~= nil and D[b] ~= nil and subtype(a, b) and subtype(b, a)
end

---------------------------------------------------------------------------------------
-- typeof(v): the dynamic type of a value
---------------------------------------------------------------------------------------
local dynamic = { number = B.number, string = B.string, boolean = B.boolean, ["nil"] = NIL,
  ["function"] = B["function"], thread = B.thread, userdata = B.userdata, table = B.table }

local function typeof(v)
  if D[v] ~= nil then return B.type end
  if is_error(v) then return B.error end
  return dynamic[type(v)]
end

---------------------------------------------------------------------------------------
-- Building type values from the front end's descriptions
---------------------------------------------------------------------------------------
-- ctx: S = the chunk's declared type values, X = run-time values (bind), P = type arguments.
local build
local builders = {}

local function build_list(list, ctx)
  local out = {}
  for i = 1, #list do out[i] = build(list[i], ctx) end
  return out
end

local function adopt(s, v, name)  -- give shell `s` the description of `v`, named `name`
  local d = derive(D[need(v)])
  d.n = name
  D[s] = d
end

local function instantiate(t, args)
  local gen = D[need(t)].gen
  if not gen then return t end
  local memo = gen.memo
  for i = 1, gen.np - 1 do
    local a = args[i] or ANY
    local nxt = memo[a]
    if not nxt then nxt = setmetatable({}, WEAK); memo[a] = nxt end
    memo = nxt
  end
  local last = args[gen.np] or ANY
  local s = memo[last]
  if s then return s end
  s = shell()
  memo[last] = s
  local P, names = {}, {}
  for i = 1, gen.np do
    P[i] = args[i] or ANY
    names[i] = render(P[i])
  end
  local v = build(gen.node, { S = gen.ctx.S, X = gen.ctx.X, P = P })
  adopt(s, v, gen.name .. "<" .. concat(names, ", ") .. ">")
  return s
end

local function field_list(list, ctx)
  local fs, fm = {}, {}
  for i = 1, #list do
    local spec = list[i]
    local f = { name = spec[1], type = build(spec[2], ctx), opt = spec[3] or nil }
    fs[i] = f
    fm[f.name] = f
  end
  return fs, fm
end

builders.b = function(n) return B[n[2]] end
builders.d = function(n, ctx) return ctx.S[n[2]] end
builders.p = function(n, ctx) return ctx.P and ctx.P[n[2]] or ANY end
builders.o = function(n) return opaque(n[2]) end
builders.x = function(n, ctx)
  local v = ctx.X[n[2]]
  if D[v] ~= nil then return v end
  return opaque(n[3])
end
builders.t = function(n, ctx) return typeof(ctx.X[n[2]]) end
builders.l = function(n) return make({ k = "literal", lit = n[2] }) end
builders["?"] = function(n, ctx) return make({ k = "optional", inner = build(n[2], ctx) }) end
builders["|"] = function(n, ctx)
  local vs = {}
  for i = 2, #n do vs[i - 1] = build(n[i], ctx) end
  return make({ k = "union", vs = vs })
end
builders["&"] = function(n, ctx)
  local vs = {}
  for i = 2, #n do vs[i - 1] = build(n[i], ctx) end
  return make({ k = "intersection", vs = vs })
end
builders["[]"] = function(n, ctx) return make({ k = "array", e = build(n[2], ctx) }) end
builders["{}"] = function(n, ctx)
  return make({ k = "map", key = build(n[2], ctx), val = build(n[3], ctx) })
end
builders.r = function(n, ctx)
  local fs, fm = field_list(n[2], ctx)
  local d = { k = "record", fs = fs, fm = fm }
  if n[3] then d.key, d.val = build(n[3], ctx), build(n[4], ctx) end
  return make(d)
end
builders.i = function(n, ctx)
  local fs, fm = {}, {}
  for _, base in ipairs(build_list(n[3], ctx)) do
    local bfs = fields_of(D[need(base)])
    for j = 1, bfs and #bfs or 0 do
      local f = bfs[j]
      if not fm[f.name] then fs[#fs + 1] = f end
      fm[f.name] = f
    end
  end
  local own = field_list(n[2], ctx)
  for i = 1, #own do
    local f = own[i]
    if fm[f.name] then
      for j = 1, #fs do if fs[j].name == f.name then fs[j] = f end end
    else
      fs[#fs + 1] = f
    end
    fm[f.name] = f
  end
  return make({ k = "interface", fs = fs, fm = fm })
end
builders.f = function(n, ctx)
  return make({ k = "function", ps = build_list(n[2], ctx), rs = build_list(n[3], ctx),
    va = n[4] and build(n[4], ctx) or nil })
end
builders.v = function(n, ctx)
  local base = build(n[2], ctx)
  local d = derive(D[need(base)])
  local cs = {}
  for i = 1, d.cs and #d.cs or 0 do cs[i] = d.cs[i] end
  for _, spec in ipairs(n[3]) do
    local op, arg = spec[1], spec[2] and build(spec[2], ctx, true)
    local fn = validators[op]
    if fn then  -- unknown validators are annotations for other tools
      if type(arg) ~= validator_arg[op] then
        raise(INVALID, string_format("@%s expects a %s argument, got %s", op, validator_arg[op], show(arg)))
      end
      if op == "pattern" then
        local bad = natives.pattern_error(arg)
        if bad then raise(INVALID, "@pattern " .. quote(arg) .. ": " .. bad) end
      end
      cs[#cs + 1] = { op = op, arg = arg, fn = fn }
    end
  end
  d.cs = cs[1] and cs or nil
  return make(d)
end
builders.g = function(n, ctx) return instantiate(build(n[2], ctx), build_list(n[3], ctx)) end
builders.k = function(n, ctx)
  local fs = fields_of(D[need(build(n[2], ctx))]) or {}
  local vs = {}
  for i = 1, #fs do vs[i] = make({ k = "literal", lit = fs[i].name }) end
  if #vs == 1 then return vs[1] end
  if #vs == 0 then return B.never end
  return make({ k = "union", vs = vs })
end
builders.ix = function(n, ctx)
  local _, fm = fields_of(D[need(build(n[2], ctx))])
  local key = n[3] and n[3][1] == "l" and n[3][2]
  local f = fm and key ~= nil and fm[key]
  return f and f.type or ANY
end
builders.c = function(n, ctx)
  if subtype(build(n[2], ctx), build(n[3], ctx)) then return build(n[4], ctx) end
  return build(n[5], ctx)
end
builders.ro = function(n, ctx)
  local d = derive(D[need(build(n[2], ctx))])
  d.ro = true
  return make(d)
end

-- `raw`: a validator argument, whose literal or run-time value is wanted, not a type.
build = function(n, ctx, raw)
  if raw then
    if n[1] == "l" then return n[2] end
    return ctx.X[n[2]]
  end
  return builders[n[1]](n, ctx)
end

-- Fill declared type `s` from its description.
local function fill(s, name, node, np, ctx)
  if np > 0 then  -- generic: the plain name means the body with `any` arguments
    local gen = { node = node, np = np, ctx = ctx, name = name, memo = setmetatable({}, WEAK) }
    D[s] = { k = "any", n = name, gen = gen }  -- seen by references from its own body
    local anys = {}
    for i = 1, np do anys[i] = ANY end
    adopt(s, build(node, { S = ctx.S, X = ctx.X, P = anys }), name)
    D[s].gen = gen
    return
  end
  local v = build(node, ctx)
  if rawequal(v, s) then D[s] = { k = "any", n = name } return end
  adopt(s, v, name)
end

-- Memo tables keyed by the run-time values a template was bound to.
local NIL_KEY = {}
local function memo_slot(memo, values, n)
  for i = 1, n - 1 do
    local v = values[i]
    if v == nil or v ~= v then v = NIL_KEY end
    local nxt = memo[v]
    if not nxt then nxt = setmetatable({}, WEAK); memo[v] = nxt end
    memo = nxt
  end
  local last = values[n]
  if last == nil or last ~= last then last = NIL_KEY end
  return memo, last
end

local function index(t, k) return t[k] end

-- The value at `path` (a list of field names) under `v`, or nil where a step is not a
-- table or fails.
local function resolve(v, path)
  for i = 1, #path do
    if type(v) ~= "table" then return nil end
    local seg = path[i]
    local mt = getmetatable_raw(v)
    if mt == nil or (type(mt.__index) == "table" and getmetatable_raw(mt.__index) == nil) then
      v = v[seg]  -- cannot run user code, so cannot fail
    else
      local ok, x = pcall(index, v, seg)
      if not ok then return nil end
      v = x
    end
  end
  return v
end

local function split(path)
  local segs = {}
  for seg in path:gmatch("[^.]+") do segs[#segs + 1] = seg end
  return segs
end

-- key -> the type values of one chunk; `chunk` itself is found here too (keys of chunks
-- start with "t" and are 25 characters long).
local chunks = {}

local function deny()
  raise(INVALID, "the type values of a chunk are read-only")
end

-- The value of entry `e` ({name, node, nparams[, paths]}): a declared type gets its own
-- named type value; an anonymous one (a local's declared type) may be a shared one.
local function instance(e, ctx)
  if e[1] == nil then return need(build(e[2], ctx)) end
  local t = shell()
  fill(t, e[1], e[2], e[3] or 0, ctx)
  return t
end

-- Build the type values of one chunk. Entries with paths depend on run-time values and
-- are built by bind(i, ...) instead, once per distinct set of values.
function chunks.chunk(key, entries)
  local hit = chunks[key]
  if hit then return hit end
  local S, templates, obj = {}, {}, {}
  local ctx = { S = S }
  for i = 1, #entries do
    local e = entries[i]
    if e[4] then
      local paths = {}
      for j = 1, #e[4] do paths[j] = split(e[4][j]) end
      templates[i] = { e[1], e[2], e[3], paths }
    elseif e[1] ~= nil then
      S[i] = shell()
    end
  end
  for i, s in next, S do
    local e = entries[i]
    pending[s] = function() fill(s, e[1], e[2], e[3] or 0, ctx) end
  end
  for i, s in next, S do obj[i] = need(s) end
  for _, s in next, S do pending[s] = nil end
  for i = 1, #entries do
    local e = entries[i]
    if e[1] == nil and not e[4] then obj[i] = instance(e, ctx) end
  end
  local memos, scratch = {}, {}
  function obj.bind(i, ...)
    local e = templates[i]
    local paths = e[4]
    local n = #paths
    for j = 1, n do scratch[j] = resolve((select(j, ...)), paths[j]) end
    local memo = memos[i]
    if not memo then memo = setmetatable({}, WEAK); memos[i] = memo end
    local slot, last = memo_slot(memo, scratch, n)
    local t = slot[last]
    if t == nil then
      local X = {}
      for j = 1, n do X[j] = scratch[j] end
      t = instance(e, { S = S, X = X })
      slot[last] = t
    end
    for j = 1, n do scratch[j] = nil end
    return t
  end
  local view = rt.share(setmetatable({}, { __index = obj, __newindex = deny, __metatable = false }))
  chunks[key] = view
  return view
end

local registry = rt.share(setmetatable({}, { __index = chunks, __newindex = deny, __metatable = false }))

---------------------------------------------------------------------------------------
-- Globals
---------------------------------------------------------------------------------------
rt.cast_string = function(v) return cast(B.string, v) end  -- `string(x)`, see prelude.lua

local M = {
  typeof = typeof,
  is_type = function(v) return D[v] ~= nil end,
  Number = B.number, Integer = B.integer, String = B.string, Boolean = B.boolean,
  Nil = NIL, Any = ANY, Unknown = B.unknown, Never = B.never, Table = B.table,
  Function = B["function"], Thread = B.thread, Userdata = B.userdata, Error = B.error,
}
for name, value in next, M do
  if name ~= "is_type" and name ~= "Thread" and name ~= "Userdata" and name ~= "Error" then
    rt.add_global(name, value)
  end
end
-- Casts written like the primitive type names: integer(x), number(x), boolean(x).
rt.add_global("integer", B.integer)
rt.add_global("number", B.number)
rt.add_global("boolean", B.boolean)
rt.add_global("__wippy_types", registry)

return M
