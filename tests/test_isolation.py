"""Isolation and resource guards (issue 9): no instance can change what another sees, and
no instance can freeze, starve or take down the others.

Every attack runs across two instances. An *attacker* (a process, a function or a durable
workflow) runs a snippet and stays alive; a *victim* of another kind takes a fingerprint of
everything it can reach before and after the attack: the identity of every shared function,
the keys and metatables of every reachable table, and the results of ordinary calls
(``funcs.call``, messages, channels, ``string.format``...). The two fingerprints must be
equal. No test may make Python print a traceback or log an error.

The resource guards are tested the same way: a runaway loop, a memory hog and an inbox flood
each end their own actor (or the sender's attempt) with LimitExceeded while a ticking process
and a timer keep running.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from wippy import Runtime, WippyError, load_project
from wippy.providers.workflow.execution import MAX_RECORD_BYTES
from wippy.providers.workflow.journal import JournalReader

TIMEOUT = 5.0  # seconds for one scenario; every scenario is far quicker
STEP_TIME = 0.2  # the CPU budget per step of the test hosts (limits.step_time)
INBOX = 50  # the inbox bound of the test process host (limits.inbox)
MODULES = ["funcs", "time", "logger", "json", "base64", "crypto", "uuid", "ctx", "types"]
KINDS = ("process", "function", "workflow")

INDEX = f"""\
namespace: app
entries:
  - name: procs
    kind: process.host
    limits: {{step_time: {int(STEP_TIME * 1000)}ms, inbox: {INBOX}}}
    lifecycle: {{auto_start: true, stop_timeout: 1s}}
  - name: wfs
    kind: workflow.host
    store: data/wf.db
    limits: {{step_time: {int(STEP_TIME * 1000)}ms}}
    lifecycle: {{auto_start: true}}
  - {{name: driver, kind: process.lua, source: file://driver.lua, method: main, modules: [funcs, time]}}
  - {{name: echo, kind: function.lua, source: file://echo.lua, method: echo}}
"""

ECHO = "return { echo = function(...) return ... end }\n"

# Locals every attacker and victim file starts with.
HEADER = "\n".join(f'local {m} = require("{m}")' for m in MODULES) + "\n"

# ---------------------------------------------------------------------------------------------
# The victim: a fingerprint of everything an instance can reach
# ---------------------------------------------------------------------------------------------
PROBE = HEADER + r"""
local fp, seen = {}, {}
local function sorted_keys(t)
  local keys = {}
  for k in next, t do
    if type(k) == "string" or math.type(k) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) == "number" end
    return a < b
  end)
  return keys
end
-- `volatile`: a fresh object's data (clock readings, handles) differs from run to run.
local function walk(v, path, depth, volatile)
  local tv = type(v)
  if tv == "function" then fp[path] = tostring(v) return end
  if tv == "nil" or tv == "boolean" or tv == "number" or tv == "string" then
    fp[path] = (volatile and tv ~= "boolean") and tv or (tv .. ":" .. tostring(v))
    return
  end
  if not pcall(next, v) then fp[path] = tv return end  -- a real userdata (a host handle)
  if seen[v] then fp[path] = "seen " .. seen[v] return end
  seen[v] = path
  local mt = getmetatable(v)
  fp[path .. "<mt>"] = type(mt) == "table" and "table" or tostring(mt)
  if depth > 6 then return end
  if type(mt) == "table" then walk(mt, path .. "<mt>", depth + 1, volatile) end
  local keys = sorted_keys(v)
  fp[path .. "<keys>"] = table.concat(keys, ",", 1, math.min(#keys, 200))
  for _, k in ipairs(keys) do walk(rawget(v, k), path .. "." .. tostring(k), depth + 1, volatile) end
  local ok, idx = pcall(function() return v.__index end)
  if ok and idx ~= nil then walk(idx, path .. ".__index", depth + 1, volatile) end
  local ok2, _, state = pcall(pairs, v)
  if ok2 and type(state) == "table" and not rawequal(state, v) then walk(state, path .. "<pairs>", depth + 1, volatile) end
end

local GLOBALS = {"string", "table", "math", "utf8", "os", "coroutine", "errors", "channel", "process",
  "typeof", "Number", "Integer", "String", "Boolean", "Nil", "Any", "Unknown", "Never", "Table",
  "Function", "integer", "number", "boolean", "__wippy_types", "print", "pcall", "xpcall", "error",
  "setmetatable", "getmetatable", "rawset", "rawget", "type", "next", "pairs", "ipairs", "tostring",
  "tonumber", "select", "unpack", "assert", "rawequal", "rawlen", "load", "require", "dofile"}
local MODULES = {MODULE_NAMES}

local function probe(kind)
  for _, name in ipairs(GLOBALS) do
    if name ~= "load" and name ~= "require" then walk(_G[name], "G." .. name, 0, false) end
  end
  for _, name in ipairs(MODULES) do walk(require(name), "M." .. name, 0, false) end
  local objects = {
    err = function() return errors.new({message = "m", kind = errors.INVALID}) end,
    chan = function() return channel.new(1) end,
    now = function() return time.now() end,
    dur = function() return time.parse_duration("1s") end,
    log = function() return logger:named("probe") end,
    fn = function() return funcs.new() end,
    inbox = function() return process.inbox() end,
    events = function() return process.events() end,
    loc = function() return time.now():location() end,
  }
  for _, name in ipairs(sorted_keys(objects)) do
    local ok, o = pcall(objects[name])
    if ok then walk(o, "O." .. name, 0, true) else fp["O." .. name] = "error" end
  end
  -- _G's own keys: they must be the instance's, never an attacker's
  fp["G<own>"] = table.concat(sorted_keys(_G), ",")
  fp["G<mt>"] = tostring(getmetatable(_G))
  fp['""<mt>'] = tostring(getmetatable(""))
  for _, name in ipairs({"leaked", "leaked2", "evil", "x", "hijack"}) do fp["G?" .. name] = type(_G[name]) end
  -- ordinary calls
  local function try(name, f, ...)
    local ok, a, b = pcall(f, ...)
    fp["call." .. name] = tostring(ok) .. " " .. tostring(a) .. " " .. tostring(b)
  end
  try("funcs.call", funcs.call, "app:echo", "ping")
  try("funcs.new", function() return funcs.new():call("app:echo", "pong") end)
  try("channel", function() local ch = channel.new(1); ch:send("c"); return ch:receive() end)
  if kind ~= "function" then
    try("send", function()
      assert(process.send(process.pid(), "t", "to myself"))
      local msg = process.inbox():receive()
      return msg:topic() .. "=" .. tostring(msg:payload():data())
    end)
  end
  try("errors", function() local e = errors.new({message = "m", kind = errors.INVALID}); return e:kind() .. tostring(e) end)
  try("string.format", string.format, "%s=%d", "a", 1)
  try("string.method", function() return ("abc"):upper() .. ("x"):rep(3) .. #("abc") end)
  try("table.concat", table.concat, {"a", "b"}, "-")
  try("coroutine.wrap", function() return coroutine.wrap(function() coroutine.yield(7) end)() end)
  try("math", function() return math.floor(3.7) + math.max(1, 2) end)
  try("utf8", utf8.char, 72, 105)
  try("os.time", function() return os.time() > 1e9 end)
  try("json", json.encode, {a = 1})
  try("base64", base64.encode, "hi")
  try("time", function() return time.parse_duration("1500ms"):seconds() end)
  try("type", function() return type(errors.new("x")) .. type(channel.new()) .. type({}) end)
  try("typeof", typeof, 1)
  try("string.nosuch", function() return string.nosuch, math.nosuch end)
  return fp
end
"""

VICTIM = PROBE + """
local function main(kind) return probe(kind) end
return { main = main }
"""

# The attacker runs ATTACK (a function body; `me` is its kind, `driver` the driver's PID),
# reports what happened to the driver and, as a process or workflow, stays alive until told.
ATTACKER = HEADER + """
local function attack(me, driver)
ATTACK
end

local function describe(ok, ...)
  local parts = {ok and "ok" or "raised"}
  for i = 1, math.min(select("#", ...), 4) do
    local v = select(i, ...)
    local is_error = type(v) == "userdata" and type(v.kind) == "function"
    parts[#parts + 1] = is_error and (v:kind() .. ": " .. tostring(v)) or tostring(v)
  end
  return table.concat(parts, " | ")
end

local function main(me, driver)
  local report = describe(pcall(attack, me, driver))
  if me == "function" then return report end
  process.send(driver, "ready", report)
  local inbox = process.inbox()
  while true do
    local msg = inbox:receive()
    if msg:topic() == "stop" then return report end
  end
end
return { main = main }
"""

DRIVER = """
local funcs = require("funcs")
local time = require("time")

local function describe_error(e)
  if e == nil then return nil end
  if type(e) == "userdata" and e.kind then return e:kind() .. ": " .. tostring(e) end
  return tostring(e)
end

local function wait_exit(events, pid)
  while true do
    local ev = events:receive()
    if ev.kind == process.event.EXIT and ev.from == pid then
      return {value = ev.result.value, error = describe_error(ev.result.error)}
    end
  end
end

local n = 0
local function start(kind, entry, ...)
  n = n + 1
  if kind == "process" then return process.spawn_monitored(entry, "app:procs", ...) end
  local options = {["temporal.workflow.id"] = entry:gsub("app:", "") .. "-" .. n}
  return process.with_options(options):spawn_monitored(entry, "app:wfs", ...)
end

local function run(kind, entry, ...)
  if kind == "function" then
    local ok, value, err = pcall(funcs.call, entry, ...)  -- funcs.call returns nil, err
    if not ok then return {error = describe_error(value)} end
    return {value = value, error = describe_error(err)}
  end
  local pid, err = start(kind, entry, ...)
  if not pid then return {error = describe_error(err)} end
  return wait_exit(process.events(), pid)
end

-- The attack scenario: probe the victim, run the attack, probe the victim again.
local function attack(attacker, victim)
  local pre = run(victim, "app:victim_" .. victim, victim)
  local report, pid
  if attacker == "function" then
    report = run("function", "app:attacker_function", "function", process.pid())
  else
    local ready, events = process.listen("ready"), process.events()
    pid = start(attacker, "app:attacker_" .. attacker, attacker, process.pid())
    while report == nil do
      local r = channel.select({ready:case_receive(), events:case_receive()})
      if r.channel == ready then report = {value = r.value}
      elseif r.value.kind == process.event.EXIT and r.value.from == pid then
        report = {value = r.value.result.value, error = describe_error(r.value.result.error)}
        pid = nil
      end
    end
  end
  local post = run(victim, "app:victim_" .. victim, victim)
  if pid then
    process.send(pid, "stop")
    wait_exit(process.events(), pid)
  end
  return {pre = pre, post = post, attack = report}
end

local scenarios = {attack = attack, run = run, start = start, wait_exit = wait_exit}
EXTRA

local function main(name, ...) return scenarios[name](...) end
return { main = main }
"""


class Arena:
    """A project with a process host, a workflow host on a SQLite store, and entries."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[str] = []
        self.files: dict[str, str] = {"echo.lua": ECHO}
        self.driver_extra = ""

    def entry(self, name: str, kind: str, source: str, *, modules: list[str] | None = None) -> None:
        self.files[f"{name}.lua"] = source
        mods = f", modules: [{', '.join(modules)}]" if modules else ""
        self.entries.append(f"  - {{name: {name}, kind: {kind}.lua, source: file://{name}.lua, method: main{mods}}}")

    def each_kind(self, prefix: str, source: str) -> None:
        for kind in KINDS:
            self.entry(f"{prefix}_{kind}", kind, source, modules=MODULES)

    def write(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.root / name).write_text(text)
        (self.root / "driver.lua").write_text(DRIVER.replace("EXTRA", textwrap.dedent(self.driver_extra)))
        (self.root / "_index.yaml").write_text(INDEX + "\n".join(self.entries) + "\n")

    def runtime(self, max_memory: int | None = None) -> Runtime:
        self.write()
        rt = Runtime(load_project(self.root))
        if max_memory is not None:
            rt.vm.lua.set_max_memory(max_memory, total=True)
        return rt

    def drive(self, *args: Any, max_memory: int | None = None,
              then: Callable[[Runtime], Awaitable[Any]] | None = None) -> Any:
        """Run the driver's scenario ``args[0]`` with the rest as arguments."""

        async def go() -> Any:
            async with self.runtime(max_memory) as rt:
                result = await asyncio.wait_for(rt.run("app:driver", *args), TIMEOUT)
                if then is not None:
                    await asyncio.wait_for(then(rt), TIMEOUT)
                return result

        return asyncio.run(go())

    @property
    def store(self) -> Path:
        return self.root / "data" / "wf.db"


@pytest.fixture
def arena(tmp_path: Path) -> Arena:
    return Arena(tmp_path / "p")


@pytest.fixture(autouse=True)
def no_python_tracebacks(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Any:
    """Nothing an attacker does may make Python print a traceback or log an error."""
    caplog.set_level(logging.WARNING)
    yield
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, out + err
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "\n".join(f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in bad)


def fingerprint_diff(pre: dict[str, Any], post: dict[str, Any]) -> list[str]:
    keys = sorted(set(pre) | set(post))
    return [f"{k}: {pre.get(k)!r} -> {post.get(k)!r}" for k in keys if pre.get(k) != post.get(k)]


# ---------------------------------------------------------------------------------------------
# Attacks on shared state
# ---------------------------------------------------------------------------------------------
HIJACK = 'local function evil() return "HIJACKED" end\n'

ATTACKS: dict[str, str] = {
    # nothing: the fingerprint of a victim is stable when nobody attacks
    "control": 'return "nothing"',
    # issue 9 #1: rawset on the module tables, to hijack funcs.call or process.send
    "rawset_modules": HIJACK + """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, channel = channel, errors = errors,
                              registry = process.registry, event = process.event, time = time, json = json}) do
          for _, field in ipairs({"call", "send", "new", "lookup", "EXIT", "now", "encode", "x"}) do
            out[#out + 1] = name .. "." .. field .. ":" .. tostring(pcall(rawset, t, field, evil))
          end
        end
        return table.concat(out, " ")""",
    "assign_modules": HIJACK + """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, channel = channel, errors = errors,
                              registry = process.registry, event = process.event, time = time, uuid = uuid,
                              base64 = base64, crypto = crypto, ctx = ctx, types = types}) do
          for _, field in ipairs({"call", "send", "new", "lookup", "EXIT", "now", "v4", "encode", "get", "x"}) do
            out[#out + 1] = name .. "." .. field .. ":" .. tostring(pcall(function() t[field] = evil end))
          end
        end
        out[#out + 1] = "errors.INVALID:" .. tostring(pcall(function() errors.INVALID = "Hijacked" end))
        return table.concat(out, " ")""",
    # the state pairs() hands out: it must not be the shared table behind a view
    "pairs_state_of_views": HIJACK + """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, channel = channel, errors = errors,
                              registry = process.registry, string = string, table = table, math = math,
                              os = os, coroutine = coroutine, utf8 = utf8, time = time, json = json}) do
          local _, state = pairs(t)
          if type(state) == "table" and not rawequal(state, t) then
            out[#out + 1] = name
            for _, field in ipairs({"call", "send", "new", "lookup", "format", "concat", "floor", "time",
                                    "wrap", "char", "now", "encode"}) do
              pcall(rawset, state, field, evil)
            end
            pcall(rawset, state, "smuggled", channel.new(1))
          end
        end
        return "raw tables reached: " .. table.concat(out, ",")""",
    "next_and_rawget_on_views": HIJACK + """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, string = string, table = table}) do
          local k, v = next(t)
          out[#out + 1] = name .. ":" .. tostring(k) .. "/" .. tostring(rawget(t, "call")) .. "/" .. rawlen(t)
          if type(v) == "table" then pcall(rawset, v, "call", evil) end
        end
        return table.concat(out, " ")""",
    "setmetatable_on_views": """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, string = string, table = table, math = math,
                              os = os, coroutine = coroutine, utf8 = utf8, registry = process.registry}) do
          out[#out + 1] = name .. ":" .. tostring(pcall(setmetatable, t, {__index = function() return "EVIL" end}))
          out[#out + 1] = tostring(pcall(setmetatable, t, nil))
        end
        return table.concat(out, " ")""",
    "getmetatable_on_views": HIJACK + """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, string = string, registry = process.registry}) do
          local mt = getmetatable(t)
          out[#out + 1] = name .. ":" .. type(mt) .. ":" .. tostring(mt)
          if type(mt) == "table" then mt.__index = {call = evil, send = evil, format = evil}; mt.__newindex = nil end
          pcall(function() getmetatable(t).__index.call = evil end)
        end
        return table.concat(out, " ")""",
    "load_with_view_as_env": """
        local out = {}
        for name, t in pairs({funcs = funcs, process = process, string = string, math = math}) do
          local f = load("call = nil; send = nil; format = nil; floor = nil; x = 1", "=attack", "t", t)
          out[#out + 1] = name .. ":" .. tostring(pcall(f))
        end
        return table.concat(out, " ")""",
    # issue 9 #2: the standard tables
    "assign_std_tables": HIJACK + """
        local out = {}
        for name, t in pairs({string = string, table = table, math = math, utf8 = utf8, os = os,
                              coroutine = coroutine}) do
          for _, field in ipairs({"format", "concat", "floor", "char", "time", "wrap", "x"}) do
            out[#out + 1] = name .. "." .. field .. ":" .. tostring(pcall(function() t[field] = evil end))
          end
        end
        return table.concat(out, " ")""",
    "rawset_std_tables": HIJACK + """
        local out = {}
        for name, t in pairs({string = string, table = table, math = math, utf8 = utf8, os = os,
                              coroutine = coroutine}) do
          for _, field in ipairs({"format", "concat", "floor", "char", "time", "wrap", "x", 1}) do
            out[#out + 1] = name .. "." .. field .. ":" .. tostring(pcall(rawset, t, field, evil))
          end
        end
        return table.concat(out, " ")""",
    "table_functions_on_std_tables": HIJACK + """
        local out = {}
        for name, t in pairs({string = string, table = table, math = math, utf8 = utf8, os = os,
                              coroutine = coroutine}) do
          out[#out + 1] = name .. ":" .. tostring(pcall(table.insert, t, evil))
            .. tostring(pcall(table.insert, t, 1, evil))
            .. tostring(pcall(table.remove, t))
            .. tostring(pcall(table.move, {evil, evil}, 1, 2, 1, t))
            .. tostring(pcall(table.sort, t))
        end
        return table.concat(out, " ")""",
    "setmetatable_on_std_tables": """
        local out = {}
        for name, t in pairs({string = string, table = table, math = math, utf8 = utf8, os = os,
                              coroutine = coroutine}) do
          out[#out + 1] = name .. ":" .. tostring(pcall(setmetatable, t, {__index = {x = "EVIL"}}))
        end
        return table.concat(out, " ")""",
    "smuggle_a_channel_in_string": """
        local ch = (process.inbox and me ~= "function") and process.inbox() or channel.new(1)
        return tostring(pcall(function() string.x = ch end)) .. tostring(pcall(rawset, string, "x", ch))
          .. tostring(pcall(table.insert, string, ch)) .. tostring(pcall(rawset, table, "x", ch))""",
    "override_std_functions": """
        local out = {}
        out[1] = tostring(pcall(function() string.format = function() return "EVIL" end end))
        out[2] = tostring(pcall(function() table.concat = function() return "EVIL" end end))
        out[3] = tostring(pcall(function() os.time = function() return 0 end end))
        out[4] = tostring(pcall(function() coroutine.wrap = function() return function() return "EVIL" end end end))
        out[5] = tostring(pcall(function() math.floor = function() return 0 end end))
        return table.concat(out, " ")""",
    # the string metatable
    "string_metatable": """
        local out = {}
        local mt = getmetatable("")
        out[1] = tostring(mt)
        out[2] = tostring(pcall(function() getmetatable("").__index.format = nil end))
        out[3] = tostring(pcall(setmetatable, "", {}))
        out[4] = tostring(pcall(function() local s = "x"; s.format = nil end))
        out[5] = tostring(pcall(function() ("").upper = nil end))
        out[6] = tostring(pcall(rawset, string, "upper", function() return "EVIL" end))
        return table.concat(out, " ")""",
    # runtime objects: their metatables and method tables are shared by every actor
    "runtime_object_metatables": HIJACK + """
        local out = {}
        local objects = {err = errors.new("x"), chan = channel.new(), now = time.now(),
          dur = time.parse_duration("1s"), log = logger, child = logger:named("a"), fn = funcs.new(),
          loc = time.now():location()}
        if me ~= "function" then objects.inbox = process.inbox() end
        for name, o in pairs(objects) do
          out[#out + 1] = name .. ":" .. tostring(getmetatable(o))
          pcall(setmetatable, o, {__index = function() return evil end})
          local idx = o.__index
          if type(idx) == "table" then
            out[#out + 1] = name .. ".__index is a " .. type(idx)
            for k in pairs(idx) do pcall(rawset, idx, k, evil) end
          end
        end
        return table.concat(out, " ")""",
    "logger_object": HIJACK + """
        local out = {}
        for _, field in ipairs({"info", "warn", "error", "debug", "with", "named", "_name", "_fields"}) do
          out[#out + 1] = field .. ":" .. tostring(pcall(function() logger[field] = evil end))
        end
        return table.concat(out, " ")""",
    "time_locations": """
        local out = {}
        for _, name in ipairs({"utc", "localtz", "UTC", "Local"}) do
          local loc = time[name]
          if type(loc) == "userdata" or type(loc) == "table" then
            out[#out + 1] = name .. ":" .. tostring(pcall(function() loc.name = "Mars"; loc.offset = 3600 end))
          end
        end
        return table.concat(out, " ")""",
    "type_objects": """
        local out = {}
        for name, t in pairs({integer = integer, number = number, boolean = boolean, Any = Any, Table = Table,
                              types = __wippy_types, String = types.String, Nil = types.Nil}) do
          out[#out + 1] = name .. ":" .. tostring(pcall(rawset, t, "x", "EVIL"))
            .. tostring(pcall(function() t.y = "EVIL" end))
        end
        return table.concat(out, " ")""",
    # globals: everything an instance does to its _G stays its own
    "globals_and_G": """
        leaked = "from the attacker"
        rawset(_G, "leaked2", "raw")
        _G.string = {format = function() return "EVIL" end}
        rawset(_G, "print", nil)
        _G._G = nil
        local out = {tostring(pcall(setmetatable, _G, {__index = function() return "EVIL" end}))}
        out[2] = tostring(getmetatable(_G))
        return table.concat(out, " ")""",
    "load_chunks_set_globals": """
        load("leaked = 1")()
        load("leaked2 = 2; evil = function() end", "=c", "t")()
        load("_ENV.x = 3", "=c", "t", _G)()
        local env = {}
        load("hijack = 4", "=c", "t", env)()
        local parts = {"ev", "il = 5"}
        local i = 0
        load(function() i = i + 1; return parts[i] end)()
        return tostring(leaked) .. tostring(x)""",
    "load_reaches_the_profile": """
        local f = load("return _ENV, ...", "=c")
        local env = f()
        local out = {tostring(rawequal(env, _G)), tostring(getmetatable(env))}
        local g = load("return getmetatable(_G)")()
        out[3] = tostring(g)
        return table.concat(out, " ")""",
    # coroutines
    "coroutine_tricks": """
        local out = {}
        local main = coroutine.running()
        out[1] = tostring(coroutine.resume(main))
        out[2] = tostring(pcall(coroutine.close, main))
        out[3] = tostring(pcall(coroutine.yield, "x"))
        local co = coroutine.create(function() coroutine.yield(1) end)
        out[4] = tostring(coroutine.resume(co))
        local _, sent, err = pcall(process.send, driver, "co", co)
        out[5] = tostring(sent) .. ":" .. tostring(err)
        _, sent, err = pcall(process.send, driver, "fn", print)
        out[6] = tostring(sent) .. ":" .. tostring(err)
        out[7] = tostring(pcall(coroutine.wrap(function() return coroutine.close(main) end)))
        out[8] = tostring(pcall(coroutine.status, main))
        return table.concat(out, " ")""",
    # faked handles: a channel whose handle is not one
    "fake_channel_handles": """
        local out = {}
        for _, fake in ipairs({"x", 42, {}, print, true, coroutine.create(print), channel.new()}) do
          local ch = channel.new(1)
          ch._h = fake
          local function show(...)
            local parts = {}
            for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
            return table.concat(parts, ",")
          end
          out[#out + 1] = show(pcall(ch.send, ch, 1)) .. "/" .. show(pcall(ch.receive, ch)) .. "/"
            .. show(pcall(ch.close, ch)) .. "/" .. show(pcall(channel.select, {ch:case_receive(), default = true}))
            .. "/" .. show(pcall(process.unlisten, ch))
        end
        local real = channel.new()
        local h = real._h
        out[#out + 1] = tostring(pcall(function() return h.capacity end))
        out[#out + 1] = tostring(pcall(function() return h[1] end))
        out[#out + 1] = tostring(pcall(function() return h() end))
        out[#out + 1] = tostring(pcall(function() return #h end))
        out[#out + 1] = tostring(pcall(pairs, h))
        return table.concat(out, " ")""",
    "forged_values": """
        local out = {}
        local fake_err = setmetatable({_kind = "Forged", _message = "forged"}, {__name = "wippy.error"})
        local fake_time = setmetatable({sec = 1, nsec = 0}, {__name = "wippy.time", __metatable = "wippy.time"})
        out[1] = type(fake_err) .. type(fake_time)
        out[2] = tostring(errors.is(fake_err, "Forged"))
        out[3] = tostring(pcall(funcs.call, "app:echo", fake_err, fake_time))
        out[4] = tostring(pcall(process.send, driver, "forged", fake_err))
        local ok, echoed = pcall(funcs.call, "app:echo", fake_err)
        out[5] = ok and type(echoed) or tostring(echoed)
        return table.concat(out, " ")""",
    # finalizers and to-be-closed variables run attacker code: they must not leak anything either
    "gc_and_close_metamethods": HIJACK + """
        local keep = {}
        for i = 1, 20 do
          keep[i] = setmetatable({}, {__gc = function()
            pcall(rawset, string, "format", evil)
            pcall(function() funcs.call = evil end)
            leaked = "from a finalizer"
          end})
        end
        keep = nil
        do
          local c <close> = setmetatable({}, {__close = function() pcall(rawset, process, "send", evil) end})
        end
        local junk = {}
        for i = 1, 20000 do junk[i % 64] = {i} end
        return "planted"
    """,
    # the crawl: write a marker into every table reachable from the attacker
    "mark_everything_writable": r"""
        local seen, n = {}, 0
        local function mark(v, depth)
          if depth > 8 or (type(v) ~= "table" and type(v) ~= "userdata") or seen[v] then return end
          seen[v] = true
          if not pcall(next, v) then return end
          if pcall(rawset, v, "__iso_mark", "MARKED") then n = n + 1 end
          pcall(function() v.__iso_mark2 = "MARKED" end)
          for _, x in next, v do mark(x, depth + 1) end
          local ok, idx = pcall(function() return v.__index end)
          if ok then mark(idx, depth + 1) end
          local ok2, _, state = pcall(pairs, v)
          if ok2 then mark(state, depth + 1) end
          local mt = getmetatable(v)
          if type(mt) == "table" then mark(mt, depth + 1) end
        end
        for _, name in ipairs({"string", "table", "math", "utf8", "os", "coroutine", "errors", "channel",
                               "process", "integer", "number", "boolean", "__wippy_types", "Any", "Table",
                               "Function", "Never", "Unknown", "Number", "String", "Nil"}) do
          mark(_G[name], 0)
        end
        for _, m in ipairs({funcs, time, logger, json, base64, crypto, uuid, ctx, types}) do mark(m, 0) end
        for _, o in ipairs({errors.new("x"), channel.new(), time.now(), time.parse_duration("1s"),
                            logger:named("x"), funcs.new(), time.now():location()}) do
          mark(o, 0)
        end
        return "tables written: " .. n""",
}

# Which instance attacks which: two processes, a process and a function, a function and a
# durable workflow, a workflow and a process.
PAIRS = [("process", "process"), ("process", "function"), ("function", "workflow")]
WORKFLOW_ATTACKS = {"control", "rawset_modules", "pairs_state_of_views", "override_std_functions",
                    "runtime_object_metatables", "mark_everything_writable", "gc_and_close_metamethods"}
ATTACK_CASES = [(name, a, v) for name in ATTACKS for a, v in PAIRS] + [
    (name, "workflow", "process") for name in ATTACKS if name in WORKFLOW_ATTACKS]


def attack_arena(arena: Arena, body: str) -> None:
    source = ATTACKER.replace("ATTACK", textwrap.indent(textwrap.dedent(body).strip(), "  "))
    arena.each_kind("attacker", source)
    arena.each_kind("victim", VICTIM.replace("MODULE_NAMES", ", ".join(f'"{m}"' for m in MODULES)))


@pytest.mark.parametrize(("name", "attacker", "victim"), ATTACK_CASES,
                         ids=[f"{n}-{a}-vs-{v}" for n, a, v in ATTACK_CASES])
def test_attack_leaves_the_victim_unchanged(arena: Arena, name: str, attacker: str, victim: str) -> None:
    attack_arena(arena, ATTACKS[name])
    out = arena.drive("attack", attacker, victim)
    pre, post, report = out["pre"], out["post"], out["attack"]
    assert pre.get("error") is None and post.get("error") is None, (pre.get("error"), post.get("error"))
    diff = fingerprint_diff(pre["value"], post["value"])
    assert not diff, f"attack {name!r} ({report}) changed what the victim sees:\n" + "\n".join(diff[:40])


# ---------------------------------------------------------------------------------------------
# Error objects and values crossing actors
# ---------------------------------------------------------------------------------------------
# Changes an attacker makes to its own error object before it crosses to another actor.
BAD_ERRORS = {
    "frames_not_a_table": 'e._frames = "abc"',
    "frame_fields_wrong": 'e._frames = {{source = {}, line = "x", name = print}}',
    "message_a_table": "e._message = {}",
    "message_nil": "e._message = nil",
    "kind_a_number": "e._kind = 42",
    "context_a_table": "e._context = {1}",
    "details_a_function": "e._details = {f = print}",
    "details_a_channel": "e._details = {ch = channel.new()}",
    "details_not_a_table": "e._details = 5",
    "cause_itself": "e._cause = e",
    "cause_a_channel": "e._cause = channel.new()",
    "retryable_a_string": 'e._retryable = "yes"',
}
ROUTES = ("raise", "return", "exit", "message", "workflow", "host")

BAD_ERROR = HEADER + """
local function make(case)
  local e = errors.new({message = "bad", kind = errors.INVALID, details = {n = 1}})
  CASES
  return e
end

local function main(case, route, driver)
  local e = make(case)
  if route == "return" then return nil, e end
  if route == "message" then
    local ok, err = process.send(driver, "bad", e)
    return {sent = ok or false, err = err and err:kind()}
  end
  error(e)
end
return { main = main }
"""

BAD_ERROR_DRIVER = """
function scenarios.bad_error(case, route)
  if route == "raise" or route == "return" then return run("function", "app:bad_error_function", case, route) end
  if route == "exit" then return run("process", "app:bad_error_process", case, route) end
  if route == "workflow" then return run("workflow", "app:bad_error_workflow", case, route) end
  local replies = process.listen("bad", {message = true})
  local sent = run("process", "app:bad_error_process", case, route, process.pid())
  if not (sent.value and sent.value.sent) then return sent end  -- refused where it was made, or at send
  local msg = replies:receive()
  local data = msg:payload():data()
  local ok, text = pcall(function() return type(data) .. ": " .. describe_error(data) end)
  return {value = text, ok = ok}
end
"""


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", list(BAD_ERRORS))
def test_malformed_error_objects_cross_actors_cleanly(arena: Arena, case: str, route: str) -> None:
    cases = "\n  ".join(f'if case == "{name}" then {code} end' for name, code in BAD_ERRORS.items())
    arena.each_kind("bad_error", BAD_ERROR.replace("CASES", cases))
    arena.driver_extra = BAD_ERROR_DRIVER
    if route == "host":  # called from Python: the error becomes a WippyError
        async def go() -> Any:
            async with arena.runtime() as rt:
                with pytest.raises(WippyError) as info:
                    await asyncio.wait_for(rt.call("app:bad_error_function", case, "raise"), TIMEOUT)
                return info.value

        err = asyncio.run(go())
        assert isinstance(err.kind, str) and isinstance(err.message, str)
        return
    out = arena.drive("bad_error", case, route)
    # the receiver gets an error object or data, never a host failure
    # refused where it was made (PermissionDenied: an error's absent fields cannot be set), at
    # the boundary (Invalid), or arriving as a sound error
    assert out.get("error") is None or out["error"].split(":")[0] in {"Invalid", "Internal", "", "PermissionDenied"} or \
        "bad" in out["error"], out
    text = repr(out)
    assert "print" not in text and "function:" not in text, out  # no function crossed


# Value objects (times, durations, locations) whose fields the attacker changed: they keep
# their type when copied, so they reach other actors, the journal and Python.
BAD_VALUES = {
    "control": "return time.now()",
    "time_sec_string": 'local v = time.now(); v.sec = "abc"; return v',
    "time_nsec_table": "local v = time.now(); v.nsec = {}; return v",
    "time_huge": "local v = time.now(); v.sec = 2^80; return v",
    "duration_ns_string": 'local v = time.parse_duration("1s"); v.ns = "x"; return v',
    "location_name_table": "local v = time.now():location(); v.name = {}; return v",
}
VALUE_ROUTES = ("return", "message", "workflow", "host")

BAD_VALUE = HEADER + """
local function make(case)
  CASES
end

local function main(case, route, driver)
  local v = make(case)
  if route == "message" then
    local ok, err = process.send(driver, "bad", v)
    return {sent = ok or false, err = err and err:kind()}
  end
  return v
end
return { main = main }
"""

BAD_VALUE_DRIVER = """
local function use(v)  -- what a receiver does with a Time or a Duration
  local out = {}
  for _, m in ipairs({"unix", "format_rfc3339", "seconds", "string"}) do
    local ok, r = pcall(function() return v[m](v) end)
    out[m] = ok and "ok" or tostring(r)
  end
  out.tostring = tostring(pcall(tostring, v))
  return out
end

function scenarios.bad_value(case, route)
  if route == "return" then
    local r = run("function", "app:bad_value_function", case, route)
    return {error = r.error, used = r.value ~= nil and use(r.value) or nil}
  end
  if route == "workflow" then return run("workflow", "app:bad_value_workflow", case, route) end
  local replies = process.listen("bad", {message = true})
  local sent = run("process", "app:bad_value_process", case, route, process.pid())
  if not sent.value.sent then return sent end
  return {used = use(replies:receive():payload():data())}
end
"""


@pytest.mark.parametrize("route", VALUE_ROUTES)
@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_forged_value_objects_cross_actors_cleanly(arena: Arena, case: str, route: str) -> None:
    cases = "\n  ".join(f'if case == "{name}" then {code} end' for name, code in BAD_VALUES.items())
    arena.each_kind("bad_value", BAD_VALUE.replace("CASES", cases))
    arena.driver_extra = BAD_VALUE_DRIVER

    async def go() -> Any:
        async with arena.runtime() as rt:
            if route == "host":  # returned to Python
                try:
                    return await asyncio.wait_for(rt.call("app:bad_value_function", case, route), TIMEOUT)
                except WippyError as err:
                    return err
            out = await asyncio.wait_for(rt.run("app:driver", "bad_value", case, route), TIMEOUT)
            if route == "workflow":  # the journal holds the result
                run = read_run(arena.store, "bad_value_workflow-1")
                assert run is not None and run.status in {"completed", "failed"}, run
                return run.result if run.status == "completed" else run.error
            return out

    out = asyncio.run(go())
    # Either the boundary refuses the forged value (Invalid), or what arrives is a sound
    # value: a receiver can print it, and its fields have their types.
    if isinstance(out, WippyError):
        assert out.kind == "Invalid", out
    elif route in ("return", "message"):
        refused = out.get("error") or (out.get("value") or {}).get("err") or ""
        assert str(refused).startswith("Invalid") or out["used"]["tostring"] == "true", out
    else:
        data = getattr(out, "data", {})
        sound = {"sec": int, "nsec": int, "ns": int, "name": str, "zone": str, "offset": int}
        bad = {k: v for k, v in data.items() if k in sound and not isinstance(v, sound[k])}
        assert not bad, f"a forged {getattr(out, 'type_name', '?')} reached the host: {data}"


# ---------------------------------------------------------------------------------------------
# Libraries: each importing instance gets its own copy
# ---------------------------------------------------------------------------------------------
LIBRARY = """
local M = {count = 0}
local hidden = {n = 0}
function M.bump() hidden.n = hidden.n + 1; M.count = M.count + 1; return hidden.n end
return M
"""

LIB_ATTACKER = """
local lib = require("lib")
local function main(driver)
  lib.bump(); lib.bump()
  lib.count = 99
  rawset(lib, "x", "EVIL")
  local real = lib.bump
  lib.bump = function() return "HIJACKED" end
  setmetatable(lib, {__index = function() return "EVIL" end})
  process.send(driver, "ready", real())
  process.inbox():receive()
end
return { main = main }
"""

LIB_VICTIM = """
local lib = require("lib")
local function main() return {lib.bump(), lib.count, lib.x, lib.nosuch} end
return { main = main }
"""

LIB_DRIVER = """
function scenarios.library()
  local ready = process.listen("ready")
  local attacker = process.spawn("app:lib_attacker_process", "app:procs", process.pid())
  local out = {attacker = ready:receive()}
  out["function"] = run("function", "app:lib_victim_function")
  out.process = run("process", "app:lib_victim_process")
  out.workflow = run("workflow", "app:lib_victim_workflow")
  process.send(attacker, "stop")
  return out
end
"""


def test_a_library_changed_by_one_importer_is_unchanged_for_the_others(arena: Arena) -> None:
    arena.files["lib.lua"] = LIBRARY
    arena.entries.append("  - {name: lib, kind: library.lua, source: file://lib.lua}")
    for prefix, source in (("lib_attacker", LIB_ATTACKER), ("lib_victim", LIB_VICTIM)):
        for kind in KINDS:
            arena.files[f"{prefix}_{kind}.lua"] = source
            arena.entries.append(f"  - {{name: {prefix}_{kind}, kind: {kind}.lua, source: file://{prefix}_{kind}.lua, "
                                 "method: main, imports: {lib: app:lib}}")
    arena.driver_extra = LIB_DRIVER
    out = arena.drive("library")
    assert out["attacker"] == 3  # the attacker's own copy did change
    for kind in KINDS:
        assert out[kind] == {"value": [1, 1]}, (kind, out[kind])


# ---------------------------------------------------------------------------------------------
# Messages, arguments and contexts are copies
# ---------------------------------------------------------------------------------------------
COPY_DRIVER = """
function scenarios.copies()
  local me = process.pid()
  local out = {}
  -- a message payload: the sender changes its table after sending
  local pid = process.spawn("app:mutator_process", "app:procs", "send", me)
  local first = process.inbox():receive()
  out.message = first:payload():data()
  -- arguments and contexts: the callee changes what it got
  local arg = {n = 1, nested = {m = 1}}
  local ctx_value = {k = 1}
  funcs.new():with_context({shared = ctx_value}):call("app:mutator_function", "call", arg)
  out.arg, out.ctx = arg, ctx_value
  -- a result: the callee keeps and changes the table it returned
  local result = funcs.call("app:mutator_function", "result")
  out.result = result
  out.again = funcs.call("app:mutator_function", "result")
  return out
end
"""

MUTATOR = HEADER + """
local kept = {}
local function main(what, arg)
  if what == "send" then
    local t = {n = 1, nested = {m = 1}}
    process.send(arg, "data", t)
    t.n, t.nested.m = 2, 2
    return "sent"
  elseif what == "call" then
    arg.n, arg.nested.m = 2, 2
    local shared = ctx.get("shared")
    if type(shared) == "table" then shared.k = 2 end
    return "changed"
  else
    local t = {n = 1}
    kept[#kept + 1] = t
    local co = coroutine.wrap(function() t.n = 2 end)
    return t, co and nil
  end
end
return { main = main }
"""


def test_messages_arguments_contexts_and_results_are_copies(arena: Arena) -> None:
    arena.each_kind("mutator", MUTATOR)
    arena.driver_extra = COPY_DRIVER
    out = arena.drive("copies")
    assert out["message"] == {"n": 1, "nested": {"m": 1}}
    assert out["arg"] == {"n": 1, "nested": {"m": 1}}
    assert out["ctx"] == {"k": 1}
    assert out["result"] == {"n": 1} and out["again"] == {"n": 1}


# ---------------------------------------------------------------------------------------------
# Finalizers: attacker code that the garbage collector runs inside another actor's step
# ---------------------------------------------------------------------------------------------
# Finalizers planted three ways: a function, a callable table, a placeholder swapped later.
GC_PLANTER = HEADER + """
local function main(seconds)
  local function busy() local t = os.clock(); while os.clock() - t < seconds do end end
  local keep = {}
  keep[1] = setmetatable({}, {__gc = busy})
  keep[2] = setmetatable({}, {__gc = setmetatable({}, {__call = busy})})
  local mt = {__gc = false}
  keep[3] = setmetatable({}, mt)
  mt.__gc = busy
  return "planted"
end
return { main = main }
"""

GC_VICTIM = HEADER + """
local function main()
  local t0 = os.clock()
  local junk = {}
  for i = 1, 100000 do junk[i % 512] = {i, tostring(i)} end
  return os.clock() - t0
end
return { main = main }
"""

GC_DRIVER = """
function scenarios.finalizers(seconds)
  local planted = run("process", "app:gc_planter_process", seconds)
  local victim = run("process", "app:gc_victim_process")
  return {planted = planted, victim = victim}
end
"""


def test_an_attackers_finalizers_do_not_run_in_the_victims_step(arena: Arena) -> None:
    """Lua turns hooks off while a finalizer runs: a __gc that loops would run unbounded in
    whatever actor happens to allocate (a `while true do end` in one freezes the runtime)."""
    arena.each_kind("gc_planter", GC_PLANTER)
    arena.each_kind("gc_victim", GC_VICTIM)
    arena.driver_extra = GC_DRIVER
    out = arena.drive("finalizers", 0.4)
    victim = out["victim"]
    assert victim.get("error") is None, victim
    assert victim["value"] < 1.0, f"the victim's step ran {victim['value']:.2f}s of someone else's finalizers"


# ---------------------------------------------------------------------------------------------
# Runaway CPU
# ---------------------------------------------------------------------------------------------
RUNAWAYS = {
    "loop": "while true do end",
    "pcall_loop": "while true do pcall(function() while true do end end) end",
    "xpcall_loop": "while true do xpcall(function() while true do end end, function(e) return e end) end",
    "handler_loop": "while true do xpcall(error, function() while true do end end) end",
    # inside coroutines the user creates (bounded: unguarded, it would never end)
    "coroutine_loop": """
        local function spin() local t = os.clock(); while os.clock() - t < 0.8 do end end
        pcall(coroutine.wrap(spin))
        coroutine.resume(coroutine.create(spin))
        return "ran 1.6s in coroutines" """,
    "callback_loop": "while true do pcall(table.sort, {3, 2, 1}, function() while true do end end) end",
    # a __close handler that raises replaces the abort with an error pcall can catch
    "close_escape": """
        for _ = 1, 200 do
          pcall(function()
            local guard <close> = setmetatable({}, {__close = function() error("swallowed") end})
            while true do end
          end)
        end
        return "escaped the CPU budget 200 times" """,
}
# Not covered, on purpose: time spent inside one C library call (a pathological string
# pattern backtracking in `string.find`) is out of the count hook's reach; docs/isolation.md
# says so.

SPIN = "local function main()\nBODY\nend\nreturn { main = main }\n"

TICKER = """
local time = require("time")

local function main()
  local n, waiting = 0, {}
  local tick, inbox = time.ticker("10ms"):response(), process.inbox()
  while true do
    local r = channel.select({tick:case_receive(), inbox:case_receive()})
    if r.channel == tick then
      n = n + 1
      for _, pid in ipairs(waiting) do process.send(pid, "tick", n) end
      waiting = {}
    elseif r.value:topic() == "stop" then
      return n
    else
      waiting[#waiting + 1] = r.value:payload():data()
    end
  end
end
return { main = main }
"""

GUARDED_DRIVER = """
-- Run `entry` while a ticking process and a timer run beside it; afterwards both must
-- still work.
function scenarios.guarded(kind, entry, ...)
  local me = process.pid()
  local ticker = process.spawn("app:ticker", "app:procs")
  local ticks = process.listen("tick")
  local function next_tick() process.send(ticker, "next", me); return ticks:receive() end
  local out = {ticks = {next_tick()}}
  local timer = time.after("30ms")
  local t0 = time.now()
  out.result = run(kind, entry, ...)
  out.seconds = time.now():sub(t0):seconds()
  out.timer = timer:receive() ~= nil
  out.ticks[2] = next_tick()
  out.ticks[3] = next_tick()
  process.send(ticker, "stop")
  return out
end
"""


def guarded_arena(arena: Arena, name: str, body: str) -> None:
    arena.entry("ticker", "process", TICKER, modules=["time"])
    arena.each_kind(name, SPIN.replace("BODY", textwrap.dedent(body)))
    arena.driver_extra = GUARDED_DRIVER


def assert_guarded(out: dict[str, Any], entry: str, budget: float, what: str) -> None:
    result = out["result"]
    error = result.get("error") or ""
    assert error.startswith("LimitExceeded: "), result
    assert what in error, error
    assert out["timer"] is True
    first, second, third = out["ticks"]
    assert first < second < third, out["ticks"]  # the ticker kept ticking
    assert out["seconds"] < budget + 2.0, out["seconds"]
    assert entry in error, f"the error does not name {entry}: {error}"


RUNAWAY_CASES = [(v, "process") for v in RUNAWAYS] + [
    (v, k) for v in ("loop", "pcall_loop") for k in ("function", "workflow")]


@pytest.mark.parametrize(("variant", "kind"), RUNAWAY_CASES, ids=[f"{v}-{k}" for v, k in RUNAWAY_CASES])
def test_runaway_cpu_ends_its_actor_and_the_others_keep_running(arena: Arena, variant: str, kind: str) -> None:
    guarded_arena(arena, "spin", RUNAWAYS[variant])
    entry = f"app:spin_{kind}"
    out = arena.drive("guarded", kind, entry)
    budget = 1.0 if kind == "function" else STEP_TIME  # functions run under the default budget
    assert_guarded(out, entry, budget, "CPU budget")
    if kind == "workflow":
        reader = JournalReader(str(arena.store))
        try:
            runs = reader.runs()
        finally:
            reader.close()
        spin = [r for r in runs if r.workflow_id.startswith("spin_workflow")]
        assert [r.status for r in spin] == ["failed"], spin
        assert spin[0].error.kind == "LimitExceeded"


# A workflow that loops only after a durable timer: the loop is reached again by every replay.
POISON = HEADER + """
local function main(wait)
  time.sleep(wait)
  while true do end
end
return { main = main }
"""

GOOD = HEADER + """
local function main()
  local msg = process.inbox():receive()
  return "good " .. tostring(msg:payload():data())
end
return { main = main }
"""

POISON_DRIVER = """
function scenarios.poison(id, wait)
  local pid = process.with_options({["temporal.workflow.id"] = id}):spawn_monitored("app:poison_workflow", "app:wfs", wait)
  return wait_exit(process.events(), pid)
end

function scenarios.spawn_open()
  process.with_options({["temporal.workflow.id"] = "poison-2"}):spawn("app:poison_workflow", "app:wfs", "300ms")
  process.with_options({["temporal.workflow.id"] = "good-1"}):spawn("app:good_workflow", "app:wfs")
  return "spawned"
end

function scenarios.signal(pid, value) return process.send(pid, "go", value) end
function scenarios.nothing() return "nothing" end
"""


def read_run(store: Path, workflow_id: str) -> Any:
    reader = JournalReader(str(store))
    try:
        return reader.run(workflow_id)
    finally:
        reader.close()


async def wait_for_status(store: Path, workflow_id: str, statuses: set[str]) -> Any:
    # The journal is written by the runtime's writer task; poll the file until it shows.
    deadline = time.monotonic() + TIMEOUT
    while True:
        run = read_run(store, workflow_id)
        if run is not None and run.status in statuses:
            return run
        assert time.monotonic() < deadline, f"{workflow_id}: {run and run.status}"
        await asyncio.sleep(0.01)


def test_a_workflow_that_loops_after_a_timer_fails_once_and_stays_failed(arena: Arena) -> None:
    arena.each_kind("poison", POISON)
    arena.each_kind("good", GOOD)
    arena.driver_extra = POISON_DRIVER
    # 1. it loops after its timer: it fails with LimitExceeded, recorded in its history
    out = arena.drive("poison", "poison-1", "20ms")
    assert out["error"].startswith("LimitExceeded: "), out
    run = read_run(arena.store, "poison-1")
    assert run.status == "failed" and run.error.kind == "LimitExceeded", run
    assert any("time" in str(record) for record in run.history), run.history  # the timer was recorded
    history = list(run.history)

    # 2. a restart does not loop again: the failed workflow is closed
    async def restarted(rt: Runtime) -> None:
        host = rt.router.hosts["app:wfs"]
        assert host.recovered == 0

    start = time.monotonic()
    arena.drive("nothing", then=restarted)
    assert time.monotonic() - start < 2.0
    run = read_run(arena.store, "poison-1")
    assert run.status == "failed" and list(run.history) == history

    # 3. stopped while its timer runs, it is resumed by the next runtime, fails there, and a
    #    healthy workflow resumed beside it completes
    arena.drive("spawn_open")
    assert read_run(arena.store, "poison-2").status == "running"

    async def resume(rt: Runtime) -> None:
        assert rt.router.hosts["app:wfs"].recovered == 2
        sent = await rt.run("app:driver", "signal", "{app:wfs|good-1}", 7)
        assert sent is True
        good = await wait_for_status(arena.store, "good-1", {"completed", "failed"})
        assert good.status == "completed" and good.result == "good 7"
        poison = await wait_for_status(arena.store, "poison-2", {"completed", "failed"})
        assert poison.status == "failed" and poison.error.kind == "LimitExceeded"

    arena.drive("nothing", then=resume)

    async def third(rt: Runtime) -> None:
        assert rt.router.hosts["app:wfs"].recovered == 0

    arena.drive("nothing", then=third)
    assert "app:poison_workflow" in out["error"], f"the error does not name the entry: {out['error']}"


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------
MAX_MEMORY = 64 << 20

HOGS = {
    "grow": "local t = {}\nwhile true do t[#t + 1] = string.rep('x', 65536) .. #t end",
    "grow_in_pcall": "local t = {}\nwhile true do pcall(function() t[#t + 1] = string.rep('x', 65536) .. #t end) end",
    "rep": "return #string.rep('x', 2^30)",
    "concat": "local t = {}\nfor i = 1, 512 do t[i] = string.rep('y', 65536) end\nreturn #table.concat(t, table.concat(t))",
}

MEMORY_CASES = [(h, "process") for h in HOGS] + [(h, k) for h in ("grow", "rep") for k in ("function", "workflow")]


@pytest.mark.parametrize(("hog", "kind"), MEMORY_CASES, ids=[f"{h}-{k}" for h, k in MEMORY_CASES])
def test_memory_hog_ends_its_actor_and_the_runtime_keeps_working(arena: Arena, hog: str, kind: str) -> None:
    guarded_arena(arena, "hog", HOGS[hog])
    arena.entry("alloc", "function", "return { main = function(n) return #table.concat({string.rep('z', n), '!'}) end }")

    async def afterwards(rt: Runtime) -> None:
        # what the hog held is garbage now: the same memory serves others
        assert await rt.call("app:alloc", 16 << 20) == (16 << 20) + 1

    entry = f"app:hog_{kind}"
    out = arena.drive("guarded", kind, entry, max_memory=MAX_MEMORY, then=afterwards)
    budget = 1.0 if kind == "function" else STEP_TIME
    assert_guarded(out, entry, budget, "memory")


# ---------------------------------------------------------------------------------------------
# Inbox flooding
# ---------------------------------------------------------------------------------------------
SLEEPER = """
local function main(driver)
  local go = process.listen("go")  -- its own queue: never full of the flood
  process.send(driver, "ready")
  go:receive()
  local inbox, got = process.inbox(), {}
  for i = 1, INBOX do got[i] = inbox:receive():payload():data() end
  return got
end
return { main = main }
""".replace("INBOX", str(INBOX))

FLOOD_DRIVER = """
function scenarios.flood(extra)
  local ready = process.listen("ready")
  local sleeper = process.spawn_monitored("app:sleeper", "app:procs", process.pid())
  local other = process.spawn_monitored("app:sleeper", "app:procs", process.pid())
  ready:receive()
  ready:receive()
  local accepted, refused = 0, {}
  for i = 1, INBOX + extra do
    local ok, err = process.send(sleeper, "m", i)
    if ok then accepted = accepted + 1 else refused[#refused + 1] = err:kind() .. ": " .. tostring(err) end
  end
  -- other processes are not affected by one full inbox
  local other_ok = process.send(other, "m", "other")
  process.send(sleeper, "go")
  local got = wait_exit(process.events(), sleeper)
  process.terminate(other)
  return {accepted = accepted, refused = refused, got = got.value, other_ok = other_ok}
end
""".replace("INBOX", str(INBOX))


def test_a_full_inbox_refuses_the_sender_and_keeps_what_it_holds(arena: Arena) -> None:
    arena.entry("sleeper", "process", SLEEPER)
    arena.driver_extra = FLOOD_DRIVER
    out = arena.drive("flood", 5)
    assert out["accepted"] == INBOX
    assert len(out["refused"]) == 5
    assert all(r.startswith("LimitExceeded: ") and "full" in r for r in out["refused"]), out["refused"]
    assert out["got"] == list(range(1, INBOX + 1))  # nothing lost, in order
    assert out["other_ok"] is True


# ---------------------------------------------------------------------------------------------
# Data entering a workflow is bounded however it enters
# ---------------------------------------------------------------------------------------------
BIG_DRIVER = """
function scenarios.big_inputs(size)
  local big = string.rep("i", size)
  local out = {}
  local function kind_of(pid, err) return pid and "accepted" or (err:kind() .. ": " .. tostring(err)) end
  out.input = kind_of(process.with_options({["temporal.workflow.id"] = "big-input"})
    :spawn("app:good_workflow", "app:wfs", big))
  out.start_message = kind_of(process.with_options({["temporal.workflow.id"] = "big-start"})
    :with_message("go", big):spawn("app:good_workflow", "app:wfs"))
  local pid = process.with_options({["temporal.workflow.id"] = "big-signal"}):spawn_monitored("app:good_workflow", "app:wfs")
  local ok, err = process.send(pid, "go", big)
  out.signal = ok and "accepted" or (err:kind() .. ": " .. tostring(err))
  process.send(pid, "go", "small")
  out.after = wait_exit(process.events(), pid)
  return out
end
"""


def test_oversized_data_cannot_enter_a_workflow(arena: Arena) -> None:
    arena.each_kind("good", GOOD)
    arena.driver_extra = BIG_DRIVER
    out = arena.drive("big_inputs", MAX_RECORD_BYTES + 1024)
    for way in ("input", "start_message", "signal"):
        assert out[way].startswith("Invalid: ") and str(MAX_RECORD_BYTES) in out[way], (way, out[way])
    assert out["after"] == {"value": "good small"}
    for workflow_id in ("big-input", "big-start"):
        run = read_run(arena.store, workflow_id)
        assert run is None or run.history_size < MAX_RECORD_BYTES, run
