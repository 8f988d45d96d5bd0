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
     "unknown kind 'function.lau' (known kinds: function.lua, library.lua, process.host, process.lua, "
     "process.service, registry.entry, temporal.client, temporal.worker, workflow.host, workflow.lua"),
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
