#!/usr/bin/env python3
"""Project set-up and the two quick-start commands. Needs only Python 3.11+ and git.

    python3 dev.py demo   # create .venv if needed, run the demo app
    python3 dev.py test   # create .venv if needed, run the whole test suite

Both are idempotent: the environment is rebuilt only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".wippy-installed"


def run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check).returncode


def ensure_env() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", ".[test,fast,temporal]")
    STAMP.write_text(digest)


def demo() -> int:
    """The order workflow from the docs on the embedded durable host: five orders, one
    per outcome (completed, payment failed, shipping failed with compensation, rejected)."""
    ensure_env()
    wippy = BIN / "wippy"
    app = ROOT / "examples" / "orders"
    run(wippy, "check", app)
    return run(wippy, "exec", app, "app:demo", check=False)


def test() -> int:
    ensure_env()
    run(BIN / "ruff", "check", "wippy", "tests", "bench", "tools", "dev.py")
    run(BIN / "mypy")  # the files and settings are in pyproject.toml
    return run(PY, "-m", "pytest", "-q", check=False)


def main() -> int:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        print(f"usage: python3 {Path(__file__).name} {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    try:
        return commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
