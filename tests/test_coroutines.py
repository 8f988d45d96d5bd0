"""Blocking calls wherever Lua code may run them: pcall, user coroutines, libraries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError

HELPERS = {
    "add": "return { main = function(a, b) return a + b end }",
    "noop": "return { main = function() end }",
    "blocks": "return { main = function() return process.pid() end }",  # a command: it needs its own actor
}


def run(project: Project, body: str, *args: Any, **kwargs: Any) -> Any:
    for name, source in HELPERS.items():
        project.function(name, source)
    return run_lua(project, 'local funcs = require("funcs")\n' + body, *args, modules=["funcs"], **kwargs)


def run_error(project: Project, body: str) -> WippyError:
    with pytest.raises(WippyError) as info:
        run(project, body)
    return info.value


# pcall / xpcall ------------------------------------------------------------------------------------
def test_blocking_inside_pcall(project: Project) -> None:
    body = """
    local ok1, v1 = pcall(funcs.call, "app:add", 1, 2)
    local ok2, v2 = pcall(function() return funcs.call("app:add", 3, 4) + 1 end)
    return {ok1, v1, ok2, v2}
    """
    assert run(project, body) == [True, 3, True, 8]


def test_blocking_error_inside_pcall(project: Project) -> None:
    body = """
    local ch = channel.new()
    ch:close()
    local ok, e = pcall(function() ch:send(1) end)
    local after = funcs.call("app:add", 1, 1)  -- the task goes on normally
    return {ok, e:kind(), after}
    """
    assert run(project, body) == [False, "Invalid", 2]


def test_blocking_inside_xpcall_and_nested_pcall(project: Project) -> None:
    body = """
    local ok, v = xpcall(function()
      local ok2, v2 = pcall(function()
        local x = funcs.call("app:add", 1, 1)
        error({value = x})
      end)
      return v2.value + funcs.call("app:add", 10, 10)
    end, function(e) return "handled: " .. tostring(e) end)
    return {ok, v}
    """
    assert run(project, body) == [True, 22]


def test_blocking_in_metamethod(project: Project) -> None:
    body = """
    local lazy = setmetatable({}, {__index = function(t, k) return funcs.call("app:add", k, 100) end})
    local n = setmetatable({}, {__add = function(a, b) return funcs.call("app:add", 1, b) end})
    return {lazy[1], lazy[2], n + 5}
    """
    assert run(project, body) == [101, 102, 6]


@pytest.mark.parametrize(
    "call",
    [
        "table.sort({3, 1, 2}, function(a, b) funcs.call('app:blocks'); return a < b end)",
        "string.gsub('ab', '%w', function(c) return funcs.call('app:blocks') end)",
        "tostring(setmetatable({}, {__tostring = function() return channel.new(1):receive() end}))",
    ],
)
def test_blocking_inside_c_callback_is_a_clear_error(project: Project, call: str) -> None:
    body = f"local ok, e = pcall(function() return {call} end); return {{ok, e:kind(), e:message()}}"
    ok, kind, message = run(project, body)
    assert (ok, kind) == (False, "Invalid")
    assert "callback called from C" in message


def test_a_call_that_does_not_block_works_inside_a_c_callback(project: Project) -> None:
    """funcs.call runs a callee inside its caller's step until the callee needs a command:
    one that never does answers even where the caller cannot yield (as upstream, which
    has no such limit at all)."""
    body = """
    local t = {3, 1, 2}
    table.sort(t, function(a, b) funcs.call('app:noop'); return a < b end)
    local s = string.gsub('ab', '%w', function(c) return tostring(funcs.call('app:add', 1, 1)) end)
    return {t[1], t[2], t[3], s}
    """
    assert run(project, body) == [1, 2, 3, "22"]


# User coroutines -----------------------------------------------------------------------------------
def test_blocking_inside_coroutine_create_resume(project: Project) -> None:
    body = """
    local co = coroutine.create(function(a)
      local x = funcs.call("app:add", a, 1)
      local y = coroutine.yield(x)
      local z = funcs.call("app:add", y, 1)
      return z, "end"
    end)
    local r1 = {coroutine.resume(co, 1)}
    local s1 = coroutine.status(co)
    local r2 = {coroutine.resume(co, 10)}
    local s2 = coroutine.status(co)
    local r3 = {coroutine.resume(co)}
    return {r1, s1, r2, s2, r3}
    """
    assert run(project, body) == [[True, 2], "suspended", [True, 11, "end"], "dead",
                                  [False, "cannot resume dead coroutine"]]


def test_blocking_inside_coroutine_wrap_generator(project: Project) -> None:
    body = """
    local gen = coroutine.wrap(function(n)
      for i = 1, n do coroutine.yield(funcs.call("app:add", i, i)) end
    end)
    local out = {}
    local first = gen(4)
    out[1] = first
    for v in gen do out[#out + 1] = v end
    return out
    """
    assert run(project, body) == [2, 4, 6, 8]


def test_nested_coroutines_two_levels(project: Project) -> None:
    body = """
    local trace = {}
    local outer = coroutine.create(function()
      local inner = coroutine.create(function()
        trace[#trace + 1] = "inner:" .. funcs.call("app:add", 1, 1)
        coroutine.yield("inner-yield")
        local ch = channel.new(1)
        ch:send("buffered")
        trace[#trace + 1] = "inner:" .. ch:receive()
        return "inner-done"
      end)
      trace[#trace + 1] = "outer:" .. funcs.call("app:add", 5, 5)
      local _, a = coroutine.resume(inner)
      coroutine.yield("outer saw " .. a)
      local _, b = coroutine.resume(inner)
      trace[#trace + 1] = "outer:" .. funcs.call("app:add", 7, 7)
      return "outer saw " .. b
    end)
    local _, y1 = coroutine.resume(outer)
    local _, y2 = coroutine.resume(outer)
    return {y1, y2, coroutine.status(outer), trace}
    """
    assert run(project, body) == ["outer saw inner-yield", "outer saw inner-done", "dead",
                                  ["outer:10", "inner:2", "inner:buffered", "outer:14"]]


def test_three_levels_with_wrap_inside_create(project: Project) -> None:
    body = """
    local co = coroutine.create(function()
      local gen = coroutine.wrap(function()
        local inner = coroutine.wrap(function() coroutine.yield(funcs.call("app:add", 1, 2)) end)
        coroutine.yield(inner() * 10)
      end)
      coroutine.yield(gen() + funcs.call("app:add", 0, 4))
    end)
    return select(2, coroutine.resume(co))
    """
    assert run(project, body) == 34


def test_user_yields_work_normally(project: Project) -> None:
    body = """
    local co = coroutine.create(function(...)
      local got = {...}
      while true do
        local v = coroutine.yield(#got, coroutine.isyieldable())
        if v == nil then break end
        got[#got + 1] = v
      end
      return got
    end)
    local a = {coroutine.resume(co, "x", "y")}
    local b = {coroutine.resume(co, "z")}
    local c = {coroutine.resume(co)}
    return {a, b, c, coroutine.isyieldable() and "top-yieldable" or "top-not"}
    """
    a, b, c, _ = run(project, body)
    assert a == [True, 2, True]
    assert b == [True, 3, True]
    assert c == [True, ["x", "y", "z"]]


def test_error_after_blocking_in_coroutine(project: Project) -> None:
    body = """
    local co = coroutine.create(function()
      funcs.call("app:noop")
      error(errors.new({message = "inner failure", kind = errors.CONFLICT}))
    end)
    local ok, e = coroutine.resume(co)
    local wrapped = coroutine.wrap(function() funcs.call("app:noop"); error("plain", 0) end)
    local ok2, e2 = pcall(wrapped)
    return {ok, e:kind(), coroutine.status(co), ok2, e2}
    """
    assert run(project, body) == [False, "Conflict", "dead", False, "plain"]


def test_blocked_coroutine_cannot_be_resumed_by_another_task(project: Project) -> None:
    body = """
    local ch, done = channel.new(), channel.new(3)
    local co = coroutine.create(function() return "got " .. ch:receive() end)
    coroutine.spawn(function() done:send({"owner", coroutine.resume(co)}) end)
    coroutine.spawn(function()
      local status = coroutine.status(co)
      local ok, err = coroutine.resume(co, "intruder")
      local closed, cerr = pcall(coroutine.close, co)
      done:send({"intruder", status, ok, err, closed, cerr:kind()})
    end)
    coroutine.spawn(function() ch:send("real") end)
    local out = {}
    for _ = 1, 2 do local r = done:receive(); out[r[1]] = r end
    return out
    """
    got = run(project, body)
    assert got["owner"] == ["owner", True, "got real"]
    assert got["intruder"] == ["intruder", "normal", False,
                               "cannot resume coroutine: it is waiting for a blocking operation", False, "Invalid"]


def test_runtime_task_cannot_be_resumed_by_user_code(project: Project) -> None:
    body = """
    local main = coroutine.running()
    local done = channel.new(1)
    coroutine.spawn(function() done:send({coroutine.status(main), coroutine.resume(main, "x")}) end)
    return done:receive()
    """
    assert run(project, body) == ["normal", False, "cannot resume coroutine: it is a runtime task"]


def test_wrap_shared_between_tasks_while_blocked(project: Project) -> None:
    body = """
    local ch, done = channel.new(), channel.new(2)
    local gen = coroutine.wrap(function() coroutine.yield(ch:receive()) end)
    coroutine.spawn(function() done:send({"first", gen()}) end)
    coroutine.spawn(function() local ok, e = pcall(gen); done:send({"second", ok, e:kind()}) end)
    coroutine.spawn(function() ch:send("v") end)
    local out = {}
    for _ = 1, 2 do local r = done:receive(); out[r[1]] = r end
    return out
    """
    assert run(project, body) == {"first": ["first", "v", True], "second": ["second", False, "Invalid"]}


# Top-level yields -----------------------------------------------------------------------------------
def test_yield_at_top_level_is_a_clear_error(project: Project) -> None:
    err = run_error(project, "coroutine.yield(1)")
    assert err.kind == "Invalid"
    assert "outside a coroutine" in err.message


def test_yield_at_top_level_can_be_caught(project: Project) -> None:
    body = "local ok, e = pcall(coroutine.yield, 1); return {ok, e:kind(), funcs.call('app:add', 1, 1)}"
    assert run(project, body) == [False, "Invalid", 2]


def test_yield_at_top_level_of_spawned_task(project: Project) -> None:
    body = """
    local done = channel.new(1)
    coroutine.spawn(function() local ok, e = pcall(coroutine.yield); done:send({ok, e:kind()}) end)
    return done:receive()
    """
    assert run(project, body) == [False, "Invalid"]


# Libraries ----------------------------------------------------------------------------------------
def test_blocking_inside_library_code(project: Project) -> None:
    project.function(
        "lib",
        """
        local funcs = require("funcs")
        local lib = {}
        function lib.double_add(a, b)
          local co = coroutine.wrap(function() coroutine.yield(funcs.call("app:add", a, b)) end)
          return co() + funcs.call("app:add", a, b)
        end
        function lib.yield_here() return coroutine.yield() end
        return lib
        """,
        kind="library.lua",
        method=None,
        modules=["funcs"],
    )
    project.function(
        "user",
        """
        local lib = require("helpers")
        return { main = function(a, b)
          local ok, e = pcall(lib.yield_here)
          return {lib.double_add(a, b), ok, e:kind()}
        end }
        """,
        imports={"helpers": "app:lib"},
    )
    for name, source in HELPERS.items():
        project.function(name, source)
    runtime = project.runtime()
    assert asyncio.run(runtime.call("app:user", 2, 3)) == [10, False, "Invalid"]


def test_library_instance_per_caller(project: Project) -> None:
    project.function("lib", "local n = 0\nreturn { bump = function() n = n + 1; return n end }",
                     kind="library.lua", method=None)
    project.function("user", """
        local lib = require("lib")
        return { main = function() lib.bump(); return {lib.bump(), require("lib") == lib} end }
        """, imports={"lib": "app:lib"})
    runtime = project.runtime()

    async def go() -> list[Any]:
        return [await runtime.call("app:user"), await runtime.call("app:user")]

    assert asyncio.run(go()) == [[2, True], [2, True]]
