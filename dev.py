#!/usr/bin/env python3
"""Project set-up and the two quick-start commands. Needs only Python 3.11+ and git.

    python3 dev.py demo   # create .venv if needed, run the demo app
    python3 dev.py test   # create .venv if needed, run the whole test suite

Both are idempotent: the environment is rebuilt only when pyproject.toml changes. What
this script says (the commands it runs, set-up progress) goes to stderr, so stdout is the
commands' own output: ``python3 dev.py demo > out.json`` is the demo's JSON result.

The demo starts from an empty journal every time: it deletes its own store
(``examples/orders/.wippy/orders.db``) first, so ``wippy workflows list examples/orders``
shows the five orders of the last run, not one set per run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".wippy-installed"
DEMO = ROOT / "examples" / "orders"
DEMO_STORE = DEMO / ".wippy" / "orders.db"  # the demo's workflow.host store (examples/orders/_index.yaml)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(*cmd: str | Path, check: bool = True, stdout: int | None = None) -> int:
    say("+ " + " ".join(str(c) for c in cmd))
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check, stdout=stdout).returncode


def ensure_env() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PY.exists():
        return
    started = time.monotonic()
    if not PY.exists():
        say(f"first run: creating the virtual environment {VENV} and installing wippy "
            "with its dependencies (about a minute; later runs skip this)")
        venv.EnvBuilder(with_pip=True).create(VENV)
    else:
        say("pyproject.toml changed: updating the dependencies in .venv/")
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    say("installing wippy (editable) and its test, fast and temporal extras ...")
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[test,fast,temporal]",
        "-e", "examples/python-host")
    STAMP.write_text(digest)
    say(f"environment ready ({time.monotonic() - started:.0f}s)")


def demo() -> int:
    """The order workflow from the docs on the embedded durable host: five orders, one
    per outcome (completed, payment failed, shipping failed with compensation, rejected)."""
    ensure_env()
    wippy = BIN / "wippy"
    for path in DEMO_STORE.parent.glob(DEMO_STORE.name + "*"):  # the journal and its -wal/-shm files
        path.unlink()
    run(wippy, "check", DEMO, stdout=sys.stderr.fileno())  # "ok: ..." is not part of the JSON result
    return run(wippy, "exec", DEMO, "app:demo", check=False)


def test() -> int:
    ensure_env()
    run(BIN / "ruff", "check", "wippy", "tests", "bench", "tools", "dev.py")
    run(BIN / "mypy")  # the files and settings are in pyproject.toml
    return run(PY, "-m", "pytest", "-q", check=False)


def main() -> int:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        say(f"usage: python3 {Path(__file__).name} {{{'|'.join(commands)}}}")
        return 2
    try:
        return commands[sys.argv[1]]()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
