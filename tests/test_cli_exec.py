"""``wippy exec``: results as JSON on stdout, every failure on stderr with its exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wippy.errors import LoadError, WippyError
from wippy.lua.convert import TypedValue
from wippy.registry import load_project

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "cli_project"
WIPPY = [sys.executable, "-m", "wippy.cli"]


def wippy(*args: str, cwd: Path | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WIPPY, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def exec_(entry: str, *args: str) -> subprocess.CompletedProcess[str]:
    return wippy("exec", str(PROJECT), entry, *args)


def assert_no_traceback(proc: subprocess.CompletedProcess[str] | tuple[str, str]) -> None:
    out, err = (proc.stdout, proc.stderr) if isinstance(proc, subprocess.CompletedProcess) else proc
    assert "Traceback" not in out + err


# Results ------------------------------------------------------------------------------
def test_function_result_is_json() -> None:
    proc = exec_("app:add", "2", "3")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "5\n", "")


def test_json_arguments_of_every_shape_arrive() -> None:
    proc = exec_("app:echo", '{"a": [1, 2]}', '"text"', "null", "-1.5", "true")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"n": 5, "args": {"1": {"a": [1, 2]}, "2": "text", "4": -1.5, "5": True}}


def test_nil_result_prints_null() -> None:
    proc = exec_("app:nothing")
    assert (proc.returncode, proc.stdout) == (0, "null\n")


def test_project_defaults_to_current_directory() -> None:
    proc = wippy("exec", "app:add", "1", "2", cwd=PROJECT)
    assert (proc.returncode, proc.stdout) == (0, "3\n")


def test_binary_nested_error_and_nan_values_print_as_json() -> None:
    proc = exec_("app:shapes")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == {
        "text": "héllo",
        "binary": "\\xff\x00\\xfe",  # bytes that are not UTF-8 show as \xNN
        "nested": {"list": [1, 2.5, {"deep": True}], "empty": {}},
        "sparse": {"1": "a", "3": "c"},
        "err": {"kind": "CONFLICT", "message": "stale", "details": {"version": 3}},
        "nan": "NaN",
    }
    assert "héllo" in proc.stdout  # not \u-escaped
    assert list(data) == sorted(data)  # Lua has no key order: keys come out sorted


def test_process_entry_runs_to_its_exit() -> None:
    proc = exec_("app:job", "4")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"got": 4, "pid_ok": True}


def test_lua_print_goes_to_stderr_so_stdout_is_only_json() -> None:
    proc = exec_("app:chatty", '"Ada"')
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"greeted": "Ada"}
    assert proc.stderr == "hello from Lua, Ada\n"


def test_typed_values_print_sensibly() -> None:
    from wippy.cli import _jsonable

    assert _jsonable(TypedValue("message", {"topic": "ping", "payload": b"\x01\xff"})) == {
        "payload": "\x01\\xff",
        "topic": "ping",
    }
    assert _jsonable({b"\xff": 1, 2: [float("inf"), float("-inf")], True: None}) == {
        "\\xff": 1,
        "2": ["Infinity", "-Infinity"],
        "true": None,
    }
    err = WippyError("INVALID", "bad", details={"field": "name"})
    assert _jsonable([err]) == [{"kind": "INVALID", "message": "bad", "details": {"field": "name"}}]


def test_time_and_duration_print_as_text() -> None:
    pytest.importorskip("wippy.lua.modules.time")
    from wippy.cli import _jsonable

    t = TypedValue("time", {"unix": 1_700_000_000, "nsec": 5, "zone": "UTC"})
    assert _jsonable({"at": t}) == {"at": "2023-11-14T22:13:20.000000005Z"}
    assert _jsonable(TypedValue("duration", {"ns": 90 * 10**9})) == "1m30s"


# Errors -------------------------------------------------------------------------------
def test_bad_json_argument_names_it_and_exits_2() -> None:
    proc = exec_("app:add", "1", "{x: 1}")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("argument #2 is not valid JSON (")
    assert "{x: 1}" in proc.stderr
    assert_no_traceback(proc)


def test_bare_word_argument_gets_a_quoting_hint() -> None:
    proc = exec_("app:chatty", "Ada")
    assert proc.returncode == 2
    assert "argument #1 is not valid JSON" in proc.stderr
    assert "'\"Ada\"'" in proc.stderr


def test_unknown_entry_is_not_found() -> None:
    proc = exec_("app:ad")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: NOT_FOUND: entry app:ad not found")
    assert "did you mean" in proc.stderr and "app:add" in proc.stderr
    assert_no_traceback(proc)


def test_entry_that_is_not_callable_is_invalid() -> None:
    proc = exec_("app:procs")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: INVALID: app:procs is a process.host entry")


def test_lua_error_shows_kind_message_and_location() -> None:
    proc = exec_("app:boom")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: INTERNAL: funcs.lua:22: attempt to index a nil value (local 't')"
    assert lines[1] == "stack traceback:"
    assert "funcs.lua:22:" in lines[2]
    assert_no_traceback(proc)


def test_returned_error_shows_kind_message_and_where_it_was_made() -> None:
    proc = exec_("app:refuse", '"too big"')
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: INVALID: refused: too big"
    assert lines[1] == "stack traceback:"
    assert "funcs.lua:26:" in lines[2]


def test_process_error_is_reported() -> None:
    proc = exec_("app:job_fails")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: UNAVAILABLE: job could not start\n")
    assert "job.lua:9:" in proc.stderr


def test_project_that_fails_to_load_lists_every_problem() -> None:
    broken = FIXTURES / "broken_project"
    with pytest.raises(LoadError) as info:
        load_project(broken)
    proc = wippy("exec", str(broken), "app:hello")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(info.value.problems) > 3
    for problem in info.value.problems:
        assert str(problem) in proc.stderr
    assert_no_traceback(proc)


# Ctrl-C -------------------------------------------------------------------------------
def interrupt_after_output(entry: str, expect: str) -> tuple[int, str, str, float]:
    """Start ``exec entry``, wait for the Lua ``print`` ``expect`` on stderr, send SIGINT."""
    proc = subprocess.Popen([*WIPPY, "exec", str(PROJECT), entry], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline() == expect + "\n"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        return proc.returncode, out, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
@pytest.mark.parametrize(
    "entry, expect",
    [("app:wait_forever", "waiting"), ("app:job_wait", "job waiting")],
)
def test_ctrl_c_while_waiting_stops_cleanly(entry: str, expect: str) -> None:
    code, out, err, took = interrupt_after_output(entry, expect)
    assert (code, out, err) == (130, "", "interrupted\n")
    assert took < 2


@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
def test_ctrl_c_while_lua_spins_still_exits_130() -> None:
    code, out, err, took = interrupt_after_output("app:spin", "spinning")
    assert code == 130
    assert out == ""
    assert err.startswith("interrupted")
    assert_no_traceback((out, err))
    assert took < 5
