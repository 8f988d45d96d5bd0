"""Shared plumbing for the benchmark scripts: throwaway projects, timing, RSS, the summary.

Every figure is printed beside a baseline measured in the same run, on the same machine
and event loop, so the ratio means something even where the absolute number does not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wippy import Runtime, load_project

SUMMARY_MARK = "== SUMMARY =="
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# Projects ------------------------------------------------------------------------------
@dataclass
class LuaEntry:
    name: str
    kind: str  # function.lua | process.lua
    source: str
    modules: tuple[str, ...] = ()


def write_project(root: Path, entries: list[LuaEntry], *, host: bool = True) -> None:
    """Write ``app`` namespace entries (plus an auto-started ``app:host``) under ``root``."""
    lines = ["namespace: app", "entries:"]
    if host:
        lines += [
            "  - name: host",
            "    kind: process.host",
            "    lifecycle:",
            "      auto_start: true",
            "      stop_timeout: 2s",
        ]
    for e in entries:
        (root / f"{e.name}.lua").write_text(textwrap.dedent(e.source))
        lines += [f"  - name: {e.name}", f"    kind: {e.kind}", f"    source: file://{e.name}.lua",
                  "    method: main"]
        if e.modules:
            lines.append(f"    modules: [{', '.join(e.modules)}]")
    (root / "_index.yaml").write_text("\n".join(lines) + "\n")


@contextmanager
def project(entries: list[LuaEntry], *, host: bool = True) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wippy-bench-") as tmp:
        root = Path(tmp)
        write_project(root, entries, host=host)
        yield root


def runtime_for(root: Path) -> Runtime:
    return Runtime(load_project(root), output=lambda line: None, tune_gc=True)


# Timing --------------------------------------------------------------------------------
async def best_rate(count: int, repeats: int, run: Callable[[int], Awaitable[Any]]) -> float:
    """Highest ``count / seconds`` over ``repeats`` runs of ``await run(count)`` (best of N,
    like ``timeit``: the least disturbed run is the one closest to the code's real cost)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        await run(count)
        elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
    return best


def best_rate_sync(count: int, repeats: int, run: Callable[[int], Any]) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run(count)
        elapsed = time.perf_counter() - start
        best = max(best, count / elapsed)
    return best


# Memory --------------------------------------------------------------------------------
def rss_bytes() -> int:
    """Current resident set size, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident set size (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss * 1024


# Arguments and running -------------------------------------------------------------------
def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small counts, one repeat: a smoke run of a few seconds")
    p.add_argument("--repeats", type=int, default=None, help="runs per figure; the best is kept (default 5, 1 with --quick)")
    p.add_argument("--uvloop", action="store_true", help="run figure and baseline on uvloop instead of asyncio's loop")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return p


def run(main: Callable[[], Awaitable[Any]], use_uvloop: bool = False) -> Any:
    if use_uvloop:
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def print_header(script: str, use_uvloop: bool, repeats: int) -> None:
    """What ran where: versions, loop, CPUs, and a warning when the machine is busy."""
    import lupa

    loop = "uvloop" if use_uvloop else "asyncio"
    load = os.getloadavg()[0]
    print(f"{script}: python {platform.python_version()}, lupa {lupa.__version__} (Lua 5.4), "
          f"{loop} loop, {os.cpu_count()} CPUs, {platform.machine()} {platform.system()}, "
          f"load {load:.2f}; best of {repeats}")
    if load > 0.5:
        print(f"warning: 1-minute load average is {load:.2f}: other processes compete for the "
              "CPUs, so figures (and ratios against the threaded Pykka) will be noisy")
    sys.stdout.flush()


# Summary -------------------------------------------------------------------------------
@dataclass
class Row:
    """One figure beside its baseline. ``ratio`` is figure / baseline; ``passed`` is None
    when the figure has no target (printed as ``info``)."""

    figure: str
    value: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None

    @property
    def result(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


def rate(x: float, unit: str = "/s") -> str:
    return f"{x:,.0f}{unit}"


def kib(x: float) -> str:
    return f"{x / 1024:,.2f} KiB"


def mib(x: float) -> str:
    return f"{x / 2**20:,.0f} MiB"


def print_summary(title: str, rows: list[Row]) -> None:
    headers = ("figure", "value", "baseline", "ratio", "target", "result")
    table = [headers] + [
        (r.figure, r.value, r.baseline, "-" if r.ratio is None else f"{r.ratio:.3g}", r.target, r.result)
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    print()
    print(f"{SUMMARY_MARK} {title}")
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    sys.stdout.flush()


def exit_code(rows: list[Row], strict: bool) -> int:
    return 1 if strict and any(r.passed is False for r in rows) else 0
