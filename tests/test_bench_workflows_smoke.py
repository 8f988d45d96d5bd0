"""bench/workflows.py still runs: ``--quick`` exits 0 and prints its summary.

No timing is asserted; the figures are recorded in docs/performance.md. Without the
``dbos`` package the DBOS baseline is skipped (``--no-dbos``) and the test says why; with
it, both DBOS profiles (as shipped and tuned) must be printed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "workflows.py"


def test_bench_workflows_quick_run() -> None:
    args = [sys.executable, str(BENCH), "--quick"]
    with_dbos = importlib.util.find_spec("dbos") is not None
    if not with_dbos:
        print("dbos is not installed (pip install -e '.[bench]'): running without the DBOS baseline")
        args.append("--no-dbos")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)  # a hang guard only
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "== SUMMARY ==" in proc.stdout, proc.stdout
    summary = proc.stdout.split("== SUMMARY ==", 1)[1]
    for column in ("figure", "baseline", "ratio", "result"):
        assert column in summary, summary
    assert "2-activity workflows/s" in summary and "recover" in summary, summary
    assert "sleepers (poll off)" in summary and "sleepers (as run)" in summary, summary
    if with_dbos:  # both DBOS profiles ran; the target row is against the tuned one
        assert "DBOS default (2 steps, SQLite):" in proc.stdout, proc.stdout
        assert "DBOS tuned (2 steps, SQLite):" in proc.stdout, proc.stdout
        assert "tuned DBOS:" in summary and "default DBOS:" in summary, summary
