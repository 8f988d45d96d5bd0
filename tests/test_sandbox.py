"""The sandbox: what user code can and cannot reach, and isolation between instances."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Project, Run, run_lua
from wippy import WippyError


def lua_error(project: Project, body: str, modules: list[str] | None = None) -> WippyError:
    with pytest.raises(WippyError) as info:
        run_lua(project, body, modules=modules)
    return info.value


# Standard library pieces that are not there at all: using them names them.
@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("return io.open('/etc/passwd')", "io"),
        ("return io.popen('id')", "io"),
        ("return debug.getinfo(1)", "debug"),
        ("return debug.getregistry()", "debug"),
        ("return package.loadlib('x', 'y')", "package"),
        ("return package.loaded", "package"),
        ("return loadstring('return 1')", "loadstring"),
    ],
)
def test_missing_libraries_are_nil(project: Project, body: str, name: str) -> None:
    err = lua_error(project, body)
    assert err.kind == "Internal"
    assert f"'{name}'" in err.message
    assert "nil value" in err.message


@pytest.mark.parametrize("name", ["io", "debug", "package", "loadstring", "python"])
def test_absent_globals(project: Project, name: str) -> None:
    assert run_lua(project, f"return type({name})") == "nil"


# Standard functions that are denied: calling one raises PERMISSION_DENIED naming it.
@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("return os.execute('echo pwned')", "os.execute"),
        ("return os.exit(1)", "os.exit"),
        ("return os.getenv('HOME')", "os.getenv"),
        ("return os.remove('/tmp/x')", "os.remove"),
        ("return os.rename('/tmp/x', '/tmp/y')", "os.rename"),
        ("return os.tmpname()", "os.tmpname"),
        ("return dofile('/etc/passwd')", "dofile"),
        ("return loadfile('/etc/passwd')", "loadfile"),
        ("return collectgarbage('count')", "collectgarbage"),
        ("return string.dump(function() end)", "string.dump"),
        ("return ('x').dump(function() end)", "string.dump"),
        ("local s = 'x'; return s.dump(print)", "string.dump"),
    ],
)
def test_denied_functions(project: Project, body: str, name: str) -> None:
    err = lua_error(project, body)
    assert err.kind == "PermissionDenied"
    assert err.message.startswith(f"{name} is not available")


def test_denied_call_can_be_caught(project: Project) -> None:
    result = run_lua(project, "local ok, e = pcall(os.execute, 'ls'); return {ok, e:kind()}")
    assert result == [False, "PermissionDenied"]


def test_os_keeps_time_functions(project: Project) -> None:
    result = run_lua(project, "return {math.type(os.time()), type(os.clock()), type(os.date('%Y')), os.difftime(5, 3)}")
    assert result == ["integer", "number", "string", 2.0]


def test_string_metatable_is_protected(lua: Run, project: Project) -> None:
    assert lua('return getmetatable("")') is False
    err = lua_error(project, 'return getmetatable("").__index.dump')
    assert err.kind == "Internal"
    assert "boolean" in err.message


def test_string_methods_still_work(project: Project) -> None:
    assert run_lua(project, 'return ("a,b"):upper() .. ("x"):rep(3)') == "A,Bxxx"


def test_load_rejects_binary_mode(project: Project) -> None:
    err = lua_error(project, 'return load("return 1", "chunk", "b")')
    assert err.kind == "PermissionDenied"
    assert "text" in err.message


def test_load_rejects_binary_chunk(project: Project) -> None:
    err = lua_error(project, 'return load("\\27Lua\\84\\0", "chunk")')
    assert err.kind == "PermissionDenied"
    assert "binary" in err.message


def test_load_reader_cannot_smuggle_binary(project: Project) -> None:
    body = """
    local parts = {"\\27", "Lua"}
    local i = 0
    local f, err = load(function() i = i + 1; return parts[i] end)
    return {f == nil, err}
    """
    result = run_lua(project, body)
    assert result[0] is True
    assert "binary" in result[1]


def test_load_text_works_in_instance_env(lua: Run, project: Project) -> None:
    assert lua('local f = load("y = 40; return y + 2"); return {f(), y}') == [42, 40]
    assert lua('return load("return 1", "c", "bt")()') == 1
    assert lua('return load("return x", "c", "t", {x = 7})()') == 7


def test_load_syntax_error_returns_nil_and_message(project: Project) -> None:
    result = run_lua(project, 'local f, err = load("return +"); return {f == nil, err}')
    assert result[0] is True
    assert "unexpected symbol" in result[1]


def test_loaded_chunk_globals_do_not_leak(project: Project) -> None:
    project.function("a", 'return { main = function() return load("leaked = 42; return leaked")() end }')
    project.function("b", "return { main = function() return leaked end }")
    runtime = project.runtime()

    async def go() -> list[object]:
        return [await runtime.call("app:a"), await runtime.call("app:b"), await runtime.call("app:a")]

    assert asyncio.run(go()) == [42, None, 42]


def test_env_metatable_is_protected(lua: Run, project: Project) -> None:
    assert lua("return getmetatable(_G)") is False
    err = lua_error(project, "setmetatable(_G, {})")
    assert "protected metatable" in err.message


def test_require_undeclared_module(project: Project) -> None:
    err = lua_error(project, 'return require("funcs")')
    assert err.kind == "PermissionDenied"
    assert "'funcs'" in err.message
    assert "modules:" in err.message
    assert "app:t" in err.message


def test_require_unknown_module(project: Project) -> None:
    err = lua_error(project, 'return require("no_such_module")')
    assert err.kind == "NotFound"
    assert "'no_such_module'" in err.message


def test_require_declared_unknown_module(project: Project) -> None:
    err = lua_error(project, 'return require("no_such_module")', modules=["no_such_module"])
    assert err.kind == "NotFound"
    assert "'no_such_module'" in err.message


def test_require_non_string(project: Project) -> None:
    err = lua_error(project, "return require(42)")
    assert err.kind == "Invalid"


def test_require_declared_module_is_cached(project: Project) -> None:
    assert run_lua(project, 'return require("funcs") == require("funcs")', modules=["funcs"]) is True


def test_global_modules_need_no_declaration(project: Project) -> None:
    assert run_lua(project, 'return require("channel") == channel') is True


def test_unpack_global(lua: Run, project: Project) -> None:
    assert lua("return {unpack({1, 2, 3})}") == [1, 2, 3]
    assert lua("return unpack == table.unpack") is True


def test_g_is_the_instance_env(project: Project) -> None:
    body = """
    _G.from_g = 1
    plain = 2
    return {from_g, _G.plain, _G == _ENV, _G._G == _G, type(_G.print), rawget(_G, "print") == nil}
    """
    assert run_lua(project, body) == [1, 2, True, True, "function", True]


def test_globals_do_not_leak_between_calls(project: Project) -> None:
    project.function(
        "counter",
        """
        loaded = (loaded or 0) + 1
        return { main = function()
          called = (called or 0) + 1
          _G.via_g = (_G.via_g or 0) + 1
          return {loaded, called, via_g}
        end }
        """,
    )
    project.function("other", "return { main = function() return {loaded, called, via_g} end }")
    runtime = project.runtime()

    async def go() -> list[object]:
        return [await runtime.call("app:counter"), await runtime.call("app:counter"),
                await runtime.call("app:other")]

    first, second, other = asyncio.run(go())
    assert first == [1, 1, 1]
    assert second == [1, 1, 1]
    assert other == {}


def test_instances_of_one_entry_do_not_share_upvalues(project: Project) -> None:
    project.function(
        "state",
        """
        local n = 0
        return { main = function() n = n + 1; return n end }
        """,
    )
    runtime = project.runtime()

    async def go() -> list[object]:
        return [await runtime.call("app:state") for _ in range(3)]

    assert asyncio.run(go()) == [1, 1, 1]


def test_print_goes_to_output(project: Project) -> None:
    lines: list[str] = []
    project.function("p", 'return { main = function() print("a", 1, nil, true) end }')
    runtime = project.runtime(output=lines.append)
    asyncio.run(runtime.call("app:p"))
    assert lines == ["a\t1\tnil\ttrue"]


def test_host_objects_expose_no_attributes(project: Project) -> None:
    # A channel's handle is a Python object; Lua must not reach its attributes.
    err = lua_error(project, "local ch = channel.new(); return ch._h.capacity")
    assert "attributes" in err.message or "attempt to index" in err.message


def test_host_object_metatable_is_protected(lua: Run) -> None:
    # lupa's metatable is shared by every host object: calling its __gc by hand would free
    # a handle the runtime still uses, changing it would affect every actor.
    assert lua("local ch = channel.new(); return getmetatable(ch._h)") is None  # the handle is private
    assert lua("local t = require('time').now(); return getmetatable(t.__index)", modules=["time"]) is None
    assert lua("return getmetatable(process.pid)") is None


@pytest.mark.parametrize(
    "expr",
    [
        'errors.new("x")',
        "channel.new()",
        "require('funcs').new()",
        "require('funcs').async('app:t')",
        "require('funcs').new():with_context({})",
    ],
)
def test_runtime_objects_hide_their_shared_metatable(lua: Run, expr: str) -> None:
    # With `mt.__index = mt`, `obj.__index` would hand out the metatable every actor shares.
    body = f"local o = {expr}; return {{type(getmetatable(o)), o.__index == nil, o.__metatable == nil}}"
    assert lua(body, modules=["funcs"]) == ["string", True, True]


def test_runtime_methods_cannot_be_replaced_for_others(project: Project) -> None:
    project.function("a", """return { main = function()
        local e, ch = errors.new("x"), channel.new()
        for _, o in ipairs({e, ch}) do
          local idx = o.__index
          if type(idx) == "table" then idx.kind = nil; idx.receive = nil end
        end
        return "tried"
      end }""")
    project.function("b", """return { main = function()
        local ch = channel.new(1); ch:send("real")
        return {errors.new({message = "y", kind = errors.INVALID}):kind(), (ch:receive())}
      end }""")
    runtime = project.runtime()

    async def go() -> list[object]:
        return [await runtime.call("app:a"), await runtime.call("app:b")]

    assert asyncio.run(go()) == ["tried", ["Invalid", "real"]]
