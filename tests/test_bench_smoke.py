"""The benchmark scripts still run: each one with ``--quick`` exits 0 and prints its summary.

No timing is asserted here; the figures themselves are recorded in docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script", ["functions.py", "actors.py"])
def test_bench_script_quick_run(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a timing assertion
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== SUMMARY ==" in proc.stdout, proc.stdout
    summary = proc.stdout.split("== SUMMARY ==", 1)[1]
    assert "figure" in summary and "baseline" in summary and "ratio" in summary
    assert "result" in summary, summary
