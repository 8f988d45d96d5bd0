"""The Lua test runner behind ``wippy test``: entries with ``meta.type: test``.

A test is a ``function.lua`` entry called with no arguments. It passes when it returns
without error and its first result is not ``false``; it fails when it raises, returns
``nil, err``, returns ``false``, or runs past its timeout.
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from wippy.errors import TIMEOUT, WippyError
from wippy.host.runtime import Runtime
from wippy.interrupt import Supervisor
from wippy.registry import Entry, Registry

PASSED, FAILED, NOT_RUN = "passed", "failed", "not run"


@dataclass
class TestResult:
    entry_id: str
    suite: str
    passed: bool
    seconds: float
    error: str | None = None  # one line: KIND: message, plus the Lua location
    kind: str | None = None
    stack: str | None = None
    status: str = ""

    __test__ = False  # not a pytest test class

    def __post_init__(self) -> None:
        if not self.status:
            self.status = PASSED if self.passed else FAILED


def _order(entry: Entry) -> float:
    order = entry.meta.get("order")
    if isinstance(order, bool):
        return math.inf
    if isinstance(order, (int, float)):
        return float(order)
    if isinstance(order, str):
        try:
            return float(order)
        except ValueError:
            pass
    return math.inf


def matches(entry_id: str, patterns: Iterable[str]) -> bool:
    """Whether the ID contains one of ``patterns`` or matches it as a glob (``*``, ``?``, ``[]``)."""
    return any(p in entry_id or fnmatch.fnmatchcase(entry_id, p) for p in patterns)


def discover(registry: Registry, pattern: str | Iterable[str] | None = None) -> list[Entry]:
    """Test entries ordered by ``meta.suite``, then ``meta.order`` (entries without one
    last), then ID. ``pattern``: one or more filters, see :func:`matches`."""
    tests = [e for e in registry.of_kind("function.lua") if e.meta.get("type") == "test"]
    if pattern:
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        tests = [e for e in tests if matches(e.id, patterns)]
    return sorted(tests, key=lambda e: (str(e.meta.get("suite") or ""), _order(e), e.id))


_FRAME = re.compile(r"^\s*(\S.*?:\d+):", re.MULTILINE)


def error_location(err: WippyError) -> str | None:
    """``file:line`` of the innermost Lua frame of ``err``, if it has a stack."""
    if not err.stack:
        return None
    m = _FRAME.search(err.stack.partition("\n")[2])
    return m.group(1) if m else None


def describe_error(err: WippyError) -> str:
    """``KIND: message (at file:line)`` on one line; the location only when the message
    does not already start with it (``error("text")`` puts it there)."""
    message = " ".join(err.message.split("\n")) if err.message else "(no message)"
    text = f"{err.kind}: {message}"
    where = error_location(err)
    if where and not message.startswith(where):
        text += f" (at {where})"
    return text


async def run_tests(
    runtime: Runtime,
    tests: list[Entry],
    report: Callable[[TestResult, int, int], None] | None = None,
    timeout: float | None = 60.0,
    *,
    watchdog: Supervisor | None = None,
    on_stuck: Callable[[list[TestResult]], int] | None = None,
) -> list[TestResult]:
    """Run ``tests`` one after another in ``runtime``.

    ``timeout`` (seconds, None for none) fails a test that does not finish in time. A test
    stuck in Lua code that never yields cannot be stopped that way; with a ``watchdog``,
    ``on_stuck`` then gets every result (the stuck test failed, the rest not run) and
    returns the process exit code."""
    results: list[TestResult] = []
    total = len(tests)
    for i, entry in enumerate(tests, 1):
        suite = str(entry.meta.get("suite") or "")
        started = time.perf_counter()
        if watchdog is not None and timeout and on_stuck is not None:
            watchdog.arm(timeout, _stuck_handler(results, tests, i - 1, timeout, started, on_stuck))
        try:
            result = await _run_one(runtime, entry, suite, timeout, started)
        finally:
            if watchdog is not None:
                watchdog.disarm()
        results.append(result)
        if report:
            report(result, i, total)
    return results


async def _run_one(runtime: Runtime, entry: Entry, suite: str, timeout: float | None, started: float) -> TestResult:
    def failed(error: str, kind: str | None = None, stack: str | None = None) -> TestResult:
        return TestResult(entry.id, suite, False, time.perf_counter() - started, error, kind, stack)

    try:
        if timeout:
            value: Any = await asyncio.wait_for(runtime.call(entry.id), timeout)
        else:
            value = await runtime.call(entry.id)
    except TimeoutError:
        return failed(f"{TIMEOUT}: did not finish within {_seconds(timeout)}", TIMEOUT)
    except WippyError as err:
        return failed(describe_error(err), err.kind, err.stack)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a runtime bug must not end the whole run
        return failed(f"INTERNAL: test runner error: {type(exc).__name__}: {exc}", "Internal")
    if value is False:
        return failed("returned false")
    return TestResult(entry.id, suite, True, time.perf_counter() - started)


def _stuck_handler(
    results: list[TestResult],
    tests: list[Entry],
    index: int,
    timeout: float,
    started: float,
    on_stuck: Callable[[list[TestResult]], int],
) -> Callable[[], int]:
    def handler() -> int:
        entry = tests[index]
        stuck = TestResult(
            entry.id,
            str(entry.meta.get("suite") or ""),
            False,
            time.perf_counter() - started,
            f"{TIMEOUT}: did not finish within {_seconds(timeout)} and its Lua code never "
            "yielded, so it could not be stopped; the run ended here",
            TIMEOUT,
        )
        rest = [
            TestResult(e.id, str(e.meta.get("suite") or ""), False, 0.0, "not run: an earlier test hung",
                       status=NOT_RUN)
            for e in tests[index + 1:]
        ]
        return on_stuck([*results, stuck, *rest])

    return handler


def _seconds(value: float | None) -> str:
    return f"{value:g} s" if value is not None else "?"


def summary_line(results: list[TestResult]) -> str:
    passed = sum(r.status == PASSED for r in results)
    failed = sum(r.status == FAILED for r in results)
    return f"{passed} passed, {failed} failed"


def write_junit(results: list[TestResult], path: Path) -> None:
    """A JUnit XML report: one ``<testsuite>`` per ``meta.suite`` inside ``<testsuites>``;
    a failure carries the one-line error as ``message``, its kind as ``type`` and the
    error plus Lua stack as text; tests that never ran are ``<skipped>``."""
    root = ET.Element(
        "testsuites",
        name="wippy",
        tests=str(len(results)),
        failures=str(sum(r.status == FAILED for r in results)),
        skipped=str(sum(r.status == NOT_RUN for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    by_suite: dict[str, list[TestResult]] = {}
    for r in results:
        by_suite.setdefault(r.suite, []).append(r)
    for name, group in by_suite.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name or "default",
            tests=str(len(group)),
            failures=str(sum(r.status == FAILED for r in group)),
            errors="0",
            skipped=str(sum(r.status == NOT_RUN for r in group)),
            time=f"{sum(r.seconds for r in group):.3f}",
        )
        for r in group:
            case = ET.SubElement(suite, "testcase", classname=r.suite or "default", name=r.entry_id,
                                 time=f"{r.seconds:.3f}")
            if r.status == NOT_RUN:
                ET.SubElement(case, "skipped", message=r.error or "not run")
            elif r.status == FAILED:
                failure = ET.SubElement(case, "failure", message=r.error or "", type=r.kind or "failure")
                failure.text = (r.error or "") + (f"\n{r.stack}" if r.stack else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
