"""Module tables are shared by every instance: user code gets read-only views."""

from __future__ import annotations

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError


@pytest.mark.parametrize("target", ["funcs.call", "process.send", "process.registry.lookup", "errors.new", "channel.new"])
def test_writing_a_module_field_is_refused(project: Project, target: str) -> None:
    with pytest.raises(WippyError) as info:
        run_lua(project, f'local funcs = require("funcs")\n{target} = function() end', modules=["funcs"])
    assert info.value.kind == "PermissionDenied"
    assert "read-only" in info.value.message


def test_module_views_still_iterate_and_read(project: Project) -> None:
    result = run_lua(project, """
        local funcs = require("funcs")
        local names = {}
        for k in pairs(funcs) do names[#names + 1] = k end
        table.sort(names)
        return { names = names, kind = errors.NOT_FOUND, required = require("errors").INVALID }
    """, modules=["funcs"])
    assert {"call", "async", "new"} <= set(result["names"])
    assert result["kind"] == "NotFound" and result["required"] == "Invalid"
