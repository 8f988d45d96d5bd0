"""The registry loader: every validation rule, project layout rules and the kind table."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from wippy.durations import DurationError, parse_duration, parse_duration_ns
from wippy.errors import LoadError, Problem
from wippy.registry import KINDS, KindSpec, Registry, load_project
from wippy.registry.entry import Entry
from wippy.registry.graph import describe, find_cycles
from wippy.registry.kinds import HOST, LUA, claim_prefix, known_kinds, lookup_kind, release_prefix
from wippy.registry.lifecycle import dependencies
from wippy.registry.loader import find_yaml_files

MAIN = "return { main = function() return 1 end }\n"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(root: Path) -> list[Problem]:
    """The problems a load reports (fails the test if the project loads)."""
    with pytest.raises(LoadError) as info:
        load_project(root)
    return info.value.problems


def only(root: Path) -> Problem:
    found = problems(root)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def index(root: Path, entries: str, namespace: str = "app", rel: str = "_index.yaml") -> None:
    write(root, rel, f"namespace: {namespace}\nentries:\n" + textwrap.indent(textwrap.dedent(entries).strip(), "  "))


# Durations ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("2h", 7200.0), ("1.5s", 1.5), (".5s", 0.5),
    ("0", 0.0), ("-1s", -1.0), ("+2m", 120.0), ("250us", 250e-6), ("3µs", 3e-6), ("10ns", 10e-9),
])
def test_parse_duration_go_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "why"), [
    ("", 'invalid duration ""'), ("5", "missing unit"), ("5x", 'unknown unit "x"'), ("1m 30s", "unknown unit"),
    ("s", 'invalid duration "s"'), ("1e3s", 'unknown unit "e"'), (5, "must be a duration string"),
])
def test_parse_duration_rejects_with_reason(text: object, why: str) -> None:
    with pytest.raises(DurationError, match=why):
        parse_duration(text)  # type: ignore[arg-type]


def test_parse_duration_ns_is_whole_nanoseconds() -> None:
    assert parse_duration_ns("1m30.5s") == 90_500_000_000


# Cycles -------------------------------------------------------------------------------------
def test_find_cycles_rotates_to_smallest_and_reports_each_loop_once() -> None:
    graph = {"c": ["a"], "a": ["b"], "b": ["c"], "x": ["x"], "y": ["a"]}
    assert find_cycles(graph) == [["a", "b", "c"], ["x"]]
    assert describe(["a", "b"]) == "a -> b -> a"
    assert find_cycles({"a": ["b", "missing"], "b": []}) == []


# Layout -------------------------------------------------------------------------------------
def test_entry_id_fields_and_relative_imports(tmp_path: Path) -> None:
    write(tmp_path, "lib.lua", "return { twice = function(x) return x * 2 end }\n")
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, """
        - name: lib
          kind: library.lua
          source: file://lib.lua
          modules: [json]
        - name: f
          kind: function.lua
          source: file://f.lua
          method: main
          modules: [json, time]
          imports: {lib: lib, same: app:lib}
          meta: {type: test}
    """)
    reg = load_project(tmp_path)
    f = reg.get("app:f")
    assert isinstance(reg, Registry) and f is not None and len(reg) == 2
    assert (f.namespace, f.name, f.kind, f.method) == ("app", "f", "function.lua", "main")
    assert f.imports == {"lib": "app:lib", "same": "app:lib"}
    assert f.modules == ["json", "time"] and f.meta == {"type": "test"}
    assert f.source == MAIN and f.source_path == tmp_path / "f.lua"
    assert f.line == 7 and f.line_of("imports.lib") == 12 and f.line_of("nope") == 7
    assert reg.of_kind("library.lua") == [reg.get("app:lib")]


def test_single_entry_file(tmp_path: Path) -> None:
    write(tmp_path, "lib/fmt.lua", "return {}\n")
    write(tmp_path, "lib/fmt.yaml", """
        version: "1.0"
        namespace: app.lib
        name: fmt
        kind: library.lua
        source: file://fmt.lua
        meta: {comment: single}
    """)
    entry = load_project(tmp_path).get("app.lib:fmt")
    assert entry is not None and entry.kind == "library.lua" and entry.meta == {"comment": "single"}
    assert "namespace" not in entry.data and "version" not in entry.data


def test_single_entry_file_problems_are_located(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "namespace: app\nname: one\nkind: function.lua\nsource: file://nope.lua\nmethod: main\n")
    p = only(tmp_path)
    assert (p.file, p.entry, p.field, p.line) == ("one.yaml", "app:one", "source", 4)


def test_yaml_that_is_not_a_definition_file_is_ignored(tmp_path: Path) -> None:
    write(tmp_path, "config.yaml", "settings: {a: 1}\nnamespace: helm-style\n")
    write(tmp_path, "list.yaml", "- a\n- b\n")
    write(tmp_path, "scalar.yml", "just text\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "k8s.yaml", "kind: Deployment\nmetadata: {name: x}\n")
    assert len(load_project(tmp_path)) == 0


def test_hidden_and_tool_directories_are_skipped(tmp_path: Path) -> None:
    for d in (".git", ".wippy", "node_modules", ".hidden"):
        index(tmp_path, "- {name: x, kind: nope}", rel=f"{d}/_index.yaml")
    index(tmp_path, "- {name: ok, kind: registry.entry}", rel="src/_index.yaml")
    assert [e.id for e in load_project(tmp_path)] == ["app:ok"]


def test_wippy_lock_directories_limit_what_is_loaded(tmp_path: Path) -> None:
    write(tmp_path, "wippy.lock", "directories:\n  modules: .wippy\n  src: ./src\n")
    index(tmp_path, "- {name: a, kind: registry.entry}", rel="src/_index.yaml")
    index(tmp_path, "- {name: m, kind: registry.entry}", namespace="mod", rel=".wippy/mod/_index.yaml")
    index(tmp_path, "- {name: stray, kind: no.such}", namespace="stray", rel="docs/_index.yaml")
    assert sorted(e.id for e in load_project(tmp_path)) == ["app:a", "mod:m"]
    assert [p.relative_to(tmp_path).as_posix() for p in find_yaml_files(tmp_path)] == [
        ".wippy/mod/_index.yaml", "src/_index.yaml"]


def test_wippy_lock_missing_directory_is_fine_unless_all_are(tmp_path: Path) -> None:
    write(tmp_path, "wippy.lock", "directories:\n  modules: .wippy\n  src: ./src\n")
    index(tmp_path, "- {name: a, kind: registry.entry}", rel="src/_index.yaml")
    assert len(load_project(tmp_path)) == 1
    write(tmp_path, "wippy.lock", "directories:\n  src: ./source\n")
    p = only(tmp_path)
    assert (p.file, p.field) == ("wippy.lock", "directories") and "./source" in p.message


def test_wippy_lock_overlapping_directories_load_each_file_once(tmp_path: Path) -> None:
    write(tmp_path, "wippy.lock", "directories:\n  all: .\n  src: src\n")
    index(tmp_path, "- {name: a, kind: registry.entry}", rel="src/_index.yaml")
    assert len(load_project(tmp_path)) == 1


def test_wippy_lock_without_directories_scans_everything(tmp_path: Path) -> None:
    write(tmp_path, "wippy.lock", "directories: {}\n")
    index(tmp_path, "- {name: a, kind: registry.entry}", rel="deep/er/_index.yaml")
    assert len(load_project(tmp_path)) == 1


def test_wippy_lock_problems(tmp_path: Path) -> None:
    write(tmp_path, "wippy.lock", "directories: [src]\n")
    assert "mapping of label: directory" in only(tmp_path).message
    write(tmp_path, "wippy.lock", "directories:\n  src: [\n")
    p = only(tmp_path)
    assert p.file == "wippy.lock" and p.message.startswith("malformed YAML")


def test_missing_project_directory(tmp_path: Path) -> None:
    assert "project directory not found" in only(tmp_path / "nope").message


# File-level problems ------------------------------------------------------------------------
def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "a/bad.yaml", "namespace: app\nentries:\n  - name: x\n   kind: y\n")
    p = only(tmp_path)
    assert (p.file, p.line) == ("a/bad.yaml", 4) and p.message.startswith("malformed YAML:")


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "namespace: app\nentries:\n  - name: x\n    kind: registry.entry\n    name: y\n")
    p = only(tmp_path)
    assert p.line == 5 and "duplicate key 'name' (first on line 3)" in p.message


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """
        namespace: app
        base: &base {kind: registry.entry, v: 1}
        entries:
          - <<: *base
            name: x
            v: 2
    """)
    assert load_project(tmp_path).entries["app:x"].data == {"v": 2}


def test_missing_namespace(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", "entries:\n  - {name: a, kind: registry.entry}\n")
    p = only(tmp_path)
    assert (p.file, p.field, p.line) == ("x.yaml", "namespace", 1) and "missing" in p.message


@pytest.mark.parametrize("namespace", ["''", "app:x", "'my app'", "[a]"])
def test_bad_namespace(tmp_path: Path, namespace: str) -> None:
    write(tmp_path, "x.yaml", f"namespace: {namespace}\nentries: []\n")
    assert only(tmp_path).field == "namespace"


def test_entries_must_be_a_list_of_mappings_with_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "namespace: a\nentries: {name: x}\n")
    write(tmp_path, "b.yaml", "namespace: b\nentries:\n  - just text\n  - {kind: registry.entry}\n"
                              "  - {name: 'x:y', kind: registry.entry}\n  - {name: ok, kind: registry.entry}\n")
    found = problems(tmp_path)
    assert [(p.file, p.entry, p.field) for p in found] == [
        ("a.yaml", None, "entries"), ("b.yaml", "#1", None), ("b.yaml", "#2", "name"), ("b.yaml", "#3", "name")]
    assert "must not contain ':'" in found[3].message


def test_empty_entries_is_fine(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "namespace: app\nentries:\n")
    assert len(load_project(tmp_path)) == 0


# Entry-level problems -----------------------------------------------------------------------
def test_duplicate_id_names_both_places(tmp_path: Path) -> None:
    index(tmp_path, "- {name: x, kind: registry.entry}", rel="one/_index.yaml")
    index(tmp_path, "- {name: y, kind: registry.entry}\n- {name: x, kind: registry.entry}", rel="two/_index.yaml")
    p = only(tmp_path)
    assert (p.file, p.entry, p.line) == ("two/_index.yaml", "app:x", 4)
    assert "duplicate entry ID (first defined in one/_index.yaml:3)" in p.message


def test_unknown_kind_lists_known_kinds_and_does_not_cascade(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, """
        - {name: x, kind: function.lau}
        - {name: f, kind: function.lua, source: file://f.lua, method: main, imports: {x: x}}
        - {name: s, kind: registry.entry, lifecycle: {requires: [x]}}
    """)
    p = only(tmp_path)
    assert (p.entry, p.field, p.line) == ("app:x", "kind", 3)
    assert "unknown kind 'function.lau'" in p.message
    for kind in ("function.lua", "library.lua", "process.service", "temporal.worker", "registry.entry"):
        assert kind in p.message


def test_missing_kind(tmp_path: Path) -> None:
    index(tmp_path, "- {name: x}")
    p = only(tmp_path)
    assert (p.entry, p.field, p.message) == ("app:x", "kind", "is required")


def test_accepted_kinds(tmp_path: Path) -> None:
    names = ["function.lua", "process.lua", "workflow.lua", "library.lua", "process.host", "process.service",
             "workflow.host", "temporal.client", "temporal.worker", "registry.entry"]
    assert all(lookup_kind(n) is KINDS[n] for n in names)
    hosts = [n for n in names if KINDS[n].role == HOST]
    assert hosts == ["process.host", "workflow.host", "temporal.worker"]
    # kinds that run come from plugins (the built-in ones from wippy's own entry points)
    assert all(KINDS[n].distribution == "wippy" and KINDS[n].startable for n in hosts + ["process.service"])
    assert KINDS["function.lua"].role == LUA and not KINDS["function.lua"].startable


def test_missing_source_file(tmp_path: Path) -> None:
    index(tmp_path, "- {name: f, kind: function.lua, source: file://lua/f.lua, method: main}", rel="src/_index.yaml")
    p = only(tmp_path)
    assert (p.file, p.entry, p.field) == ("src/_index.yaml", "app:f", "source")
    assert p.message == "file not found: src/lua/f.lua"


@pytest.mark.parametrize("source", ["f.lua", "'file://'", "{path: f.lua}"])
def test_source_must_be_a_file_url(tmp_path: Path, source: str) -> None:
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, f"- {{name: f, kind: function.lua, source: {source}, method: main}}")
    assert only(tmp_path).field == "source"


def test_lua_syntax_error_points_at_the_lua_line(tmp_path: Path) -> None:
    write(tmp_path, "src/f.lua", "local M = {}\n\nfunction M.main()\n  return = 1\nend\nreturn M\n")
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main}", rel="src/_index.yaml")
    p = only(tmp_path)
    assert (p.file, p.line, p.entry, p.field) == ("src/f.lua", 4, "app:f", "source")
    assert p.message == "Lua syntax error: unexpected symbol near '='"
    assert str(p) == "src/f.lua:4: entry app:f: field source: Lua syntax error: unexpected symbol near '='"


def test_method_is_required_for_callable_kinds(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, """
        - {name: f, kind: function.lua, source: file://f.lua}
        - {name: p, kind: process.lua, source: file://f.lua}
        - {name: w, kind: workflow.lua, source: file://f.lua, method: ''}
        - {name: lib, kind: library.lua, source: file://f.lua}
    """)
    assert [(p.entry, p.field) for p in problems(tmp_path)] == [
        ("app:f", "method"), ("app:p", "method"), ("app:w", "method")]


def test_unknown_method_lists_what_the_source_returns(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", "local M = {}\nfunction M.run() end\nfunction M.stop() end\nM.version = 1\nreturn M\n")
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main}")
    p = only(tmp_path)
    assert (p.field, p.line) == ("method", 3)
    assert p.message == "unknown method 'main': the source returns a table with run, stop"


def test_method_that_is_not_a_function(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", "return { main = 42 }\n")
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main}")
    assert "unknown method 'main'" in only(tmp_path).message


def test_source_that_returns_nothing(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", "local function main() end\n")
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main}")
    assert "returns nothing; end it with `return { main = main }`" in only(tmp_path).message


@pytest.mark.parametrize("source", [
    "return function() return 1 end\n",  # the runtime calls a returned function directly
    "local B = { main = function() end }\nreturn setmetatable({}, { __index = B })\n",
    "local json = require('json')\nlocal M = {}\nM.main = function() return json.encode({}) end\nreturn M\n",
    "local cfg = require('env').get('X')\nif cfg.on then error('stop') end\nreturn { main = print }\n",
    "local M = require('base').extend()\nfunction M.main() end\nreturn M\n",
    "#!/usr/bin/env lua\nreturn { main = function() end }\n",
    "while true do end\nlocal function main() end\n",  # budget exceeded: falls back to the text
])
def test_method_checks_that_must_not_misfire(tmp_path: Path, source: str) -> None:
    write(tmp_path, "f.lua", source)
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main}")
    assert load_project(tmp_path).get("app:f") is not None


def test_modules_must_be_a_list_of_names(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, "- {name: f, kind: function.lua, source: file://f.lua, method: main, modules: json}")
    assert only(tmp_path).field == "modules"


def test_import_problems(tmp_path: Path) -> None:
    write(tmp_path, "f.lua", MAIN)
    index(tmp_path, """
        - name: f
          kind: function.lua
          source: file://f.lua
          method: main
          imports:
            gone: app.lib:nope
            proc: p
            bad: {x: 1}
        - {name: g, kind: function.lua, source: file://f.lua, method: main, imports: [a, b]}
        - {name: p, kind: process.lua, source: file://f.lua, method: main}
    """)
    found = problems(tmp_path)
    assert [(p.entry, p.field, p.line) for p in found] == [
        ("app:f", "imports.gone", 8), ("app:f", "imports.proc", 9), ("app:f", "imports.bad", 10), ("app:g", "imports", 11)]
    assert found[0].message == "imports app.lib:nope, which does not exist"
    assert "a process.lua entry; only library.lua and function.lua entries can be imported" in found[1].message


def test_a_librarys_own_imports_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "l.lua", "return {}\n")
    index(tmp_path, "- {name: l, kind: library.lua, source: file://l.lua, imports: {x: app.other:x}}")
    p = only(tmp_path)
    assert (p.entry, p.field) == ("app:l", "imports.x")


def test_import_cycle_between_libraries(tmp_path: Path) -> None:
    write(tmp_path, "l.lua", "return {}\n")
    write(tmp_path, "lib/l.lua", "return {}\n")
    index(tmp_path, """
        - {name: b, kind: library.lua, source: file://l.lua, imports: {a: app.lib:a}}
    """, namespace="app")
    index(tmp_path, """
        - {name: a, kind: library.lua, source: file://l.lua, imports: {b: app:b}}
        - {name: self, kind: library.lua, source: file://l.lua, imports: {me: self}}
    """, namespace="app.lib", rel="lib/_index.yaml")
    found = problems(tmp_path)
    assert [(p.file, p.entry, p.field, p.message) for p in found] == [
        ("lib/_index.yaml", "app.lib:a", "imports.b", "import cycle: app.lib:a -> app:b -> app.lib:a"),
        ("lib/_index.yaml", "app.lib:self", "imports.me", "import cycle: app.lib:self -> app.lib:self"),
    ]


# Lifecycle ----------------------------------------------------------------------------------
def test_lifecycle_dependencies_must_exist(tmp_path: Path) -> None:
    index(tmp_path, """
        - {name: a, kind: registry.entry, lifecycle: {depends_on: [b, other:c]}}
        - {name: b, kind: registry.entry, lifecycle: {requires: app:a.x}}
        - {name: c, kind: registry.entry, lifecycle: [1]}
        - {name: d, kind: registry.entry, meta: 1}
    """)
    found = problems(tmp_path)
    assert [(p.entry, p.field, p.message) for p in found] == [
        ("app:a", "lifecycle.depends_on", "refers to other:c, which does not exist"),
        ("app:b", "lifecycle.requires", "must be a list of entry IDs"),
        ("app:c", "lifecycle", "must be a mapping"),
        ("app:d", "meta", "must be a mapping"),
    ]


def test_dependencies_property_merges_requires_and_depends_on(tmp_path: Path) -> None:
    index(tmp_path, """
        - {name: a, kind: registry.entry, lifecycle: {requires: [b, app:c], depends_on: [c]}}
        - {name: b, kind: registry.entry}
        - {name: c, kind: registry.entry}
    """)
    assert load_project(tmp_path).entries["app:a"].dependencies == ["app:b", "app:c"]


def test_lifecycle_dependency_cycle(tmp_path: Path) -> None:
    index(tmp_path, """
        - {name: c, kind: registry.entry, lifecycle: {depends_on: [a]}}
        - {name: a, kind: registry.entry, lifecycle: {requires: [b]}}
        - {name: b, kind: registry.entry, lifecycle: {requires: [c]}}
        - {name: s, kind: registry.entry, lifecycle: {depends_on: [s]}}
    """)
    found = problems(tmp_path)
    assert [(p.entry, p.field, p.line) for p in found] == [
        ("app:a", "lifecycle.requires", 4), ("app:s", "lifecycle.depends_on", 6)]
    assert found[0].message == "lifecycle dependency cycle: app:a -> app:b -> app:c -> app:a (no order can start these)"


def test_implied_dependencies_count_for_cycles(tmp_path: Path) -> None:
    write(tmp_path, "w.lua", MAIN)
    index(tmp_path, """
        - {name: host, kind: process.host, lifecycle: {requires: [svc]}}
        - {name: worker, kind: process.lua, source: file://w.lua, method: main}
        - {name: svc, kind: process.service, process: worker, host: host}
    """)
    p = only(tmp_path)
    assert (p.entry, p.field) == ("app:host", "lifecycle.requires")
    assert p.message.startswith("lifecycle dependency cycle: app:host -> app:svc -> app:host")
    write(tmp_path, "_index.yaml", (tmp_path / "_index.yaml").read_text().replace("requires: [svc]", "requires: []"))
    reg = load_project(tmp_path)
    svc = reg.entries["app:svc"]
    assert svc.dependencies == [] and dependencies(svc, reg) == ["app:host"]


SERVICE = """
- {name: host, kind: process.host}
- {name: worker, kind: process.lua, source: file://w.lua, method: main}
- name: svc
  kind: process.service
  process: worker
  host: app:host
  lifecycle:
"""


def service_problems(tmp_path: Path, lifecycle: str) -> list[tuple[str | None, str]]:
    write(tmp_path, "w.lua", MAIN)
    index(tmp_path, SERVICE + textwrap.indent(textwrap.dedent(lifecycle).strip(), "    "))
    try:
        load_project(tmp_path)
    except LoadError as exc:
        return [(p.field, p.message) for p in exc.problems]
    return []


def test_valid_process_service(tmp_path: Path) -> None:
    assert service_problems(tmp_path, """
        auto_start: true
        start_timeout: 30s
        stop_timeout: 1m30s
        stable_threshold: "0"
        restart: {initial_delay: 100ms, max_delay: 90s, backoff_factor: 2, jitter: 0.1, max_attempts: 0}
    """) == []


@pytest.mark.parametrize(("lifecycle", "field", "message"), [
    ("auto_start: 'yes'", "lifecycle.auto_start", "must be true or false, got 'yes'"),
    ("start_timeout: 30", "lifecycle.start_timeout", "must be a duration string"),
    ("start_timeout: 5 seconds", "lifecycle.start_timeout", 'unknown unit " seconds"'),
    ("stop_timeout: 0s", "lifecycle.stop_timeout", "must be greater than 0s, got '0s'"),
    ("stable_threshold: -1s", "lifecycle.stable_threshold", "must be at least 0s"),
    ("restart: 3", "lifecycle.restart", "must be a mapping"),
    ("restart: {initial_delay: 1x}", "lifecycle.restart.initial_delay", 'unknown unit "x"'),
    ("restart: {initial_delay: 10s, max_delay: 1s}", "lifecycle.restart.max_delay",
     "(1s) must not be shorter than initial_delay (10s)"),
    ("restart: {backoff_factor: 0.5}", "lifecycle.restart.backoff_factor", "at least 1"),
    ("restart: {backoff_factor: '2'}", "lifecycle.restart.backoff_factor", "at least 1"),
    ("restart: {jitter: 2}", "lifecycle.restart.jitter", "between 0 and 1"),
    ("restart: {max_attempts: -1}", "lifecycle.restart.max_attempts", "0 or more"),
    ("restart: {max_attempts: 2.5}", "lifecycle.restart.max_attempts", "whole number"),
    ("restart: {max_attempts: true}", "lifecycle.restart.max_attempts", "whole number"),
])
def test_bad_process_service_lifecycle(tmp_path: Path, lifecycle: str, field: str, message: str) -> None:
    found = service_problems(tmp_path, lifecycle)
    assert len(found) == 1 and found[0][0] == field and message in found[0][1], found


def test_process_service_references(tmp_path: Path) -> None:
    write(tmp_path, "w.lua", MAIN)
    index(tmp_path, """
        - {name: worker, kind: function.lua, source: file://w.lua, method: main}
        - {name: s1, kind: process.service, process: worker, host: nope}
        - {name: s2, kind: process.service}
        - {name: tw, kind: temporal.worker, client: worker}
    """)
    found = [(p.entry, p.field, p.message) for p in problems(tmp_path)]
    assert found == [
        ("app:s1", "process", "refers to app:worker, a function.lua entry; expected process.lua"),
        ("app:s1", "host", "refers to app:nope, which does not exist"),
        ("app:s2", "process", "is required and must be an entry ID (process.lua)"),
        ("app:s2", "host", "is required and must be an entry ID ("  # every installed host kind
         + " or ".join(sorted(k for k, spec in KINDS.items() if spec.role == HOST)) + ")"),
        ("app:tw", "client", "refers to app:worker, a function.lua entry; expected temporal.client"),
    ]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "namespace: [\n")
    write(tmp_path, "nons.yaml", "entries: []\n")
    index(tmp_path, "- {name: a, kind: nope}\n- {name: b, kind: function.lua, source: file://b.lua, method: main}")
    assert len(problems(tmp_path)) == 4


# Plugin kinds -------------------------------------------------------------------------------
@pytest.fixture
def plugin() -> Iterator[list[str]]:
    """Claims ``myplugin.*`` for the test; records the kinds its factory was asked for."""
    asked: list[str] = []

    def check_url(entry: Entry, registry: Registry, report: object) -> None:
        if not isinstance(entry.data.get("url"), str):
            report("url", "is required")  # type: ignore[operator]

    def factory(kind: str) -> KindSpec | None:
        asked.append(kind)
        if kind == "myplugin.declined":
            return None
        if kind == "myplugin.broken":
            raise RuntimeError("boom")
        return KindSpec("ignored", validate=check_url, description="plugin kind")

    claim_prefix("myplugin.*", factory)
    claim_prefix("myplugin.deep", lambda kind: KindSpec(kind, description="deeper claim"))
    yield asked
    release_prefix("myplugin")
    release_prefix("myplugin.deep.*")


def test_claim_prefix_routes_kinds_to_the_plugin(tmp_path: Path, plugin: list[str]) -> None:
    index(tmp_path, """
        - {name: a, kind: myplugin.thing, url: http://x}
        - {name: b, kind: myplugin.deep.x}
    """)
    reg = load_project(tmp_path)
    a = reg.entries["app:a"]
    assert KINDS[a.kind].name == "myplugin.thing" and not KINDS[a.kind].startable
    assert KINDS["myplugin.deep.x"].description == "deeper claim"
    assert plugin == ["myplugin.thing"]
    assert "myplugin.*" in known_kinds() and "myplugin.thing" not in known_kinds()


def test_claimed_kinds_are_validated_by_the_plugin(tmp_path: Path, plugin: list[str]) -> None:
    index(tmp_path, """
        - {name: a, kind: myplugin.thing}
        - {name: b, kind: myplugin.declined}
        - {name: c, kind: myplugin.broken}
        - {name: d, kind: otherplugin.thing}
    """)
    found = problems(tmp_path)
    assert [(p.entry, p.field) for p in found] == [
        ("app:b", "kind"), ("app:c", "kind"), ("app:d", "kind"), ("app:a", "url")]
    assert "unknown kind 'myplugin.declined'" in found[0].message and "myplugin.*" in found[0].message
    assert "its plugin failed: boom" in found[1].message


def test_claim_prefix_rules(plugin: list[str]) -> None:
    with pytest.raises(ValueError, match="already claimed"):
        claim_prefix("myplugin", lambda kind: None)
    for bad in ("", "*", ".", "a:b", "a*b"):
        with pytest.raises(ValueError, match="invalid kind prefix"):
            claim_prefix(bad, lambda kind: None)
    assert lookup_kind("function.lua") is KINDS["function.lua"]
    assert lookup_kind("myplugin") is None  # the prefix alone is not a kind
    claim_prefix("function", lambda kind: KindSpec(kind))
    try:
        assert lookup_kind("function.lua") is KINDS["function.lua"]  # exact kinds win
        assert lookup_kind("function.wasm") is not None
    finally:
        release_prefix("function.*")
    assert "function.wasm" not in KINDS and lookup_kind("function.wasm") is None
