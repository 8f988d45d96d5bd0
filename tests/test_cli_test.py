"""``wippy test``: discovery, order, filters, progress, failures, JUnit, timeouts."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from wippy.registry import load_project
from wippy.runner import discover

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "cli_project"

ORDER = [
    "tests:unsuited",  # no suite sorts first
    "tests:zero_first",  # alpha, order 1
    "tests:add_calls",  # alpha, order 2
    "tests:a_unordered",  # alpha, no order: after the ordered ones
    "tests:raises",  # beta 1
    "tests:returns_error",  # beta 2
    "tests:returns_false",  # beta 3
    "tests:assert_fails",  # beta 10
]
FAILURES = {
    "tests:raises": "Internal: tests/cases.lua:15: kaboom",
    "tests:returns_error": "Conflict: version mismatch (at tests/cases.lua:19)",
    "tests:returns_false": "returned false",
    "tests:assert_fails": "Internal: tests/cases.lua:25: arithmetic is broken",
}
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (ok  |FAIL) (\S+) \([\d.]+ ms\)$")


def wippy_test(*args: str, project: Path = PROJECT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", "test", str(project), *args],
                          capture_output=True, text=True, timeout=60)


class Runs:
    """Every ``wippy test`` command of this module, started together (each one is a
    fresh interpreter); ``runs["name"]`` waits for one."""

    def __init__(self, pool: ThreadPoolExecutor, tmp: Path) -> None:
        self.junit = tmp / "reports" / "junit.xml"
        self.spin_junit = tmp / "spin.xml"
        hang = hanging_project(tmp / "hang")
        specs: dict[str, tuple[tuple[str, ...], Path]] = {
            "full": (("--junit", str(self.junit)), PROJECT),
            "substring": (("--filter", "zero"), PROJECT),
            "glob": (("--filter", "tests:re*", "--filter", "*unsuited"), PROJECT),
            "none": (("--filter", "no-such-test"), PROJECT),
            "broken": ((), FIXTURES / "broken_project"),
            "bad_timeout": (("--timeout", "soon"), PROJECT),
            "waits": (("--timeout", "1", "--filter", "*_ok", "--filter", "*waits"), hang),
            "spins": (("--timeout", "1", "--filter", "*_ok", "--filter", "*spins", "--junit",
                       str(self.spin_junit)), hang),
            "example": ((), Path(__file__).parent.parent / "examples" / "hello"),
        }
        self.futures: dict[str, Future[subprocess.CompletedProcess[str]]] = {
            name: pool.submit(wippy_test, *args, project=project) for name, (args, project) in specs.items()
        }

    def __getitem__(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield Runs(pool, tmp_path_factory.mktemp("cli_test"))


def progress(stdout: str) -> list[tuple[str, str]]:
    """(mark, id) of each progress line, checking the counters."""
    found = []
    for line in stdout.splitlines():
        m = PROGRESS.match(line)
        if m:
            assert int(m.group(1)) == len(found) + 1
            found.append((m.group(3).strip(), m.group(4)))
    return found


def test_discovery_order_is_suite_then_order_then_id() -> None:
    assert [e.id for e in discover(load_project(PROJECT))] == ORDER


def test_run_shows_progress_in_order(runs: Runs) -> None:
    proc = runs["full"]
    assert progress(proc.stdout) == [("FAIL" if t in FAILURES else "ok", t) for t in ORDER]
    assert all(line.endswith(f"/{len(ORDER)}]") for line in re.findall(r"^\[\d+/\d+\]", proc.stdout, re.M))


def test_run_lists_each_failure_with_its_error(runs: Runs) -> None:
    proc = runs["full"]
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    assert failed == [f"FAILED {t}: {FAILURES[t]}" for t in ORDER if t in FAILURES]


def test_run_ends_with_the_counts_and_exits_1(runs: Runs) -> None:
    proc = runs["full"]
    assert proc.returncode == 1
    assert proc.stdout.endswith("\n4 passed, 4 failed\n")
    assert proc.stderr == ""


def test_junit_report(runs: Runs) -> None:
    assert runs["full"].returncode == 1
    root = ET.parse(runs.junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("8", "4", "0")
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ORDER
    assert [s.get("name") for s in root.findall("testsuite")] == ["default", "alpha", "beta"]
    beta = root.find("testsuite[@name='beta']")
    assert beta is not None and (beta.get("tests"), beta.get("failures")) == ("4", "4")
    for case in cases:
        failure = case.find("failure")
        name = case.get("name")
        if name not in FAILURES:
            assert failure is None, name
            continue
        assert failure is not None, name
        assert failure.get("message") == FAILURES[name]
        assert (failure.text or "").startswith(FAILURES[name])
    raises = root.find("testsuite/testcase[@name='tests:raises']/failure")
    assert raises is not None and raises.get("type") == "Internal"
    assert "stack traceback:" in (raises.text or "")
    assert float(cases[0].get("time") or "x") >= 0


def test_filter_by_substring_runs_only_matches(runs: Runs) -> None:
    proc = runs["substring"]
    assert progress(proc.stdout) == [("ok", "tests:zero_first")]
    assert proc.stdout.splitlines()[-1] == "1 passed, 0 failed"
    assert proc.returncode == 0


def test_filter_by_glob_and_repeated_filters(runs: Runs) -> None:
    proc = runs["glob"]
    assert progress(proc.stdout) == [
        ("ok", "tests:unsuited"),
        ("FAIL", "tests:returns_error"),
        ("FAIL", "tests:returns_false"),
    ]
    assert proc.stdout.splitlines()[-1] == "1 passed, 2 failed"
    assert proc.returncode == 1


def test_no_tests_found_says_so_and_passes(runs: Runs) -> None:
    proc = runs["none"]
    assert proc.returncode == 0
    assert "no tests found" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "0 passed, 0 failed"


def test_project_that_fails_to_load_exits_1(runs: Runs) -> None:
    proc = runs["broken"]
    assert proc.returncode == 1
    assert "problems found while loading the project" in proc.stderr


def test_bad_timeout_is_a_usage_error(runs: Runs) -> None:
    proc = runs["bad_timeout"]
    assert proc.returncode == 2
    assert "--timeout" in proc.stderr


def hanging_project(root: Path) -> Path:
    root.mkdir()
    (root / "_index.yaml").write_text(textwrap.dedent("""\
        namespace: t
        entries:
          - {name: a_ok, kind: function.lua, meta: {type: test, order: 1}, source: file://t.lua, method: ok}
          - {name: b_waits, kind: function.lua, meta: {type: test, order: 2}, source: file://t.lua, method: waits}
          - {name: c_ok, kind: function.lua, meta: {type: test, order: 3}, source: file://t.lua, method: ok}
          - {name: d_spins, kind: function.lua, meta: {type: test, order: 4}, source: file://t.lua, method: spins}
          - {name: e_ok, kind: function.lua, meta: {type: test, order: 5}, source: file://t.lua, method: ok}
        """))
    (root / "t.lua").write_text(textwrap.dedent("""\
        return {
          ok = function() return true end,
          waits = function() return channel.new():receive() end,
          spins = function() while true do end end,
        }
        """))
    return root


def test_timeout_fails_a_waiting_test_and_the_run_goes_on(runs: Runs) -> None:
    proc = runs["waits"]
    assert progress(proc.stdout) == [("ok", "t:a_ok"), ("FAIL", "t:b_waits"), ("ok", "t:c_ok"), ("ok", "t:e_ok")]
    assert "FAILED t:b_waits: Timeout: did not finish within 1 s" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "3 passed, 1 failed"
    assert proc.returncode == 1


def test_test_spinning_in_lua_is_stopped_by_the_cpu_budget_and_the_run_goes_on(runs: Runs) -> None:
    proc = runs["spins"]
    assert progress(proc.stdout) == [("ok", "t:a_ok"), ("ok", "t:c_ok"), ("FAIL", "t:d_spins"), ("ok", "t:e_ok")]
    assert "FAILED t:d_spins: LimitExceeded: function call {t:d_spins#fn|" not in proc.stdout  # no PID made for it
    assert "FAILED t:d_spins: LimitExceeded: function call " in proc.stdout and "over the CPU budget" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "3 passed, 1 failed"
    assert proc.returncode == 1
    cases = {c.get("name"): c for c in ET.parse(runs.spin_junit).getroot().iter("testcase")}
    assert cases["t:e_ok"].find("skipped") is None
    assert cases["t:d_spins"].find("failure") is not None


def test_example_project_passes(runs: Runs) -> None:
    proc = runs["example"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^\d+ passed, 0 failed\n\Z", proc.stdout, re.M)
