"""Behaviours taken from the upstream runtime's own app tests, written with our own Lua:
security actors and scopes, imports of function entries, userdata types, messages, table
extras, `json.validate` of nothing, `string` functions on errors."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import Project, Run


def host_project(project: Project) -> None:
    project.entries.append("  - {name: host, kind: process.host, lifecycle: {auto_start: true}}")


def run_async(project: Project, entry: str, *args: Any) -> Any:
    async def main() -> Any:
        async with project.runtime() as rt:
            return await rt.call(entry, *args, timeout=10)

    return asyncio.run(main())


# security ----------------------------------------------------------------------------------
def test_actor_and_scope_objects(lua: Run) -> None:
    body = """
    local security = require("security")
    local a = security.new_actor("user:1", {role = "admin"})
    local s = security.new_scope():with("p.read"):with("p.write"):without("p.read")
    return {a:id(), a:meta().role, type(a), #s:policies(), s:contains("p.write"), s:contains("p.read"),
            security.actor() == nil, security.scope() == nil, security.can("read", "doc")}
    """
    assert lua(body, modules=["security"]) == ["user:1", "admin", "userdata", 1, True, False, True, True, True]


def test_actor_and_scope_reach_called_functions_and_spawned_processes(project: Project) -> None:
    host_project(project)
    project.function("who", """
        local security = require("security")
        local function main()
          local a, s = security.actor(), security.scope()
          return {actor = a and a:id(), role = a and a:meta().role, policies = s and #s:policies()}
        end
        return {main = main}
    """, modules=["security"])
    project.function("proc", """
        local funcs = require("funcs")
        local function main() return funcs.call("app:who") end
        return {main = main}
    """, kind="process.lua", modules=["funcs"])
    project.function("t", """
        local security, funcs = require("security"), require("funcs")
        local function main()
          local a = security.new_actor("svc", {role = "ops"})
          local s = security.new_scope({"p.one", "p.two"})
          local direct = funcs.new():with_actor(a):with_scope(s):call("app:who")
          local spawned = process.with_actor(a):with_scope(s):exec("app:proc", "app:host")
          local plain = funcs.call("app:who")
          return {direct = direct, spawned = spawned, plain = plain, ctx = require("ctx").all()}
        end
        return {main = main}
    """, modules=["security", "funcs", "ctx"])
    out = run_async(project, "app:t")
    expected = {"actor": "svc", "role": "ops", "policies": 2}
    assert out["direct"] == expected and out["spawned"] == expected  # inherited through a process too
    assert out["plain"] == {} and out["ctx"] == {}  # nothing leaks to other calls or into ctx


# imports ---------------------------------------------------------------------------------
def test_a_function_entry_can_be_imported(project: Project) -> None:
    project.function("helpers", """
        local M = {}
        function M.double(x) return x * 2 end
        function M.main(x) return M.double(x) end
        return M
    """)
    project.function("t", """
        local helpers = require("helpers")
        return {main = function() return {helpers.double(21), helpers.main(2)} end}
    """, imports={"helpers": "app:helpers"})
    assert project.call("app:t") == [42, 4]


# values as upstream types them -------------------------------------------------------------
def test_runtime_objects_are_userdata(lua: Run) -> None:
    body = """
    local time, funcs = require("time"), require("funcs")
    return {type(time.now()), type(time.parse_duration("1s")), type(errors.new("x")), type(channel.new()),
            type(funcs.new()), type(process.with_options({})), type({}), type("s")}
    """
    assert lua(body, modules=["time", "funcs"]) == ["userdata"] * 6 + ["table", "string"]


def test_string_functions_read_errors_as_their_text(lua: Run) -> None:
    body = """
    local e = errors.new({kind = errors.NOT_FOUND, message = "process not found"})
    return {string.find(e, "not found") ~= nil, string.upper(e), string.len(e), ("x"):rep(2)}
    """
    assert lua(body) == [True, "PROCESS NOT FOUND", 17, "xx"]


def test_table_extras(lua: Run) -> None:
    body = """
    local t = table.create(8, 0)
    t[1], t[5] = "a", "b"
    local frozen = table.make_immutable({x = 1, 2, 3})
    local ok, err = pcall(function() frozen.y = 1 end)
    return {#t, table.maxn(t), table.getn({1, 2}), frozen.x, #frozen, table.is_immutable(frozen),
            table.is_immutable({}), ok, err:kind()}
    """
    assert lua(body) == [1, 5, 2, 1, 2, True, False, False, "PermissionDenied"]


def test_message_payload_fields_are_readable_after_methods(project: Project) -> None:
    host_project(project)
    project.function("w", """
        local function main(parent)
          local msg = process.inbox():receive()
          process.send(parent, "seen", {approved = msg.approved, topic = msg:topic(), from = msg:from() ~= ""})
        end
        return {main = main}
    """, kind="process.lua")
    project.function("t", """
        local function main()
          local w = process.spawn("app:w", "app:host", process.pid())
          process.send(w, "decision", {approved = true, topic = "shadowed by the method"})
          return process.inbox():receive():payload():data()
        end
        return {main = main}
    """)
    assert run_async(project, "app:t") == {"approved": True, "topic": "decision", "from": True}


def test_json_validate_needs_a_schema_and_data(lua: Run) -> None:
    body = """
    local json = require("json")
    local ok1, e1 = json.validate({type = "object"}, nil)
    local ok2, e2 = json.validate(nil, {})
    return {ok1, e1:kind(), e1:message(), ok2, e2:message(), json.validate({type = "object"}, {a = 1})}
    """
    assert lua(body, modules=["json"]) == [False, "Invalid", "json.validate: data is required", False,
                                           "json.validate: schema is required", True]
