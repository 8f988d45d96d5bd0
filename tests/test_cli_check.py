"""``wippy check`` against fixture projects: every planted mistake is found and located."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wippy.cli import main
from wippy.errors import LoadError, Problem
from wippy.registry import load_project

FIXTURES = Path(__file__).parent / "fixtures"
BROKEN = FIXTURES / "broken_project"
OK = FIXTURES / "ok_project"

# (file, line, entry, field, message fragment) for each mistake planted in broken_project.
PLANTED: list[tuple[str, int | None, str | None, str | None, str]] = [
    ("other/broken.yaml", 6, None, None, "malformed YAML: expected ',' or ']', but got ':'"),
    ("other/no_ns.yaml", 1, None, "namespace", "is missing: a definition file needs `namespace:`"),
    ("other/dup.yaml", 4, "app:dup", None, "duplicate entry ID (first defined in app/_index.yaml:10)"),
    ("app/_index.yaml", 15, "app:typo_kind", "kind",
     "unknown kind 'function.lau' (did you mean function.lua?); known kinds: "),
    ("app/_index.yaml", 21, "app:ghost", "source", "file not found: app/missing.lua"),
    ("app/bad_syntax.lua", 4, "app:bad_syntax", "source", "Lua syntax error: unexpected symbol near '='"),
    ("app/_index.yaml", 32, "app:wrong_method", "method",
     "unknown method 'run': the source returns a table with main"),
    ("app/_index.yaml", 39, "app:uses_missing", "imports.helpers", "imports app.lib:nope, which does not exist"),
    ("app/lib/_index.yaml", 8, "app.lib:a", "imports.b", "import cycle: app.lib:a -> app.lib:b -> app.lib:a"),
    ("app/services/_index.yaml", 18, "app.services:svc_a", "lifecycle.requires",
     "lifecycle dependency cycle: app.services:svc_a -> app.services:svc_b -> app.services:svc_a"),
    ("app/services/_index.yaml", 35, "app.services:bad_svc", "lifecycle.start_timeout",
     'unknown unit " seconds" in duration "5 seconds"'),
    ("app/services/_index.yaml", 38, "app.services:bad_svc", "lifecycle.restart.jitter",
     "must be a fraction between 0 and 1"),
]


def _matches(problem: Problem, planted: tuple[str, int | None, str | None, str | None, str]) -> bool:
    file, line, entry, field, fragment = planted
    return (problem.file, problem.line, problem.entry, problem.field) == (file, line, entry, field) \
        and fragment in problem.message


def test_load_project_finds_every_planted_problem_and_nothing_else() -> None:
    with pytest.raises(LoadError) as info:
        load_project(BROKEN)
    found = info.value.problems
    missing = [p for p in PLANTED if not any(_matches(f, p) for f in found)]
    extra = [f for f in found if not any(_matches(f, p) for p in PLANTED)]
    assert not missing and not extra, f"missing: {missing}\nextra: {[str(e) for e in extra]}"


SCRIPT = Path(sys.executable).parent / "wippy"  # the installed console script, next to python
COMMANDS = {"module": [sys.executable, "-m", "wippy.cli"], "script": [str(SCRIPT)]}


def _run_check(project: Path, how: str = "module") -> subprocess.CompletedProcess[str]:
    if how == "script" and not SCRIPT.exists():
        pytest.skip("the wippy console script is not installed next to this python")
    return subprocess.run([*COMMANDS[how], "check", str(project)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("how", list(COMMANDS))
def test_wippy_check_prints_every_problem_and_exits_1(how: str) -> None:
    result = _run_check(BROKEN, how)
    assert result.returncode == 1, result.stderr
    out = result.stderr
    assert f"{len(PLANTED)} problems found while loading the project" in out
    for file, line, entry, field, fragment in PLANTED:
        where = file + (f":{line}" if line is not None else "")
        expected = ": ".join([where, *([f"entry {entry}"] if entry else []), *([f"field {field}"] if field else [])])
        assert f"{expected}: {fragment}" in out, f"{expected}: {fragment}\n--- not in ---\n{out}"
    # The YAML file that is not a definition file is not mentioned at all.
    assert "notes/config.yaml" not in out


@pytest.mark.parametrize("how", list(COMMANDS))
def test_wippy_check_ok_project_exits_0(how: str) -> None:
    result = _run_check(OK, how)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 8 entries in ")
    assert result.stderr == ""


def test_ok_project_honours_lock_relative_imports_and_single_entry_files() -> None:
    registry = load_project(OK)
    assert "docs:example" not in registry.entries  # docs/ is outside the wippy.lock directories
    assert registry.entries["app.lib:helpers"].imports == {"fmt": "app.lib:fmt"}
    assert registry.entries["app.lib:fmt"].file.name == "fmt.yaml"
    assert registry.entries["app:worker.service"].dependencies == ["app:db.service"]


def test_check_in_process_and_missing_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check", str(BROKEN)]) == 1
    assert "app/bad_syntax.lua:4: entry app:bad_syntax" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "absent")]) == 1
    assert "project directory not found" in capsys.readouterr().err


# Modules and fields of every built-in kind ---------------------------------------------
MISTAKES = """\
namespace: app
entries:
  - name: typo_module
    kind: function.lua
    source: file://f.lua
    method: main
    modules: [jsn, time, excel, "app:lib"]
  - name: typo_field
    kind: function.lua
    source: file://f.lua
    method: main
    modul: [json]
    lifecycle: {autostart: true}
    pool: {type: huge}
  - name: wrong_method
    kind: function.lua
    source: file://f.lua
    method: 5
  - name: wrong_source
    kind: process.lua
    source: 5
    method: main
  - name: host
    kind: process.host
    host: {workers: many, queue: 5}
    limits: {step_time: soon}
  - name: svc
    kind: process.service
    process: app:wrong_source
    host: app:host
    inputs: []
"""
# (line, entry, field, message fragment): every one is reported, in one run
MISTAKES_FOUND = [
    (7, "app:typo_module", "modules", "unknown module 'jsn' (did you mean json?)"),
    (7, "app:typo_module", "modules", "unknown module 'app:lib' (modules: names built-in modules; entries go "
                                      "in imports:"),
    (12, "app:typo_field", "modul", "is not a field of this kind (did you mean modules?)"),
    (13, "app:typo_field", "lifecycle.autostart", "is not a lifecycle field (did you mean auto_start?)"),
    (14, "app:typo_field", "pool.type", "must be one of inline, lazy, static, adaptive, got 'huge'"),
    (18, "app:wrong_method", "method", "must be the name of the function in the table the source returns (a "
                                       "non-empty string), got 5 (a number)"),
    (21, "app:wrong_source", "source", "must be a file:// path relative to the YAML file (e.g. file://main.lua), "
                                       "got 5 (a number)"),
    (25, "app:host", "host.workers", "must be an integer, got 'many' (a string)"),
    (25, "app:host", "host.queue", "is not a field of this kind (did you mean queue_size?)"),
    (26, "app:host", "limits.step_time", 'must be a duration such as "5s" or "250ms", got \'soon\''),
    (31, "app:svc", "inputs", "is not a field of this kind (did you mean input?)"),
]


def _project(root: Path, index: str, **files: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(index)
    (root / "f.lua").write_text("return { main = function() return 1 end }\n")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _wippy(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMANDS["module"], *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          check=False)


def test_check_reports_modules_and_fields_of_every_kind_in_one_run(tmp_path: Path) -> None:
    proc = _wippy("check", str(_project(tmp_path / "p", MISTAKES)))
    assert proc.returncode == 1
    err = proc.stderr
    assert f"{len(MISTAKES_FOUND)} problems found while loading the project" in err, err
    for line, entry, field, fragment in MISTAKES_FOUND:
        assert f"_index.yaml:{line}: entry {entry}: field {field}: {fragment}" in err, f"{fragment}\n--- not in ---\n{err}"
    # an upstream module this runtime lacks is a warning, saying so (the project is valid Wippy)
    assert ("1 warning:\n  _index.yaml:7: entry app:typo_module: field modules: module 'excel' is an upstream Wippy "
            "module that this runtime does not provide") in err
    assert "Traceback" not in err


def test_an_upstream_module_not_provided_here_is_a_warning_not_an_error(tmp_path: Path) -> None:
    from wippy.lua.modules import module_names
    from wippy.registry.modules import UPSTREAM_MODULES

    missing = sorted(UPSTREAM_MODULES - set(module_names()))[:2]
    assert len(missing) == 2
    root = _project(tmp_path / "p", "namespace: app\nentries:\n  - {name: f, kind: function.lua, source: "
                    f"file://f.lua, method: main, modules: [json, {missing[0]}, {missing[1]}]}}\n")
    proc = _wippy("check", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: 1 entries in ") and proc.stdout.rstrip().endswith("(2 warnings)")
    assert f"module '{missing[1]}' is an upstream Wippy module that this runtime does not provide" in proc.stderr
    strict = _wippy("check", "--strict", str(root))
    assert strict.returncode == 1


def test_load_project_without_the_module_list_does_not_check_modules(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "namespace: app\nentries:\n  - {name: f, kind: function.lua, source: "
                    "file://f.lua, method: main, modules: [jsn]}\n")
    assert len(load_project(root)) == 1  # the Python API: only the CLI passes the runtime's modules
    with pytest.raises(LoadError) as info:
        load_project(root, modules=["json"])
    assert [p.message for p in info.value.problems] == ["unknown module 'jsn' (did you mean json?)"]


def test_durable_kinds_field_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The tables of wippy/providers/_durable/fields.py, as the loader applies them once a
    kind declares them (KindSpec.fields)."""
    from dataclasses import replace

    from wippy.providers._durable.fields import (
        TEMPORAL_CLIENT_FIELDS,
        TEMPORAL_WORKER_FIELDS,
        WORKFLOW_HOST_FIELDS,
    )
    from wippy.registry.kinds import KINDS, lookup_kind

    tables = {"workflow.host": WORKFLOW_HOST_FIELDS, "temporal.client": TEMPORAL_CLIENT_FIELDS,
              "temporal.worker": TEMPORAL_WORKER_FIELDS}
    for kind, fields in tables.items():
        spec = lookup_kind(kind)
        assert spec is not None
        monkeypatch.setitem(KINDS, kind, replace(spec, fields=fields, requires=()))
    root = _project(tmp_path / "p", """\
namespace: app
entries:
  - {name: wf, kind: workflow.host, stor: x.db}
  - name: tc
    kind: temporal.client
    adress: "localhost:7233"
    tls: true
    keep_alive: false
    auth: {type: api_kye}
    health_check: {enabled: true}
  - name: tw
    kind: temporal.worker
    client: tc
    worker_options:
      max_concurrent_activity_execution_size: 10
      max_concurrent_workflow_task_execution_size: "ten"
      enable_session_worker: true
      max_concurent_activities: 3
""")
    with pytest.raises(LoadError) as info:
        load_project(root, modules=[])
    found = {(p.entry, p.field): p.message for p in info.value.problems}
    assert found[("app:wf", "stor")] == "is not a field of this kind (did you mean store?)"
    assert found[("app:tc", "adress")] == "is not a field of this kind (did you mean address?)"
    assert found[("app:tc", "auth.type")].startswith("must be one of none, api_key, mtls, got 'api_kye'")
    assert found[("app:tw", "worker_options.max_concurrent_workflow_task_execution_size")] == \
        "must be an integer, got 'ten' (a string)"
    assert found[("app:tw", "worker_options.max_concurent_activities")] == \
        "is not a field of this kind (did you mean max_concurrent_activities?)"
    warned = {(w.entry, w.field): w.message for w in info.value.warnings}
    assert warned[("app:tc", "health_check")].startswith("has no effect in this runtime: there is no periodic")
    assert warned[("app:tw", "worker_options.enable_session_worker")].startswith(
        "has no effect in this runtime: a Go SDK option")


@pytest.mark.skipif(
    __import__("wippy.registry.kinds", fromlist=["lookup_kind"]).lookup_kind("workflow.host").fields is None,
    reason="workflow.host does not declare its fields yet (wippy/providers/workflow/__init__.py: "
           "fields=WORKFLOW_HOST_FIELDS from wippy/providers/_durable/fields.py)")
def test_check_reports_durable_host_field_typos(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "namespace: app\nentries:\n  - {name: wf, kind: workflow.host, stor: x.db}\n")
    proc = _wippy("check", str(root))
    assert proc.returncode == 1
    assert "entry app:wf: field stor: is not a field of this kind (did you mean store?)" in proc.stderr


# What is a project ------------------------------------------------------------------------
def test_an_empty_directory_is_not_a_project(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["check"], ["test"], ["run"], ["exec"]):
        args = [*command, str(empty)] + (["app:x"] if command == ["exec"] else [])
        proc = _wippy(*args)
        assert proc.returncode == 1, (command, proc.stderr)
        assert f"error: {empty} is not a Wippy project: a project directory holds a wippy.lock, a .wippy.yaml " \
               "or a definition file" in proc.stderr
        assert "(the directory is empty)" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_parent_of_projects_is_not_loaded_as_one_project(tmp_path: Path) -> None:
    _project(tmp_path / "one", "namespace: a\nentries:\n  - {name: f, kind: function.lua, source: file://f.lua, "
             "method: main}\n")
    _project(tmp_path / "two", "namespace: a\nentries:\n  - {name: f, kind: function.lua, source: file://f.lua, "
             "method: main}\n")
    proc = _wippy("check", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert "is not a Wippy project" in proc.stderr
    assert "projects below it: one, two\n  (give one of them as the project directory)" in proc.stderr
    inside = tmp_path / "one" / "lua"
    inside.mkdir()
    proc = _wippy("check", "lua", cwd=tmp_path / "one")
    assert proc.returncode == 1 and "it is inside the project .: run from there" in proc.stderr


def test_a_directory_with_its_own_marker_is_a_separate_project(tmp_path: Path) -> None:
    root = _project(tmp_path / "p", "namespace: a\nentries:\n  - {name: f, kind: function.lua, source: "
                    "file://f.lua, method: main}\n")
    _project(root / "sub", "namespace: a\nentries:\n  - {name: f, kind: function.lua, source: file://f.lua, "
             "method: main}\n")
    (root / "sub" / "wippy.lock").write_text("directories: {src: .}\n")
    proc = _wippy("check", str(root))
    assert proc.returncode == 0, proc.stderr  # no duplicate a:f: sub/ is not loaded
    assert "sub/wippy.lock: not loaded: sub/ has its own wippy.lock, so it is a separate project" in proc.stderr
    assert _wippy("check", str(root / "sub")).returncode == 0


def test_every_built_in_kind_declares_its_fields() -> None:
    """`wippy check` knows the fields of every kind this package ships (registry.entry is
    free-form data). The durable providers' tables are in wippy/providers/_durable/fields.py;
    their specs pick them up in their own __init__."""
    from wippy.providers._durable import fields as durable
    from wippy.registry.kinds import KINDS, load_plugins

    load_plugins()
    tables = {"workflow.host": durable.WORKFLOW_HOST_FIELDS, "temporal.client": durable.TEMPORAL_CLIENT_FIELDS,
              "temporal.worker": durable.TEMPORAL_WORKER_FIELDS}
    ours = {k: s for k, s in KINDS.items() if s.distribution in ("", "wippy") and k != "registry.entry"}
    undeclared = sorted(k for k, s in ours.items() if s.fields is None and k not in tables)
    assert not undeclared
    for kind, table in tables.items():  # not wired yet, or wired to these tables
        assert KINDS[kind].fields in (None, table), kind
