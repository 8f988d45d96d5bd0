"""configure_logging: how the command line shows log records (Lua logger calls included)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from tests.conftest import Project, run_lua
from wippy.lua.modules.logger import configure_logging, suspend_console

LUA = """
    local logger = require("logger")
    logger:debug("debug line")
    logger:info("user logged in", {user_id = 42, ok = true, tags = {"a"}})
    logger:named("auth"):with({req = "r1"}):warn("slow", {ms = 1.5})
    return true
"""


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    configure_logging(None)
    logging.getLogger("wippy").setLevel(logging.NOTSET)


def test_console_lines(project: Project, stream: io.StringIO) -> None:
    configure_logging(logging.INFO, stream=stream)
    run_lua(project, LUA, modules=["logger"])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # debug is below the level
    ts = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(ts + '\tINFO\twippy.lua\tuser logged in\t{"ok": true, "tags": \\["a"\\], "user_id": 42}',
                        lines[0]), lines[0]
    assert re.fullmatch(ts + '\tWARN\twippy.lua.auth\tslow\t{"ms": 1.5, "req": "r1"}', lines[1]), lines[1]


def test_debug_level(project: Project, stream: io.StringIO) -> None:
    configure_logging(logging.DEBUG, stream=stream)
    run_lua(project, LUA, modules=["logger"])
    assert "\tDEBUG\twippy.lua\tdebug line" in stream.getvalue()


def test_json_lines(project: Project, stream: io.StringIO) -> None:
    configure_logging(logging.INFO, json_lines=True, stream=stream)
    run_lua(project, LUA, modules=["logger"])
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["logger"], r["msg"]) for r in records] == [("info", "wippy.lua", "user logged in"),
                                                                      ("warn", "wippy.lua.auth", "slow")]
    assert records[0]["user_id"] == 42 and records[0]["ok"] is True and records[1]["req"] == "r1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", records[0]["ts"])


def test_silent(project: Project, stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO, stream=stream)
    configure_logging(None)  # replaces the previous setting
    run_lua(project, LUA, modules=["logger"])
    logging.getLogger("wippy.scheduler").error("runtime error")
    assert stream.getvalue() == "" and "runtime error" not in capsys.readouterr().err


def test_default_stream_is_stderr_at_the_time(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.INFO)
    try:
        logging.getLogger("wippy.x").info("to stderr")
    finally:
        configure_logging(None)
    assert "\tINFO\twippy.x\tto stderr" in capsys.readouterr().err


def test_python_records_and_tracebacks(stream: io.StringIO) -> None:
    log = logging.getLogger("wippy.test")
    configure_logging(logging.INFO, stream=stream)
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed %s", "here")
    assert "\tERROR\twippy.test\tfailed here\tValueError: bad value" in stream.getvalue()
    assert "Traceback" not in stream.getvalue()
    configure_logging(logging.INFO, stream=stream, stack_traces=True)
    try:
        raise ValueError("again")
    except ValueError:
        log.exception("failed")
    assert "Traceback" in stream.getvalue()
    configure_logging(logging.INFO, json_lines=True, stream=stream, stack_traces=True)
    try:
        raise KeyError("k")
    except KeyError:
        log.exception("json failure")
    record = json.loads(stream.getvalue().splitlines()[-1]) if stream.getvalue().endswith("}\n") else None
    assert record is not None and record["error"] == "KeyError: 'k'" and "Traceback" in record["stacktrace"]


def test_suspend_nests(stream: io.StringIO) -> None:
    configure_logging(logging.INFO, stream=stream)
    log = logging.getLogger("wippy.test")
    suspend_console(True)
    suspend_console(True)
    log.info("hidden 1")
    suspend_console(False)
    log.info("hidden 2")
    suspend_console(False)
    log.info("shown")
    suspend_console(False)  # more resumes than suspends: harmless
    log.info("shown too")
    assert "hidden" not in stream.getvalue() and "shown too" in stream.getvalue()
