"""The `errors` global and how errors cross function boundaries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Project, Run, run_lua
from wippy import WippyError
from wippy.errors import KINDS


def lua_error(lua: Run, body: str, modules: list[str] | None = None) -> WippyError:
    with pytest.raises(WippyError) as info:
        lua(body, modules=modules)
    return info.value


def fields(var: str = "e") -> str:
    return f"{{{var}:kind(), {var}:message(), {var}:retryable(), {var}:details()}}"


# errors.new ------------------------------------------------------------------------------------
def test_new_from_string(lua: Run) -> None:
    result = lua(f'local e = errors.new("went wrong"); return {{{fields()[1:-1]}, getmetatable(e)}}')
    assert result == {1: "", 2: "went wrong", 5: "wippy.error"}  # no kind is the empty kind; retryable, details: nil


def test_new_from_table(lua: Run) -> None:
    body = f"""
    local e = errors.new({{message = "user not found", kind = errors.NOT_FOUND, retryable = false,
                          details = {{user_id = 123, tags = {{"a", "b"}}}}}})
    return {fields()}
    """
    assert lua(body) == ["NotFound", "user not found", False, {"user_id": 123, "tags": ["a", "b"]}]


def test_new_table_defaults(lua: Run) -> None:
    assert lua(f'local e = errors.new({{message = "m"}}); return {fields()}') == ["", "m"]  # retryable, details: nil


def test_empty_details_are_nil(lua: Run) -> None:
    assert lua('return errors.new({message = "m", details = {}}):details() == nil') is True
    assert lua('return errors.new({message = "m", details = {a = {b = 1}}}):details().a.b') == 1


def test_any_kind_string_is_accepted(lua: Run) -> None:
    # upstream: an application may use its own kinds
    assert lua('return errors.new({message = "m", kind = "QuotaExceeded"}):kind()') == "QuotaExceeded"


@pytest.mark.parametrize(
    ("arg", "needle"),
    [
        ('{message = "m", kind = 5}', "kind must be a string"),
        ('{kind = "Invalid"}', "message field is required"),
        ("{message = 42}", "message"),
        ("42", "message"),
        ("nil", "message"),
    ],
)
def test_new_rejects_bad_input(lua: Run, arg: str, needle: str) -> None:
    err = lua_error(lua, f"return errors.new({arg})")
    assert err.kind == "Invalid"
    assert needle in err.message


def test_new_rejects_kind_message_form(lua: Run) -> None:
    # Upstream does not support errors.new(kind, message): the second argument is ignored
    # and the first becomes the message.
    assert lua('local e = errors.new("NotFound", "x"); return {e:kind(), e:message()}') == ["", "NotFound"]


def test_kind_constants(lua: Run) -> None:
    got = lua("local out = {}; for k, v in pairs(errors) do if type(v) == 'string' then out[k] = v end end; return out")
    assert got == {"NOT_FOUND": "NotFound", "ALREADY_EXISTS": "AlreadyExists", "INVALID": "Invalid",
                   "PERMISSION_DENIED": "PermissionDenied", "UNAVAILABLE": "Unavailable", "INTERNAL": "Internal",
                   "CANCELED": "Canceled", "CONFLICT": "Conflict", "TIMEOUT": "Timeout",
                   "RATE_LIMITED": "RateLimited", "UNKNOWN": ""}
    assert sorted(got.values()) == sorted(KINDS)


@pytest.mark.parametrize("name", ["NOT_FOUND", "ALREADY_EXISTS", "INVALID", "PERMISSION_DENIED", "UNAVAILABLE",
                                  "INTERNAL", "CANCELED", "CONFLICT", "TIMEOUT", "RATE_LIMITED", "UNKNOWN"])
def test_every_kind_can_be_created(lua: Run, name: str) -> None:
    assert lua(f'return errors.new({{kind = errors.{name}, message = "m"}}):kind() == errors.{name}') is True


# Methods ---------------------------------------------------------------------------------------
def test_tostring_and_stack(lua: Run) -> None:
    body = """
    local function make()
      local e = errors.new({kind = errors.CONFLICT, message = "clash"})
      return e
    end
    local e = make()
    return {tostring(e), e:stack()}
    """
    text, stack = lua(body)
    assert text == "clash"  # upstream: an error reads as its message
    lines = stack.splitlines()
    assert lines[0] == "stack traceback:"
    assert lines[1] == "\tt.lua:4: in make"  # errors.new was called on line 4 of t.lua
    assert lines[2].startswith("\tt.lua:7: in ")


def test_tail_call_frames_are_named_by_definition(lua: Run) -> None:
    # `return f()` is a Lua tail call: the caller's frame is gone, so the frame is named by
    # where its function was defined.
    body = """
    local function make() return errors.new("x") end
    return errors.call_stack(make()).frames[1]
    """
    assert lua(body) == {"source": "t.lua", "line": 4, "name": "function <t.lua:1>"}


def test_retryable_values(lua: Run) -> None:
    body = """
    local out = {}
    for i, r in ipairs({true, false}) do out[i] = errors.new({message = "m", retryable = r}):retryable() end
    out[3] = errors.new({message = "m"}):retryable() == nil
    return out
    """
    assert lua(body) == [True, False, True]


# errors.wrap --------------------------------------------------------------------------------------
def test_wrap_keeps_kind_retryable_details(lua: Run) -> None:
    body = f"""
    local base = errors.new({{message = "db down", kind = errors.UNAVAILABLE, retryable = true, details = {{host = "h"}}}})
    local e = errors.wrap(errors.wrap(base, "query users"), "load page")
    return {fields()}
    """
    assert lua(body) == ["Unavailable", "query users: db down", True, {"host": "h"}]


def test_wrap_keeps_the_message_and_shows_the_context(lua: Run) -> None:
    body = """
    local inner = errors.new({message = "inner error", kind = errors.INVALID})
    local outer = errors.wrap(inner, "outer context")
    return {outer:message(), tostring(outer), "x: " .. outer, outer .. "!", inner .. outer}
    """
    assert lua(body) == ["inner error", "outer context: inner error", "x: outer context: inner error",
                         "outer context: inner error!", "inner errorouter context: inner error"]


def test_wrap_nil_passes_through(lua: Run) -> None:
    assert lua('local e = errors.wrap(nil, "ctx"); return {e == nil, select("#", errors.wrap(nil, "x"))}') == [True, 1]


def test_wrap_plain_value(lua: Run) -> None:
    assert lua(f'local e = errors.wrap("boom", "ctx"); return {fields()}') == ["", "boom"]
    assert lua('return tostring(errors.wrap("boom", "ctx"))') == "ctx: boom"


def test_wrap_needs_message(lua: Run) -> None:
    err = lua_error(lua, 'return errors.wrap(errors.new("x"))')
    assert err.kind == "Invalid"
    assert "context must be a string" in err.message


def test_wrap_keeps_original_stack(lua: Run) -> None:
    body = """
    local function origin() local e = errors.new("x"); return e end
    local e = origin()
    local w = (function() return errors.wrap(e, "ctx") end)()
    return {w:stack() == e:stack(), errors.call_stack(w).frames[1].name}
    """
    assert lua(body) == [True, "origin"]


# errors.is ----------------------------------------------------------------------------------------
def test_is(lua: Run) -> None:
    body = """
    local e = errors.new({message = "m", kind = errors.TIMEOUT})
    local w = errors.wrap(errors.wrap(e, "a"), "b")
    local other = errors.new({message = "m", kind = errors.INVALID})
    return {
      errors.is(e, errors.TIMEOUT), errors.is(w, errors.TIMEOUT), errors.is(w, "Timeout"),
      errors.is(w, errors.INVALID), errors.is(w, e), errors.is(w, other),
      errors.is(nil, errors.TIMEOUT), errors.is("Timeout", errors.TIMEOUT),
    }
    """
    assert lua(body) == [True, True, True, False, True, False, False, False]


# errors.call_stack --------------------------------------------------------------------------------
def test_call_stack_frames(lua: Run) -> None:
    body = """
    local function inner()
      local e = errors.new("deep")
      return e
    end
    local function outer()
      local e = inner()
      return e
    end
    local stack = errors.call_stack(outer())
    return {stack.thread, stack.frames[1], stack.frames[2], #stack.frames >= 3}
    """
    thread, first, second, more = lua(body)
    assert thread == "main"
    assert first == {"source": "t.lua", "line": 4, "name": "inner"}
    assert second == {"source": "t.lua", "line": 8, "name": "outer"}
    assert more is True


def test_call_stack_of_non_error(lua: Run) -> None:
    assert lua('return {errors.call_stack("x") == nil, errors.call_stack(nil) == nil}') == [True, True]


def test_call_stack_skips_runtime_frames(lua: Run) -> None:
    sources = lua('local out = {}; for i, f in ipairs(errors.call_stack(errors.new("x")).frames) do out[i] = f.source end; return out')
    assert sources
    assert all(not s.startswith("wippy:") for s in sources)


def test_raised_runtime_error_has_user_frames(lua: Run) -> None:
    body = """
    local ok, e = pcall(require, 42)
    return {e:kind(), errors.call_stack(e).frames[1].line}
    """
    assert lua(body) == ["Invalid", 3]


# pcall keeps plain Lua semantics ---------------------------------------------------------------------
def test_pcall_catches_error_objects_and_strings(lua: Run) -> None:
    body = """
    local ok1, e1 = pcall(error, errors.new({message = "obj", kind = errors.CONFLICT}))
    local ok2, e2 = pcall(error, "plain", 0)
    local ok3, e3 = pcall(error, {code = 7})
    return {ok1, e1:kind(), ok2, e2, ok3, e3.code}
    """
    assert lua(body) == [False, "Conflict", False, "plain", False, 7]


# The function boundary ------------------------------------------------------------------------------
def test_lua_runtime_error_is_internal(lua: Run) -> None:
    err = lua_error(lua, "local t = nil\nreturn t.x")
    assert err.kind == "Internal"
    assert err.message.startswith("t.lua:3: attempt to index a nil value")
    assert err.retryable is False
    assert "t.lua:3" in (err.stack or "")


def test_error_object_raised_keeps_kind(lua: Run) -> None:
    err = lua_error(lua, 'error(errors.new({message = "slow", kind = errors.TIMEOUT, retryable = true, details = {ms = 5}}))')
    assert (err.kind, err.message, err.retryable, err.details) == ("Timeout", "slow", True, {"ms": 5})


def test_return_nil_err(lua: Run) -> None:
    err = lua_error(lua, 'return nil, errors.new({message = "gone", kind = errors.NOT_FOUND, details = {id = 1}})')
    assert (err.kind, err.message, err.details) == ("NotFound", "gone", {"id": 1})
    assert "t.lua" in (err.stack or "")


def test_return_nil_string(lua: Run) -> None:
    err = lua_error(lua, 'return nil, "just text"')
    assert (err.kind, err.message) == ("", "just text")


def test_return_nil_alone_is_a_result(lua: Run) -> None:
    assert lua("return nil") is None
    assert lua("return") is None


def test_a_second_result_that_is_an_error_or_a_string_is_an_error(lua: Run) -> None:
    # upstream: `value, err` with err an error object or a string fails, whatever value is
    assert lua_error(lua, 'return 1, errors.new("counts")').message == "counts"
    assert lua_error(lua, 'return false, "why"').message == "why"
    assert lua('return 1, 2') == 1


def test_errors_inside_result_data(lua: Run) -> None:
    got = lua('return {e = errors.new({message = "m", kind = errors.CANCELED})}')
    assert got == {"e": WippyError("Canceled", "m")}


CALLEES = {
    "fails": """return { main = function()
        return nil, errors.new({message = "bad input", kind = errors.INVALID, retryable = true, details = {field = "x"}})
      end }""",
    "throws": """return { main = function()
        error(errors.new({message = "locked", kind = errors.CONFLICT, retryable = false, details = {n = 1}}))
      end }""",
    "crashes": "return { main = function() local x = nil; return x + 1 end }",
    "says": 'return { main = function() return nil, "plain text" end }',
    "inspects": "return { main = function(e) return {e:kind(), e:message(), errors.is(e, errors.TIMEOUT)} end }",
}


def call_with_callees(project: Project, body: str) -> Any:
    for name, source in CALLEES.items():
        project.function(name, source)
    return run_lua(project, 'local funcs = require("funcs")\n' + body, modules=["funcs"])


@pytest.mark.parametrize(
    ("callee", "want"),
    [
        ("fails", ["Invalid", "bad input", True, {"field": "x"}]),
        ("throws", ["Conflict", "locked", False, {"n": 1}]),
    ],
)
def test_error_crosses_funcs_call(project: Project, callee: str, want: list[Any]) -> None:
    body = f"""
    local v, e = funcs.call("app:{callee}")
    return {{v == nil, getmetatable(e), e:kind(), e:message(), e:retryable(), e:details()}}
    """
    assert call_with_callees(project, body) == [True, "wippy.error", *want]


def test_callee_runtime_error_is_internal(project: Project) -> None:
    body = 'local v, e = funcs.call("app:crashes"); return {e:kind(), e:message(), e:retryable()}'
    kind, message, retryable = call_with_callees(project, body)
    assert kind == "Internal"
    assert message.startswith("crashes.lua:1: attempt to perform arithmetic on a nil value")
    assert retryable is False


def test_callee_string_error_is_unknown(project: Project) -> None:
    body = 'local v, e = funcs.call("app:says"); return {e:kind(), e:message()}'
    assert call_with_callees(project, body) == ["", "plain text"]


def test_callee_error_stack_names_callee(project: Project) -> None:
    body = 'local v, e = funcs.call("app:fails"); return {e:stack(), errors.call_stack(e).frames[1].source}'
    stack, source = call_with_callees(project, body)
    assert "fails.lua:2" in stack
    assert source == "fails.lua"


def test_wrapping_a_callee_error(project: Project) -> None:
    body = """
    local v, e = funcs.call("app:fails")
    local w = errors.wrap(e, "calling fails")
    return {w:kind(), tostring(w), w:retryable(), errors.is(w, errors.INVALID)}
    """
    assert call_with_callees(project, body) == ["Invalid", "calling fails: bad input", True, True]


def test_error_as_argument(project: Project) -> None:
    body = 'return funcs.call("app:inspects", errors.wrap(errors.new({message = "m", kind = errors.TIMEOUT}), "w"))'
    assert call_with_callees(project, body) == ["Timeout", "m", True]  # the context crosses too (tostring)


def test_callee_error_propagates_to_python(project: Project) -> None:
    body = 'local v, e = funcs.call("app:throws"); return nil, errors.wrap(e, "outer")'
    with pytest.raises(WippyError) as info:
        call_with_callees(project, body)
    err = info.value
    assert (err.kind, err.message, err.retryable, err.details) == ("Conflict", "locked", False, {"n": 1})
    assert err.context == "outer" and str(err) == "Conflict: outer: locked"


def test_unknown_function_is_not_found(lua: Run) -> None:
    got = lua('local v, e = require("funcs").call("app:missing"); return {v == nil, e:kind(), e:message()}', modules=["funcs"])
    assert got[:2] == [True, "NotFound"]
    assert "app:missing" in got[2]


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ('""', "non-empty"),
        ("nil", "non-empty"),
        ("42", "non-empty"),
        ("{}", "non-empty"),
        ('"noname"', "namespace"),
        ('":name"', "namespace"),
        ('"app:"', "name"),
    ],
)
def test_bad_target_is_invalid(lua: Run, target: str, needle: str) -> None:
    got = lua(f'local v, e = require("funcs").call({target}); return {{v == nil, e:kind(), e:message()}}', modules=["funcs"])
    assert got[:2] == [True, "Invalid"]
    assert needle in got[2]


def test_python_call_unknown_entry(project: Project) -> None:
    project.function("x", "return { main = function() end }")
    runtime = project.runtime()
    with pytest.raises(WippyError) as info:
        asyncio.run(runtime.call("app:nope"))
    assert info.value.kind == "NotFound"
