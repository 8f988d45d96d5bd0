"""bench/http.py still runs: with ``--quick`` it exits 0 and prints its summary (no timing
is asserted; the figures are in docs/http.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_http_bench_quick_run() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "http.py"), "--quick"], capture_output=True, text=True,
                          timeout=120)  # a hang guard, not a timing assertion
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== SUMMARY ==" in proc.stdout, proc.stdout
    summary = proc.stdout.split("== SUMMARY ==", 1)[1]
    assert "Lua endpoint" in summary and "aiohttp handler" in summary and "ratio" in summary
