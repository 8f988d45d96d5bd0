"""Python side of the workflow conformance suite: providers, project copies, helpers.

The Wippy project next to this file runs every workflow on ``conf:worker``. A provider
is plugged in by writing that one entry (``worker.yaml``) into a copy of the project;
everything provider-specific the Python tests need -- where runs are stored, how to read
a run's status, why a run is blocked -- sits behind :class:`Provider`. Adding a provider
(``temporal.worker``) means adding a subclass to ``PROVIDERS``; the Lua code and the tests
stay as they are.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wippy import Runtime, load_project
from wippy.host.router import make_pid, parse_pid

PROJECT = Path(__file__).parent
WORKER = "conf:worker"
DEADLINE = 5.0  # seconds any single wait may take before the test fails

T = TypeVar("T")


@dataclass
class Outcome:
    """How a run ended: ``status`` (completed, failed, terminated, ...), result, error."""

    status: str
    value: Any = None
    error: Any = None


class Provider:
    """What the tests need to know about one workflow provider."""

    name = ""

    def worker_yaml(self, store: Path) -> str:
        """The ``conf:worker`` entry (plus anything it needs), keeping runs in ``store``."""
        raise NotImplementedError

    def pid(self, workflow_id: str) -> str:
        """The PID of the workflow with this ID."""
        raise NotImplementedError

    async def outcome(self, rt: Runtime, pid: str) -> Outcome | None:
        """The stored outcome of the latest run of ``pid``; None while it is open."""
        raise NotImplementedError

    def status(self, rt: Runtime, pid: str) -> str | None:
        """The stored status of the latest run of ``pid`` (``running`` while open)."""
        raise NotImplementedError

    def history_length(self, rt: Runtime, pid: str) -> int:
        """Events in the history of the open run of ``pid`` so far."""
        raise NotImplementedError

    def blocked(self, rt: Runtime, pid: str) -> str | None:
        """Why the open run of ``pid`` cannot go on (a non-determinism error), or None."""
        raise NotImplementedError

    def attributes(self, rt: Runtime, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Search attributes and memo stored with the latest run of ``pid``."""
        raise NotImplementedError


class EmbeddedHost(Provider):
    """``workflow.host``: the embedded SQLite journal."""

    name = "workflow.host"

    def worker_yaml(self, store: Path) -> str:
        return (
            "namespace: conf\n"
            "entries:\n"
            "  - name: worker\n"
            "    kind: workflow.host\n"
            f"    store: {str(store)!r}\n"
            "    lifecycle:\n"
            "      auto_start: true\n"
            "      depends_on: [conf:counter]\n"
        )

    def pid(self, workflow_id: str) -> str:
        return make_pid(WORKER, workflow_id)

    def _host(self, rt: Runtime) -> Any:
        return rt.router.hosts[WORKER]

    def _run(self, rt: Runtime, pid: str) -> Any:
        return self._host(rt).journal.latest_run(parse_pid(pid)[1])

    async def outcome(self, rt: Runtime, pid: str) -> Outcome | None:
        run = self._run(rt, pid)
        if run is None or run.status == "running":
            return None
        return Outcome(run.status, run.result, run.error)

    def status(self, rt: Runtime, pid: str) -> str | None:
        run = self._run(rt, pid)
        return None if run is None else run.status

    def history_length(self, rt: Runtime, pid: str) -> int:
        wf = self._host(rt).workflows.get(pid)
        return 0 if wf is None else wf.seq

    def blocked(self, rt: Runtime, pid: str) -> str | None:
        wf = self._host(rt).workflows.get(pid)
        return None if wf is None else wf.stuck

    def attributes(self, rt: Runtime, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        run = self._run(rt, pid)
        return run.search, run.memo


PROVIDERS: dict[str, Provider] = {p.name: p for p in (EmbeddedHost(),)}


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something other than None (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


class Conformance:
    """A copy of the conformance project wired to one provider, with a durable store."""

    def __init__(self, root: Path, provider: Provider) -> None:
        self.root = root
        self.provider = provider
        self.store = root.parent / "store" / "workflows.db"
        shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".wippy"))
        (root / "worker.yaml").write_text(provider.worker_yaml(self.store))

    def runtime(self, output: Callable[[str], None] | None = None) -> Runtime:
        """A fresh runtime on the project as it is on disk now (edits take effect)."""
        return Runtime(load_project(self.root), output=output)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text()
        assert old in text, f"{rel} does not contain {old!r}"
        path.write_text(text.replace(old, new))

    # Calls into the project ----------------------------------------------------------------
    @staticmethod
    async def start(rt: Runtime, entry: str, arg: Any = None, options: dict[str, Any] | None = None,
                    context: dict[str, Any] | None = None) -> str:
        """Start ``entry`` on the provider; returns its PID once the start is durable."""
        return await rt.call("conf:start", entry, arg, options or {}, context)

    @staticmethod
    async def run(rt: Runtime, entry: str, arg: Any = None, options: dict[str, Any] | None = None,
                  context: dict[str, Any] | None = None) -> Any:
        """Run ``entry`` on the provider to its end (process.exec) and return its result."""
        return await rt.call("conf:run", entry, arg, options or {}, context)

    @staticmethod
    async def signal(rt: Runtime, pid: str, topic: str, data: Any = None) -> None:
        """process.send; returns once the provider has the message durably."""
        assert await rt.call("conf:signal", pid, topic, data) is True

    @staticmethod
    async def counts(rt: Runtime) -> dict[str, Any]:
        """What the activities reported in this runtime: hits, seen values, order."""
        counts = await rt.call("conf:counts")  # an empty Lua table may come back as []
        return {"hits": counts["hits"] or {}, "seen": counts["seen"] or {}, "order": counts["order"] or []}

    async def hits(self, rt: Runtime) -> dict[str, int]:
        return dict((await self.counts(rt))["hits"])

    async def wait_hit(self, rt: Runtime, key: str, n: int = 1) -> dict[str, Any]:
        """Wait until the activity key ``key`` was hit ``n`` times in this runtime."""

        async def check() -> dict[str, Any] | None:
            counts = await self.counts(rt)
            return counts if counts["hits"].get(key, 0) >= n else None

        return await until(check, f"activity hit {key!r}")

    async def wait_closed(self, rt: Runtime, pid: str, timeout: float = DEADLINE) -> Outcome:
        async def check() -> Outcome | None:
            return await self.provider.outcome(rt, pid)

        return await until(check, f"workflow {pid} to close", timeout)


# Fixtures: a test module imports these two (``from ... import conformance_fixture,
# provider_fixture``); tests then ask for ``provider`` or ``conformance``.
@pytest.fixture(scope="module", params=list(PROVIDERS), name="provider")
def provider_fixture(request: pytest.FixtureRequest) -> Provider:
    return PROVIDERS[request.param]


@pytest.fixture(name="conformance")
def conformance_fixture(provider: Provider, tmp_path: Path) -> Conformance:
    return Conformance(tmp_path / "project", provider)
