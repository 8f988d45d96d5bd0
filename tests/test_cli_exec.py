"""``wippy exec``: results as JSON on stdout, every failure on stderr with its exit code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from wippy.errors import LoadError, WippyError
from wippy.lua.convert import TypedValue
from wippy.registry import load_project

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "cli_project"
WIPPY = [sys.executable, "-m", "wippy.cli"]

# Every command these tests check, started together (each one is a fresh interpreter).
RUNS: dict[str, tuple[list[str], Path | None]] = {
    "add": (["exec", str(PROJECT), "app:add", "2", "3"], None),
    "echo": (["exec", str(PROJECT), "app:echo", '{"a": [1, 2]}', '"text"', "null", "-1.5", "true"], None),
    "nothing": (["exec", str(PROJECT), "app:nothing"], None),
    "cwd": (["exec", "app:add", "1", "2"], PROJECT),
    "shapes": (["exec", str(PROJECT), "app:shapes"], None),
    "job": (["exec", str(PROJECT), "app:job", "4"], None),
    "chatty": (["exec", str(PROJECT), "app:chatty", '"Ada"'], None),
    "bad_json": (["exec", str(PROJECT), "app:add", "1", "{x: 1}"], None),
    "bare_word": (["exec", str(PROJECT), "app:chatty", "Ada"], None),
    "unknown": (["exec", str(PROJECT), "app:ad"], None),
    "not_callable": (["exec", str(PROJECT), "app:procs"], None),
    "boom": (["exec", str(PROJECT), "app:boom"], None),
    "refuse": (["exec", str(PROJECT), "app:refuse", '"too big"'], None),
    "job_fails": (["exec", str(PROJECT), "app:job_fails"], None),
    "broken": (["exec", str(FIXTURES / "broken_project"), "app:hello"], None),
    "no_entry": (["exec", str(PROJECT)], None),
    "several": (["exec", str(PROJECT), "app:several"], None),
    "clock": (["exec", str(PROJECT), "app:clock"], None),
    "message": (["exec", str(PROJECT), "app:job_message"], None),
    "stuck": (["exec", str(PROJECT), "app:stuck"], None),
    "job_stuck": (["exec", str(PROJECT), "app:job_stuck"], None),
    "timeout": (["exec", str(PROJECT), "app:wait_forever", "--timeout", "0.5"], None),
    "bad_timeout": (["exec", str(PROJECT), "app:add", "1", "2", "--timeout", "soon"], None),
    "workflow": (["exec", str(PROJECT), "app:flow"], None),
    "silent": (["exec", "-s", str(PROJECT), "app:chatty", '"Ada"'], None),
    "greet_wrong_type": (["exec", str(FIXTURES.parent.parent / "examples" / "hello"), "app:greet", '"Ada"'], None),
}


# Ctrl-C cases: (entry, what it prints to stderr once it is running).
INTERRUPTS = {
    "wait_forever": ("app:wait_forever", "waiting"),
    "job_wait": ("app:job_wait", "job waiting"),
    "spin": ("app:spin", "spinning"),
}

Runs = dict[str, Future[Any]]


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        started: Runs = {}
        if os.name == "posix":
            started.update({f"interrupt:{k}": pool.submit(interrupt_after_output, *v) for k, v in INTERRUPTS.items()})
        started.update({name: pool.submit(wippy, *args, cwd=cwd) for name, (args, cwd) in RUNS.items()})
        yield started


def wippy(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WIPPY, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def interrupt_after_output(entry: str, expect: str) -> tuple[int, str, str, float]:
    """Start ``exec entry``, wait for its Lua ``print`` of ``expect`` on stderr, send SIGINT;
    returns exit code, stdout, the rest of stderr and seconds from SIGINT to exit."""
    proc = subprocess.Popen([*WIPPY, "exec", str(PROJECT), entry], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first == expect + "\n", first + proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        return proc.returncode, out, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_no_traceback(proc: subprocess.CompletedProcess[str] | tuple[str, str]) -> None:
    out, err = (proc.stdout, proc.stderr) if isinstance(proc, subprocess.CompletedProcess) else proc
    assert "Traceback" not in out + err


# Results ------------------------------------------------------------------------------
def test_function_result_is_json(runs: Runs) -> None:
    proc = runs["add"].result()
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "5\n", "")


def test_json_arguments_of_every_shape_arrive(runs: Runs) -> None:
    proc = runs["echo"].result()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"n": 5, "args": {"1": {"a": [1, 2]}, "2": "text", "4": -1.5, "5": True}}


def test_nil_result_prints_null(runs: Runs) -> None:
    proc = runs["nothing"].result()
    assert (proc.returncode, proc.stdout) == (0, "null\n")


def test_project_defaults_to_current_directory(runs: Runs) -> None:
    proc = runs["cwd"].result()
    assert (proc.returncode, proc.stdout) == (0, "3\n")


def test_binary_nested_error_and_nan_values_print_as_json(runs: Runs) -> None:
    proc = runs["shapes"].result()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data == {
        "text": "héllo",
        "binary": "\\xff\x00\\xfe",  # bytes that are not UTF-8 show as \xNN
        "nested": {"list": [1, 2.5, {"deep": True}], "empty": {}},
        "sparse": {"1": "a", "3": "c"},
        "err": {"kind": "Conflict", "message": "stale", "details": {"version": 3}},
        "nan": "NaN",
    }
    assert "héllo" in proc.stdout  # not \u-escaped
    assert list(data) == sorted(data)  # Lua has no key order: keys come out sorted


def test_process_entry_runs_to_its_exit(runs: Runs) -> None:
    proc = runs["job"].result()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"got": 4, "pid_ok": True}


def test_lua_print_goes_to_stderr_so_stdout_is_only_json(runs: Runs) -> None:
    proc = runs["chatty"].result()
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"greeted": "Ada"}
    assert proc.stderr == "hello from Lua, Ada\n"


def test_keys_and_special_numbers_print_sensibly() -> None:
    from wippy.cli import _jsonable

    assert _jsonable({b"\xff": 1, 2: [float("inf"), float("-inf")], True: None}) == {
        "\\xff": 1,
        "2": ["Infinity", "-Infinity"],
        "true": None,
    }
    assert list(_jsonable({10: "x", "b": 1, 2: "y", "a": 2})) == ["2", "10", "a", "b"]
    err = WippyError("Invalid", "bad", details={"field": "name"})
    assert _jsonable([err]) == [{"kind": "Invalid", "message": "bad", "details": {"field": "name"}}]


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_time_and_duration_print_as_rfc3339_and_go_text(runs: Runs) -> None:
    proc = runs["clock"].result()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["at"] == "2023-11-14T22:13:20.000000005Z"
    assert data["zone"] == "2023-11-14T23:13:20+01:00"  # in its own zone
    assert RFC3339.match(data["local_now"]), data["local_now"]
    assert data["took"] == "1m30s"


def test_time_values_from_lua_convert(tmp_path: Path) -> None:
    """The printer against the value the time module really hands Python (not a made-up
    one): what a Lua Time is as Python data is the time module's business."""
    import asyncio

    from wippy.cli import _jsonable
    from wippy.host.runtime import Runtime

    async def clock() -> Any:
        async with Runtime(load_project(PROJECT), output=lambda line: None) as runtime:
            return await runtime.call("app:clock")

    data = asyncio.run(clock())
    assert isinstance(data["at"], TypedValue) and isinstance(data["took"], TypedValue)
    out = _jsonable(data)
    assert out["at"] == "2023-11-14T22:13:20.000000005Z" and out["took"] == "1m30s"
    assert RFC3339.match(out["local_now"])


def test_a_returned_message_prints_topic_sender_and_payload(runs: Runs) -> None:
    proc = runs["message"].result()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["topic"] == "greeting" and data["payload"] == {"text": "hi", "n": 2}
    assert re.fullmatch(r"\{app:procs\|\w+\}", data["from"]), data["from"]


def test_every_result_of_a_function_prints_trailing_nils_left_out(runs: Runs) -> None:
    proc = runs["several"].result()
    assert proc.returncode == 0, proc.stderr
    decoder, docs, text = json.JSONDecoder(), [], proc.stdout.strip()
    while text:
        value, end = decoder.raw_decode(text)
        docs.append(value)
        text = text[end:].strip()
    assert docs == [1, 2, [3]]


# Errors -------------------------------------------------------------------------------
def test_bad_json_argument_names_it_and_exits_2(runs: Runs) -> None:
    proc = runs["bad_json"].result()
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("argument #2 is not valid JSON (")
    assert "{x: 1}" in proc.stderr
    assert_no_traceback(proc)


def test_bare_word_argument_gets_a_quoting_hint(runs: Runs) -> None:
    proc = runs["bare_word"].result()
    assert proc.returncode == 2
    assert "argument #1 is not valid JSON" in proc.stderr
    assert "'\"Ada\"'" in proc.stderr


def test_project_without_entry_is_a_usage_error(runs: Runs) -> None:
    proc = runs["no_entry"].result()
    assert proc.returncode == 2
    assert proc.stderr.startswith("the entry ID must be namespace:name, got ")
    assert "wippy exec" in proc.stderr and "NAMESPACE:NAME" in proc.stderr


def test_unknown_entry_is_not_found(runs: Runs) -> None:
    proc = runs["unknown"].result()
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: NotFound: entry app:ad not found")
    assert "did you mean" in proc.stderr and "app:add" in proc.stderr
    assert_no_traceback(proc)


def test_entry_that_is_not_callable_is_invalid(runs: Runs) -> None:
    proc = runs["not_callable"].result()
    assert proc.returncode == 1
    assert proc.stderr == "error: Invalid: app:procs is a process.host entry and cannot be called as a function\n"


def test_lua_error_shows_kind_message_and_location(runs: Runs) -> None:
    proc = runs["boom"].result()
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: Internal: funcs.lua:22: attempt to index a nil value (local 't')"
    assert lines[1] == "stack traceback:"
    assert "funcs.lua:22:" in lines[2]
    assert_no_traceback(proc)


def test_returned_error_shows_kind_message_and_where_it_was_made(runs: Runs) -> None:
    proc = runs["refuse"].result()
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: Invalid: refused: too big"
    assert lines[1] == "stack traceback:"
    assert "funcs.lua:26:" in lines[2]


def test_process_error_is_reported(runs: Runs) -> None:
    proc = runs["job_fails"].result()
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: Unavailable: job could not start\n")
    assert "job.lua:9:" in proc.stderr


def test_project_that_fails_to_load_lists_every_problem(runs: Runs) -> None:
    broken = FIXTURES / "broken_project"
    with pytest.raises(LoadError) as info:
        load_project(broken)
    proc = runs["broken"].result()
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(info.value.problems) > 3
    for problem in info.value.problems:
        assert str(problem) in proc.stderr
    assert_no_traceback(proc)


# Ctrl-C -------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
@pytest.mark.parametrize("case", ["wait_forever", "job_wait"])
def test_ctrl_c_while_waiting_stops_cleanly(runs: Runs, case: str) -> None:
    code, out, err, took = runs[f"interrupt:{case}"].result()
    assert (code, out) == (130, "")
    lines = err.splitlines()
    assert lines[0] == "interrupted"
    entry = INTERRUPTS[case][0]
    assert lines[1].startswith(f"{entry} had not finished after ") and lines[1].endswith("; still running:")
    assert entry in lines[2]  # what was still running: a hint at what it waited for
    assert took < 5


@pytest.mark.skipif(os.name != "posix", reason="SIGINT")
def test_ctrl_c_while_lua_spins_still_exits_130(runs: Runs) -> None:
    code, out, err, took = runs["interrupt:spin"].result()
    assert code == 130
    assert out == ""
    assert err.startswith("interrupted")
    assert_no_traceback((out, err))
    assert took < 8


# Runs that would never end ----------------------------------------------------------
@pytest.mark.parametrize(("case", "entry", "who"), [
    ("stuck", "app:stuck", "  app:stuck (the call itself)"),
    ("job_stuck", "app:job_stuck", "app:job_stuck  (0 messages in its inbox)"),
])
def test_a_deadlock_is_reported_instead_of_hanging(runs: Runs, case: str, entry: str, who: str) -> None:
    proc = runs[case].result()  # (the runs have a 60 s timeout: a hang fails there)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"error: {entry} can never finish: every actor is waiting and nothing can wake one" in proc.stderr
    assert who in proc.stderr
    assert_no_traceback(proc)


def test_timeout_stops_the_run_and_says_what_was_running(runs: Runs) -> None:
    proc = runs["timeout"].result()
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "waiting"  # its print, before the timeout
    assert lines[1] == "error: Timeout: app:wait_forever did not finish within 0.5s"
    assert lines[2:] == ["still running:", "  app:wait_forever (the call itself)"]


def test_timeout_must_be_a_number(runs: Runs) -> None:
    proc = runs["bad_timeout"].result()
    assert proc.returncode == 2
    assert "--timeout: expected a number of seconds, got 'soon'" in proc.stderr


def test_a_workflow_entry_says_how_to_start_it(runs: Runs) -> None:
    proc = runs["workflow"].result()
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: Invalid: app:flow is a workflow.lua entry: a workflow runs durably on "
                                  "a workflow host, not as a call; add a workflow.host entry")
    assert "process.spawn" in proc.stderr


def test_silent_hides_lua_print(runs: Runs) -> None:
    proc = runs["silent"].result()
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {"greeted": "Ada"}


def test_a_wrong_argument_type_is_an_error_not_an_empty_table(runs: Runs) -> None:
    proc = runs["greet_wrong_type"].result()  # the README's example, given a string instead of an object
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: Invalid: expected an object {name, langs}, got a string\n")
