"""Values crossing between Python and Lua, and between actors (the Lua-side copier)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Project
from wippy import Runtime, WippyError
from wippy.errors import INVALID
from wippy.lua.convert import INT64_MAX, INT64_MIN
from wippy.lua.vm import LuaVM

# Lua helper: `same(a, b)` is nil when two Lua values are equal with their exact types
# (integer vs float, string bytes, table vs not), else a message naming the first difference.
SAME = """
local function same(a, b, path)
  path = path or "v"
  if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    if a ~= b then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return nil
  end
  for k, v in pairs(a) do
    local why = same(v, rawget(b, k), path .. "[" .. tostring(k) .. "]")
    if why then return why end
  end
  for k in pairs(b) do
    if rawget(a, k) == nil then return path .. ": extra key " .. tostring(k) end
  end
  return nil
end
"""


class Caller:
    """Calls entries of one runtime on one event loop (shared by many examples)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()

    def __call__(self, entry: str, *args: Any, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.runtime.call(entry, *args, **kwargs))

    def error(self, entry: str, *args: Any) -> WippyError:
        with pytest.raises(WippyError) as info:
            self(entry, *args)
        return info.value


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caller]:
    project = Project(tmp_path_factory.mktemp("convert"))
    project.function("echo", "return { main = function(...) return ... end }")
    project.function("types", """
        local function describe(v)
          if type(v) == "number" then return math.type(v) end
          if type(v) ~= "table" then return type(v) end
          local out = {}
          for k, x in pairs(v) do out[k] = describe(x) end
          return out
        end
        return { main = function(...)
          local out = {}
          for i = 1, select("#", ...) do out[i] = describe((select(i, ...))) end
          return out
        end }
        """)
    project.function("run", "return { main = function(src, ...) return load(src)(...) end }",
                     modules=["funcs", "process"])
    # Lua value (from source) -> context (Python) -> ctx.get (Lua) -> compared in Lua.
    project.function("ctx_roundtrip", SAME + """
        local funcs = require("funcs")
        return { main = function(src)
          local v = load("return " .. src)()
          local got, err = funcs.new():with_context({ v = v }):call("app:ctx_get", "v")
          if err then return "call failed: " .. tostring(err) end
          return same(v, got) or true
        end }
        """, modules=["funcs"])
    # Lua value (from source) -> result (Python) -> argument (Lua) -> compared in Lua.
    project.function("compare", SAME + """
        return { main = function(src, got) return same(load("return " .. src)(), got) or true end }
        """)
    project.function("make", "return { main = function(src) return load('return ' .. src)() end }")
    project.function("ctx_get", """
        local ctx = require("ctx")
        return { main = function(key) local v, err = ctx.get(key); if err then return nil, err end return v end }
        """, modules=["ctx"])
    caller = Caller(project.runtime())
    yield caller
    caller.loop.close()


def run(call: Caller, src: str, *args: Any) -> Any:
    """Run Lua chunk ``src`` (in the `run` entry, which may use funcs) with ``args``."""
    return call("app:run", src, *args)


# Python -> Lua -> Python ------------------------------------------------------------------
def expected(value: Any) -> Any:
    """What a Python value comes back as: valid UTF-8 bytes come back as str."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if isinstance(value, list):
        return [expected(v) for v in value]
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    return value


def assert_same(got: Any, want: Any, path: str = "value") -> None:
    """Equality that also compares exact types (bool/int/float, str/bytes, list/dict)."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} vs {type(want).__name__}"
    if isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert set(got) == set(want), path
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), path
    else:
        assert got == want, path
        if isinstance(want, float):
            assert math.copysign(1.0, got) == math.copysign(1.0, want), f"{path}: sign of zero"


scalars = st.one_of(
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MAX, 0, -1]),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(),
    st.binary(),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_like, max_size=3))
def test_python_lua_python_roundtrip(call: Caller, args: list[Any]) -> None:
    got = call("app:run", "return {...}", *args)
    want = expected(args)
    if not want:  # `{...}` of no arguments is an empty (non-array) table
        want = {}
    assert_same(got, want)


@settings(max_examples=60, deadline=None)
@given(json_like)
def test_echo_roundtrip(call: Caller, value: Any) -> None:
    assert_same(call("app:echo", value), expected(value))


def test_python_types_arrive_as_lua_types(call: Caller) -> None:
    got = call("app:types", 1, 1.0, True, "é", b"\xff", [], {}, [1.5], {"a": 2}, INT64_MIN, 2.0**80)
    assert got == ["integer", "float", "boolean", "string", "string", {}, {}, ["float"],
                   {"a": "integer"}, "integer", "float"]


def test_strings_arrive_as_utf8_bytes(call: Caller) -> None:
    assert run(call, "local s, b = ...; return {#s, #b, b:byte(1), s}", "héllo✓", b"\x00\xff") == [9, 2, 0, "héllo✓"]


def test_empty_containers(call: Caller) -> None:
    assert call("app:echo", []) == []
    assert call("app:echo", {}) == {}
    assert call("app:echo", [[], {}]) == [[], {}]
    # An empty list arrives as a table and keeps its array-ness through Lua copies.
    assert run(call, "local t = ...; return {type(t), #t, next(t) == nil}", []) == ["table", 0, True]
    assert run(call, "local t = ...; t[1] = 'x'; return t", []) == ["x"]


def test_tuples_become_lists(call: Caller) -> None:
    assert call("app:echo", (1, (2, 3))) == [1, [2, 3]]


def test_lua_tables_to_python_shapes(call: Caller) -> None:
    assert run(call, "return {1, 2, 3}") == [1, 2, 3]
    assert run(call, "return {}") == {}
    assert run(call, "return {1, nil, 3}") == {1: 1, 3: 3}
    assert run(call, "return {[2] = 'b', [3] = 'c'}") == {2: "b", 3: "c"}
    assert run(call, "return {1, 2, x = 'y'}") == {1: 1, 2: 2, "x": "y"}
    assert run(call, "return {[1.5] = 'f', [-1] = 'n', [0] = 'z'}") == {1.5: "f", -1: "n", 0: "z"}
    assert run(call, "return {[1] = 'a', [2.0] = 'b'}") == ["a", "b"]  # 2.0 normalises to 2
    assert run(call, 'return "\\xff\\xfe"') == b"\xff\xfe"
    assert run(call, 'return {["\\xff"] = 1}') == {b"\xff": 1}
    assert run(call, "return math.huge, -math.huge") == math.inf
    assert math.isnan(run(call, "return 0/0"))
    assert run(call, "return math.mininteger") == INT64_MIN


# Lua -> Python -> Lua ------------------------------------------------------------------------
def lua_number(value: int | float) -> str:
    if isinstance(value, int):
        return "math.mininteger" if value == INT64_MIN else str(value)
    if math.isinf(value):
        return "math.huge" if value > 0 else "-math.huge"
    text = repr(value)
    return text if any(c in text for c in ".en") else text + ".0"


def lua_string(value: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in value) + '"'


def lua_literal(node: Any) -> str:
    kind, value = node
    if kind == "int" or kind == "float":
        return lua_number(value)
    if kind == "str":
        return lua_string(value)
    if kind == "bool":
        return "true" if value else "false"
    return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value) + "}"


lua_int = st.integers(min_value=INT64_MIN, max_value=INT64_MAX).map(lambda v: ("int", v))
lua_float = st.floats(allow_nan=False).map(lambda v: ("float", v))
lua_bool = st.booleans().map(lambda v: ("bool", v))
lua_str = st.one_of(st.binary(max_size=8), st.text(max_size=8).map(str.encode)).map(lambda v: ("str", v))
lua_key = st.one_of(
    st.integers(min_value=-3, max_value=6).map(lambda v: ("int", v)),
    lua_str,
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()).map(lambda v: ("float", v)),
    lua_bool,
)


def python_safe_keys(kvs: list[Any]) -> bool:
    """No pair of keys that Python would merge (true and 1, false and 0)."""
    bools = {int(k[1]) for k, _ in kvs if k[0] == "bool"}
    ints = {k[1] for k, _ in kvs if k[0] == "int"}
    return not bools & ints


def lua_table(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    array = st.lists(inner, max_size=5).map(lambda vs: ("table", [(("int", i), v) for i, v in enumerate(vs, 1)]))
    mixed = (st.lists(st.tuples(lua_key, inner), max_size=5).map(lambda kvs: list(dict(kvs).items()))
             .filter(python_safe_keys).map(lambda kvs: ("table", kvs)))
    return st.one_of(array, mixed)


lua_values = st.recursive(st.one_of(lua_int, lua_float, lua_str, lua_bool), lua_table, max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(lua_values)
def test_lua_python_lua_through_context(call: Caller, node: Any) -> None:
    assert call("app:ctx_roundtrip", lua_literal(node)) is True


@settings(max_examples=60, deadline=None)
@given(lua_values)
def test_lua_python_lua_through_result_and_argument(call: Caller, node: Any) -> None:
    src = lua_literal(node)
    value = call("app:make", src)
    assert call("app:compare", src, value) is True


def test_lua_types_survive_python(call: Caller) -> None:
    src = '{1, 2.0, "\\xff\\x00", {}, {n = {}}, math.maxinteger, -0.0}'
    assert call("app:ctx_roundtrip", src) is True
    got = run(call, "local t = ...; return {math.type(t[1]), math.type(t[2]), #t[3], type(t[4])}",
              call("app:make", src))
    assert got == ["integer", "float", 2, "table"]


def test_boolean_keys(call: Caller) -> None:
    assert run(call, "return {[true] = 'y', [false] = 'n', [2] = 'two'}") == {True: "y", False: "n", 2: "two"}
    assert call("app:ctx_roundtrip", "{[true] = 1, [false] = {}}") is True


@pytest.mark.parametrize("src", ["{[1] = 'int', [true] = 'bool'}", "{x = {[0] = 0, [false] = 1}}"])
def test_boolean_and_equal_integer_keys_are_invalid(call: Caller, src: str) -> None:
    # Python cannot hold both 1 and True as dict keys; the converter must not drop one silently.
    err = call.error("app:make", src)
    assert err.kind == INVALID
    assert err.message.startswith("result")
    assert "boolean key" in err.message


# What cannot cross -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "path"),
    [
        (2**63, "argument #1"),
        (-(2**63) - 1, "argument #1"),
        ({"a": {"b": 2**64}}, "argument #1.a.b"),
        ([1, [2, 10**30]], "argument #1[2][2]"),
    ],
)
def test_python_ints_beyond_int64_are_invalid(call: Caller, value: Any, path: str) -> None:
    err = call.error("app:echo", value)
    assert err.kind == INVALID
    assert err.message.startswith(path + ":")
    assert "64 bits" in err.message


@pytest.mark.parametrize(
    ("value", "path", "what"),
    [
        (object(), "argument #1", "object"),
        ({"a": {"f": print}}, "argument #1.a.f", "builtin_function_or_method"),
        ({"s": {1, 2}}, "argument #1.s", "set"),
        ({(1, 2): 3}, "argument #1", "key"),
        ({"a": ["ok", "\ud800"]}, "argument #1.a[2]", "not valid Unicode"),
    ],
)
def test_python_non_data_is_invalid(call: Caller, value: Any, path: str, what: str) -> None:
    err = call.error("app:echo", value)
    assert err.kind == INVALID
    assert err.message.startswith(path + ":")
    assert what in err.message


def test_python_cycle_is_invalid(call: Caller) -> None:
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    err = call.error("app:echo", {"x": cyclic})
    assert err.kind == INVALID
    assert "cyclic" in err.message
    assert "argument #1.x" in err.message


def test_second_argument_path(call: Caller) -> None:
    err = call.error("app:echo", 1, {"k": object()})
    assert err.message.startswith("argument #2.k:")


@pytest.mark.parametrize(
    ("expr", "what", "path"),
    [
        ("function() end", "a function", "result #1"),
        ("{a = {b = function() end}}", "a function", "result #1.a.b"),
        ("{1, {2, coroutine.create(print)}}", "a coroutine", "result #1[2][2]"),
        ("{ch = channel.new()}", "a channel", "result #1.ch"),
        ("{h = function() return channel.new() end}", "a function", "result #1.h"),
        ("(function() local t = {}; t.self = t; return {x = t} end)()", "cyclic table", "result #1.x.self"),
        ("{[{}] = 1}", "table key of type table", "result #1"),
    ],
)
def test_lua_results_that_cannot_cross(call: Caller, expr: str, what: str, path: str) -> None:
    err = call.error("app:run", f"return {expr}")
    assert err.kind == INVALID
    assert err.message.startswith(what)
    assert f" at {path} " in err.message


def test_second_result_is_checked_too(call: Caller) -> None:
    err = call.error("app:run", "return 1, {f = print}")
    assert err.kind == INVALID
    assert "result #2.f" in err.message


@pytest.mark.parametrize(
    ("args", "what", "path"),
    [
        ("print", "a function", "argument #1"),
        ("1, {a = {b = print}}", "a function", "argument #2.a.b"),
        ("{co = coroutine.create(print)}", "a coroutine", "argument #1.co"),
        ("channel.new()", "a channel", "argument #1"),
        ("(function() local t = {}; t[1] = t; return t end)()", "cyclic table", "argument #1[1]"),
    ],
)
def test_lua_arguments_that_cannot_cross(call: Caller, args: str, what: str, path: str) -> None:
    src = f'local funcs = require("funcs"); return funcs.call("app:echo", {args})'
    err = call.error("app:run", src)
    assert err.kind == INVALID
    assert err.message.startswith(what)
    assert f" at {path} " in err.message


def test_lua_context_that_cannot_cross(call: Caller) -> None:
    src = 'local funcs = require("funcs"); return funcs.new():with_context({f = print})'
    err = call.error("app:run", src)
    assert err.kind == INVALID
    assert " at context.f " in err.message


@pytest.mark.parametrize(
    ("payload", "what", "path"),
    [
        ("{a = {f = print}}", "a function", "payload.a.f"),
        ("coroutine.create(print)", "a coroutine", "payload"),
        ("1, {ch = channel.new()}", "a channel", "payload[2].ch"),
        ("(function() local t = {}; t.t = t; return t end)()", "cyclic table", "payload.t"),
    ],
)
def test_lua_messages_that_cannot_cross(call: Caller, payload: str, what: str, path: str) -> None:
    src = f'local ok, e = process.send("someone", "topic", {payload}); return {{ok == nil, e:kind(), e:message()}}'
    none, kind, message = run(call, src)
    assert (none, kind) == (True, INVALID)
    assert message.startswith(what)
    assert f" at {path} " in message


def test_shared_subtable_is_not_a_cycle(call: Caller) -> None:
    assert run(call, "local s = {1}; return {a = s, b = s}") == {"a": [1], "b": [1]}


def test_lua_copy_is_deep(call: Caller) -> None:
    # The callee gets a copy: changing it does not change the caller's table.
    src = """
    local funcs = require("funcs")
    local t = {n = 1, inner = {m = 1}}
    funcs.call("app:run", "local t = ...; t.n = 2; t.inner.m = 2", t)
    return {t.n, t.inner.m}
    """
    assert run(call, src) == [1, 1]


# The converter on its own -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def vm() -> LuaVM:
    return LuaVM(output=lambda line: None)


def lua_eval(vm: LuaVM, src: str) -> Any:
    return vm.load_chunk("local errors = ...; return " + src, "=test")(vm.rt.errors)


def test_to_python_rejects_non_data(vm: LuaVM) -> None:
    for src, what in [("print", "function"), ("coroutine.create(print)", "coroutine")]:
        with pytest.raises(WippyError) as info:
            vm.to_python(lua_eval(vm, src), "message")
        assert info.value.kind == INVALID
        assert info.value.message.startswith("message: ")
        assert what in info.value.message


def test_to_python_nested_path(vm: LuaVM) -> None:
    with pytest.raises(WippyError) as info:
        vm.to_python(lua_eval(vm, "{a = {b = {1, print}}}"), "message")
    assert info.value.message.startswith("message.a.b[2]:")


def test_to_python_cycle_is_invalid(vm: LuaVM) -> None:
    with pytest.raises(WippyError) as info:
        vm.to_python(lua_eval(vm, "(function() local t = {}; t.t = t; return t end)()"))
    assert info.value.kind == INVALID
    assert "cyclic" in info.value.message


def test_to_python_deep_but_finite(vm: LuaVM) -> None:
    value = vm.to_python(lua_eval(vm, "(function() local t = 1; for i = 1, 150 do t = {t} end; return t end)()"))
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert (depth, value) == (150, 1)


def test_error_objects_convert_both_ways(vm: LuaVM) -> None:
    err = vm.to_python(lua_eval(vm, "errors.new({kind = 'Conflict', message = 'm', retryable = true, details = {a = {1}}})"))
    assert isinstance(err, WippyError)
    assert (err.kind, err.message, err.retryable, err.details) == ("Conflict", "m", True, {"a": [1]})
    back = vm.to_lua(WippyError("Timeout", "slow", retryable=False, details={"ms": 5}))
    assert vm.to_python(back) == WippyError("Timeout", "slow", retryable=False, details={"ms": 5})
    assert back.kind(back) == b"Timeout"


def test_empty_array_marker_is_protected(call: Caller) -> None:
    # Shared by every empty array in every actor: user code must not be able to change it.
    src = """
    local t = ...
    local ok, err = pcall(function() getmetatable(t).__index = function() return "evil" end end)
    return {getmetatable(t), ok, t[1] == nil}
    """
    assert run(call, src, []) == ["wippy.array", False, True]
