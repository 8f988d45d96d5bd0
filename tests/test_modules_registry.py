"""The registry module: get, find filters, snapshots, versions, history, changesets, deltas."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError
from wippy.actors.commands.registry import glob

DATA_ENTRIES = """
  - name: alpha
    kind: registry.entry
    meta: {type: agent, tags: [fast, small], title: "Alpha One", order: 1}
    prompt: be brief
    limits: {tokens: 10}
  - name: beta
    kind: registry.entry
    meta: {type: agent, tags: [slow], title: "Beta Two", order: 2}
  - name: gamma.tool
    kind: registry.entry
    meta: {type: tool, title: "Gamma"}
"""


def reg(project: Project, body: str, *args: Any) -> Any:
    project.entries.append(DATA_ENTRIES.strip("\n"))
    return run_lua(project, 'local registry = require("registry")\n' + body, *args, modules=["registry"])


def ids(project: Project, filter_src: str) -> list[str]:
    return reg(project, f"""
        local out = {{}}
        for _, e in ipairs(registry.find({filter_src})) do out[#out + 1] = e.id end
        table.sort(out)
        return out
    """) or []


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [("function.lua", "function.lua", True), ("function.lua", "*.lua", True), ("function.lua", "function.*", True),
     ("function.lua", "f*a", True), ("fa", "fa*a", False), ("function.lua", "*.yaml", False),
     ("function.lua", "x*", False)],
)
def test_globs(value: str, pattern: str, expected: bool) -> None:
    assert glob(value, pattern) is expected


@pytest.mark.parametrize(
    ("text", "ns", "name"),
    [("app:x", "app", "x"), ("justname", "", "justname"), ("app:path/to/f", "app", "path/to/f"),
     ("ns:name:with:colons", "ns", "name:with:colons"), ("", "", "")],
)
def test_parse_id(project: Project, text: str, ns: str, name: str) -> None:
    assert reg(project, f"local id = registry.parse_id({text!r})\nreturn {{id.ns, id.name}}") == [ns, name]


def test_get_returns_id_kind_meta_and_data(project: Project) -> None:
    got = reg(project, "return registry.get('app:alpha')")
    assert got == {"id": "app:alpha", "kind": "registry.entry",
                   "meta": {"type": "agent", "tags": ["fast", "small"], "title": "Alpha One", "order": 1},
                   "data": {"prompt": "be brief", "limits": {"tokens": 10}}}


def test_get_of_a_lua_entry_shows_its_fields(project: Project) -> None:
    got = reg(project, "return registry.get('app:t')")
    assert got["kind"] == "function.lua" and got["data"]["method"] == "main" and got["data"]["modules"] == ["registry"]


def test_entries_are_copies(project: Project) -> None:
    assert reg(project, """
        local e = registry.get("app:alpha")
        e.meta.type = "changed"
        return registry.get("app:alpha").meta.type
    """) == "agent"


def test_get_missing_is_not_found(project: Project) -> None:
    got = reg(project, """
        local e, err = registry.get("nope:missing")
        return {e = e, kind = err:kind(), retryable = err:retryable(), msg = tostring(err), cat = "E: " .. err}
    """)
    assert got == {"kind": "NotFound", "retryable": False, "msg": "entry not found: nope:missing",
                   "cat": "E: entry not found: nope:missing"}


def test_get_needs_a_string(project: Project) -> None:
    with pytest.raises(WippyError, match="id must be a string"):
        reg(project, "return registry.get({})")


def test_find_with_no_filter_or_empty_filter_returns_everything(project: Project) -> None:
    assert reg(project, "return {#registry.find(), #registry.find({})}") == [4, 4]


@pytest.mark.parametrize(
    ("filter_src", "expected"),
    [
        ('{[".kind"] = "registry.entry"}', ["app:alpha", "app:beta", "app:gamma.tool"]),
        ('{[".kind"] = "*.lua"}', ["app:t"]),
        ('{[".name"] = "*.tool"}', ["app:gamma.tool"]),
        ('{[".name"] = "a*a"}', ["app:alpha"]),
        ('{[".ns"] = "app"}', ["app:alpha", "app:beta", "app:gamma.tool", "app:t"]),
        ('{[".ns"] = "other"}', []),
        ('{[".id"] = "app:b*"}', ["app:beta"]),
        ('{["meta.type"] = "agent"}', ["app:alpha", "app:beta"]),
        ('{["meta.type"] = "agent", [".name"] = "b*"}', ["app:beta"]),
        ('{["meta.order"] = 2}', ["app:beta"]),
        ('{["meta.tags"] = {"fast"}}', ["app:alpha"]),
        ('{["meta.tags"] = {"fast", "small"}}', ["app:alpha"]),
        ('{["meta.tags"] = {"fast", "slow"}}', []),
        ('{["meta.missing"] = "x"}', []),
        ('{["~meta.title"] = "^[AB]\\\\w+ T"}', ["app:beta"]),
        ('{["~meta.title"] = "One$"}', ["app:alpha"]),
        ('{["*meta.title"] = "mm"}', ["app:gamma.tool"]),
        ('{["*meta.tags"] = "lo"}', ["app:beta"]),
        ('{["^meta.title"] = "Al"}', ["app:alpha"]),
        ('{["$meta.title"] = "Two"}', ["app:beta"]),
        ('{["^meta.order"] = "1"}', []),  # string operators need a string meta value
    ],
)
def test_find_filters(project: Project, filter_src: str, expected: list[str]) -> None:
    assert ids(project, filter_src) == expected


def test_keys_without_meta_prefix_are_ignored_with_a_warning(project: Project,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="wippy.registry"):
        assert len(ids(project, '{kind = "nothing.like.this", type = "zzz"}')) == 4
    assert "meta.type" in caplog.text


def test_a_bad_regular_expression_is_ignored(project: Project) -> None:
    assert len(ids(project, '{["~meta.title"] = "("}')) == 4


def test_find_needs_a_table(project: Project) -> None:
    with pytest.raises(WippyError, match="filter must be a table"):
        reg(project, 'return registry.find("x")')


def test_snapshot(project: Project) -> None:
    got = reg(project, """
        local snap, err = registry.snapshot()
        local missing, merr = snap:get("app:none")
        return {
          err = err, str = tostring(snap), type = type(snap),
          entries = #snap:entries(), got = snap:get("app:beta").id, missing = missing, mkind = merr:kind(),
          ns = #snap:namespace("app"), other_ns = #snap:namespace("nope"),
          found = #snap:find({["meta.type"] = "tool"}), version = snap:version():id(),
          ops = #snap:changes():ops(),
        }
    """)
    assert got == {"str": "registry.Snapshot{version=v1}", "type": "userdata", "entries": 4, "got": "app:beta",
                   "mkind": "NotFound", "ns": 4, "other_ns": 0, "found": 1, "version": 1, "ops": 0}


def test_versions_and_history(project: Project) -> None:
    got = reg(project, """
        local v = registry.current_version()
        local vs = registry.versions()
        local hist = registry.history()
        local hv = hist:versions()
        local got1 = hist:get_version(1)
        local neg, nerr = hist:get_version(-1)
        local far, ferr = hist:get_version(99)
        local zero, zerr = hist:get_version(0)
        return {
          id = v:id(), str = v:string(), ts = tostring(v), prev = v:previous(), nxt = v:next(),
          n = #vs, first = vs[1]:id(), same = vs[1] == v, hn = #hv, hstr = tostring(hist),
          got1 = got1:id(), nerr = nerr:kind(), ferr = ferr:kind(), zerr = zerr:kind(),
          snap = hist:snapshot_at(v):version():id(), snap_by_id = hist:snapshot_at(1):version():id(),
        }
    """)
    assert got == {"id": 1, "str": "v1", "ts": "registry.Version{v1}", "n": 1, "first": 1, "same": True,
                   "hn": 1, "hstr": "registry.History{}", "got1": 1, "nerr": "Invalid", "ferr": "NotFound",
                   "zerr": "NotFound", "snap": 1, "snap_by_id": 1}


@pytest.mark.parametrize(("arg", "kind"), [("0", "Invalid"), ("-1", "Invalid"), ("999999", "NotFound"),
                                           ('"x"', "Invalid"), ("1.5", "Invalid")])
def test_snapshot_at_errors(project: Project, arg: str, kind: str) -> None:
    got = reg(project, f"local s, err = registry.snapshot_at({arg})\nreturn {{s = s, kind = err:kind()}}")
    assert got == {"kind": kind}


def test_snapshot_at_the_current_version(project: Project) -> None:
    assert reg(project, "return registry.snapshot_at(1):version():id()") == 1


def test_apply_version(project: Project) -> None:
    got = reg(project, """
        local ok, err = registry.apply_version(registry.current_version())
        local bad, berr = registry.apply_version("v1")
        return {ok = ok, err = err, bad = bad, berr = berr:kind()}
    """)
    assert got == {"ok": True, "bad": False, "berr": "Invalid"}


def test_changesets_build_operations_in_order(project: Project) -> None:
    got = reg(project, """
        local changes = registry.snapshot():changes()
        local empty, eerr = changes:apply()
        local same = changes:create({id = "x:one", kind = "registry.entry", meta = {a = 1}, data = {v = 1}})
          :update({id = {ns = "x", name = "two"}, kind = "registry.entry"})
          :delete("x:three")
          :delete({ns = "x", name = "four"})
        return {same = rawequal(same, changes), eerr = eerr:kind(), emsg = eerr:message(), ops = changes:ops(),
                str = tostring(changes)}
    """)
    assert got["same"] is True and got["eerr"] == "Invalid" and got["emsg"] == "no changes to apply"
    assert got["str"] == "registry.Changes{ops=4}"
    assert got["ops"] == [
        {"kind": "entry.create", "entry": {"id": "x:one", "kind": "registry.entry", "meta": {"a": 1}, "data": {"v": 1}}},
        {"kind": "entry.update", "entry": {"id": "x:two", "kind": "registry.entry", "meta": {}}},
        {"kind": "entry.delete", "entry": {"id": "x:three"}},
        {"kind": "entry.delete", "entry": {"id": "x:four"}},
    ]


MUTATE = """
local funcs = require("funcs")
local function apply(fn)
  local changes = registry.snapshot():changes()
  fn(changes)
  return changes:apply()
end
local function fn_entry(id, body, extra)
  local e = {id = id, kind = "function.lua", meta = {note = "dyn"},
             data = {source = "return { main = function(...) " .. body .. " end }", method = "main"}}
  for k, v in pairs(extra or {}) do e.data[k] = v end
  return e
end
"""


def mut(project: Project, body: str) -> Any:
    project.entries.append(DATA_ENTRIES.strip("\n"))
    return run_lua(project, 'local registry = require("registry")\n' + MUTATE + body,
                   modules=["registry", "funcs", "time"])


def test_create_update_delete_and_move_between_versions(project: Project) -> None:
    got = mut(project, """
        local v1 = registry.current_version()
        local v2 = apply(function(c) c:create(fn_entry("dyn:f", "return 'one'")) end)
        local r2 = funcs.call("dyn:f")
        local v3 = apply(function(c) c:update(fn_entry("dyn:f", "return 'two'")) end)
        local r3 = funcs.call("dyn:f")
        local v4 = apply(function(c) c:delete("dyn:f") end)
        local _, gone = funcs.call("dyn:f")
        local back = registry.apply_version(v2)
        local r_back = funcs.call("dyn:f")
        local cur_back = registry.current_version():id()
        local forward = registry.apply_version(v4)
        local _, gone_again = funcs.call("dyn:f")
        local v5 = apply(function(c) c:create(fn_entry("dyn:f", "return 'five'")) end)
        local vs = {}
        for _, v in ipairs(registry.versions()) do vs[#vs + 1] = v:id() end
        return {
          ids = {v1:id(), v2:id(), v3:id(), v4:id(), v5:id()}, r2 = r2, r3 = r3, gone = gone:kind(),
          back = back, r_back = r_back, cur_back = cur_back, forward = forward, gone_again = gone_again:kind(),
          r5 = funcs.call("dyn:f"), vs = vs, prev = v3:previous():id(), nxt = v3:next():id(),
          old = registry.snapshot_at(2):get("dyn:f").data.source, meta = registry.get("dyn:f").meta.note,
          v1_has = (registry.snapshot_at(1):get("dyn:f")) ~= nil,
        }
    """)
    assert got == {"ids": [1, 2, 3, 4, 5], "r2": "one", "r3": "two", "gone": "NotFound", "back": True,
                   "r_back": "one", "cur_back": 2, "forward": True, "gone_again": "NotFound", "r5": "five",
                   "vs": [1, 2, 3, 4, 5], "prev": 2, "nxt": 4,
                   "old": "return { main = function(...) return 'one' end }", "meta": "dyn", "v1_has": False}


def test_libraries_and_imports_follow_the_version(project: Project) -> None:
    got = mut(project, """
        local function lib(v)
          return {id = "dyn:lib", kind = "library.lua", data = {source = "return { v = function() return '" .. v .. "' end }"}}
        end
        apply(function(c)
          c:create(lib("a"))
          c:create(fn_entry("dyn:user", "return require('l').v()", {imports = {l = "dyn:lib"}}))
        end)
        local a = funcs.call("dyn:user")
        local v = apply(function(c) c:update(lib("b")) end)
        return {a, funcs.call("dyn:user")}
    """)
    assert got == ["a", "b"]


def test_a_running_call_keeps_its_code(project: Project) -> None:
    project.entries.append(DATA_ENTRIES.strip("\n"))
    got = run_lua(project, 'local registry = require("registry")\n' + MUTATE + """
        local events = require("events")
        local started = events.subscribe("gen.started")
        local slow = "local events = require('events') "
          .. "local go = events.subscribe('gen.go') events.send('gen.started', 'k', '/s') "
          .. "go:channel():receive() return 'old'"
        apply(function(c) c:create(fn_entry("dyn:slow", slow, {modules = {"events"}})) end)
        local future = funcs.async("dyn:slow")
        started:channel():receive()  -- the old code is running
        apply(function(c) c:update(fn_entry("dyn:slow", "return 'new'")) end)
        events.send("gen.go", "k", "/go")
        local payload = future:response():receive()
        return {payload:data(), funcs.call("dyn:slow")}
    """, modules=["registry", "funcs", "events"])
    assert got == ["old", "new"]


def test_typed_lua_and_file_sources(project: Project) -> None:
    (project.root / "dyn.lua").write_text("return { main = function() return 'from file' end }")
    got = mut(project, """
        apply(function(c)
          c:create({id = "dyn:typed", kind = "function.lua",
                    data = {method = "main", source = "local function main(x: number?): string return 'typed' end\\n"
                                                   .. "return { main = main }"}})
          c:create({id = "dyn:file", kind = "function.lua", data = {method = "main", source = "file://dyn.lua"}})
        end)
        return {funcs.call("dyn:typed"), funcs.call("dyn:file")}
    """)
    assert got == ["typed", "from file"]


@pytest.mark.parametrize(("ops", "kind", "message"), [
    ('c:create(fn_entry("app:alpha", "return 1"))', "AlreadyExists", "entry app:alpha already exists"),
    ('c:update(fn_entry("dyn:none", "return 1"))', "NotFound", "cannot update dyn:none"),
    ('c:delete("dyn:none")', "NotFound", "cannot delete dyn:none"),
    ('c:create({id = "dyn:x", kind = "no.such.kind"})', "Invalid", "unknown kind 'no.such.kind'"),
    ('c:create({id = "dyn:x", kind = "function.lua", data = {method = "main"}})', "Invalid", "needs data.source"),
    ('c:create(fn_entry("dyn:ok", "return 1")); c:create(fn_entry("dyn:bad", "return ("))', "Invalid",
     "dyn:bad: Lua syntax error"),
    ('c:create({id = "noname", kind = "registry.entry"})', "Invalid", "must be namespace:name"),
    ('c:create({id = "dyn:f", kind = "function.lua", data = {source = "file://missing.lua", method = "main"}})',
     "Invalid", "cannot read"),
])
def test_a_failed_apply_changes_nothing(project: Project, ops: str, kind: str, message: str) -> None:
    got = mut(project, f"""
        local v, err = apply(function(c) {ops} end)
        return {{v = v, kind = err:kind(), msg = err:message(), version = registry.current_version():id(),
                 ok_exists = registry.get("dyn:ok") ~= nil, count = #registry.find()}}
    """)
    assert got["kind"] == kind and message in got["msg"], got
    assert {k: got[k] for k in ("version", "ok_exists", "count")} == {"version": 1, "ok_exists": False, "count": 4}


def test_apply_version_errors(project: Project) -> None:
    got = mut(project, """
        local ok, err = registry.apply_version({})
        return {ok = ok, kind = err:kind()}
    """)
    assert got == {"ok": False, "kind": "Invalid"}


@pytest.mark.parametrize(("call", "message"), [
    ('c:create("x")', "entry must be a table"),
    ('c:create({id = "a:b"})', "entry kind is required"),
    ('c:create({kind = "k"})', "entry id must be"),
    ('c:update({id = "a:b", kind = "k", meta = 5})', "meta must be a table"),
    ('c:delete(5)', "entry id must be"),
    ('c.ops({})', "must be called on a changeset"),
])
def test_bad_changes_raise(project: Project, call: str, message: str) -> None:
    with pytest.raises(WippyError, match=message):
        reg(project, f"local c = registry.snapshot():changes()\nreturn {call}")


def test_build_delta(project: Project) -> None:
    got = reg(project, """
        local from = {{id = "a:keep", kind = "k", meta = {}, data = {v = 1}},
                      {id = "a:change", kind = "k", meta = {}, data = {v = 1}},
                      {id = "a:drop", kind = "k"}}
        local to = {{id = "a:keep", kind = "k", meta = {}, data = {v = 1}},
                    {id = "a:change", kind = "k", meta = {}, data = {v = 2}},
                    {id = {ns = "a", name = "new"}, kind = "k"}}
        local ops = registry.build_delta(from, to)
        local out = {}
        for i, op in ipairs(ops) do out[i] = op.kind .. " " .. (type(op.entry.id) == "table" and op.entry.id.name or op.entry.id) end
        local none = registry.build_delta({}, {})
        local bad, err = registry.build_delta({{kind = "k"}}, {})
        local bad2, err2 = registry.build_delta("x", {})
        return {out = out, none = #none, err = err:kind(), msg = err:message(), err2 = err2:kind()}
    """)
    assert got == {"out": ["entry.update a:change", "entry.create new", "entry.delete a:drop"], "none": 0,
                   "err": "Invalid", "msg": 'registry.build_delta: from[1]: an entry needs an id ("ns:name" or {ns, name})',
                   "err2": "Invalid"}


@pytest.mark.parametrize("call", ["registry.snapshot().entries({})", "registry.current_version().id({})",
                                  "registry.current_version().next({})"])
def test_methods_check_their_object(project: Project, call: str) -> None:
    with pytest.raises(WippyError, match="must be called on"):
        reg(project, f"return {call}")


def test_env_variables_added_by_a_changeset_are_seen(project: Project) -> None:
    project.entries.append(DATA_ENTRIES.strip("\n"))
    got = run_lua(project, """
        local registry, env = require("registry"), require("env")
        local _, before = env.get("DYN_VAR")
        local changes = registry.snapshot():changes()
        changes:create({id = "dyn:store", kind = "env.storage.static", data = {values = {DYN_VAR = "hello"}}})
        changes:create({id = "dyn:DYN_VAR", kind = "env.variable", data = {variable = "DYN_VAR", storage = "dyn:store"}})
        changes:apply()
        return {before = before:kind(), after = env.get("DYN_VAR")}
    """, modules=["registry", "env"])
    assert got == {"before": "NotFound", "after": "hello"}
