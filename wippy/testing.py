"""The Lua test runner behind ``wippy test``: entries with ``meta.type: test``."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from wippy.errors import WippyError
from wippy.host.runtime import Runtime
from wippy.registry import Entry, Registry


@dataclass
class TestResult:
    entry_id: str
    suite: str
    passed: bool
    seconds: float
    error: str | None = None


def discover(registry: Registry, pattern: str | None = None) -> list[Entry]:
    """Test entries ordered by ``meta.suite``, then ``meta.order``, then ID."""
    tests = [e for e in registry.of_kind("function.lua") if e.meta.get("type") == "test"]
    if pattern:
        tests = [e for e in tests if pattern in e.id or fnmatch.fnmatch(e.id, pattern)]

    def key(e: Entry) -> tuple[str, float, str]:
        order = e.meta.get("order")
        return (str(e.meta.get("suite", "")), order if isinstance(order, (int, float)) else float("inf"), e.id)

    return sorted(tests, key=key)


async def run_tests(
    runtime: Runtime,
    tests: list[Entry],
    report: Callable[[TestResult, int, int], None] | None = None,
    timeout: float | None = 60.0,
) -> list[TestResult]:
    results = []
    for i, entry in enumerate(tests, 1):
        started = time.perf_counter()
        error: str | None = None
        try:
            value: Any = await runtime.call(entry.id, timeout=timeout)
            if value is False:
                error = "returned false"
        except WippyError as err:
            error = str(err)
        result = TestResult(entry.id, str(entry.meta.get("suite", "")), error is None,
                            time.perf_counter() - started, error)
        results.append(result)
        if report:
            report(result, i, len(tests))
    return results


def write_junit(results: list[TestResult], path: Path) -> None:
    suite = ET.Element(
        "testsuite",
        name="wippy",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.suite or "lua", name=r.entry_id, time=f"{r.seconds:.3f}")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=(r.error or "")[:200])
            failure.text = r.error
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
