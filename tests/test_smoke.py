from __future__ import annotations

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError


def test_function_returns_value(project: Project) -> None:
    assert run_lua(project, "return 1 + 2") == 3


def test_funcs_call_between_functions(project: Project) -> None:
    project.function("add", "return { main = function(a, b) return a + b end }")
    assert run_lua(project, 'local funcs = require("funcs")\nreturn funcs.call("app:add", 2, 3)', modules=["funcs"]) == 5


def test_lua_error_becomes_internal_error(project: Project) -> None:
    with pytest.raises(WippyError) as info:
        run_lua(project, 'error("boom")')
    assert info.value.kind == "Internal"
    assert "boom" in info.value.message


def test_bad_timeout_option_is_invalid(project: Project) -> None:
    project.function("add", "return { main = function(a, b) return a + b end }")
    result = run_lua(project, """
        local funcs = require("funcs")
        local value, err = funcs.new():with_options({timeout = -5}):call("app:add", 1, 2)
        return { value = value, kind = err:kind(), message = err:message() }
    """, modules=["funcs"])
    assert result == {"kind": "Invalid", "message": "call option timeout must be a positive number of milliseconds"}
