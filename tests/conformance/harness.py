"""Python side of the workflow conformance suite: providers, project copies, helpers.

The Wippy project next to this file runs every workflow on ``conf:worker``. A provider
is plugged in by writing that one entry (``worker.yaml``) into a copy of the project;
everything provider-specific the Python tests need -- where runs are stored, how to read
a run's status, why a run is blocked -- sits behind :class:`Provider`. Adding a provider
means adding a subclass to ``PROVIDERS``; the Lua code and the tests stay as they are.

Two providers are plugged in: ``workflow.host`` (the embedded SQLite journal) and
``temporal.worker`` (a real Temporal dev server, the session-scoped ``temporal_server``
fixture of tests/temporal_server.py; a test module using these fixtures lists
``pytest_plugins = ["tests.temporal_server"]``). On Temporal the "store" is the server:
every project copy polls a task queue of its own, and a new runtime on the same copy
(same task queue, same server) is the equivalent of restarting an embedded host.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wippy import Runtime, load_project
from wippy.actors.router import make_pid, parse_pid
from wippy.lua.codec import unpack

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

    async def status(self, rt: Runtime, pid: str) -> str | None:
        """The stored status of the latest run of ``pid`` (``running`` while open)."""
        raise NotImplementedError

    async def history_length(self, rt: Runtime, pid: str) -> int:
        """Events in the history of the open run of ``pid`` so far (what counts as an event
        is the provider's own: compare lengths of one provider, not across providers)."""
        raise NotImplementedError

    async def timers(self, rt: Runtime, pid: str) -> tuple[int, int]:
        """Durable timers of the latest run of ``pid`` so far: (started, fired)."""
        raise NotImplementedError

    async def blocked(self, rt: Runtime, pid: str) -> str | None:
        """Why the open run of ``pid`` cannot go on (a non-determinism error), or None."""
        raise NotImplementedError

    async def attributes(self, rt: Runtime, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Search attributes and memo stored with the latest run of ``pid``."""
        raise NotImplementedError

    async def diagnose(self, rt: Runtime, pid: str) -> str:
        """What a failing test should show about ``pid`` (its history, why it is stuck)."""
        return f"status {await self.status(rt, pid)}, blocked: {await self.blocked(rt, pid)}"


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
            "    task_queue: conf-queue\n"
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

    async def status(self, rt: Runtime, pid: str) -> str | None:
        run = self._run(rt, pid)
        return None if run is None else run.status

    async def history_length(self, rt: Runtime, pid: str) -> int:
        wf = self._host(rt).actors.get(pid)
        return 0 if wf is None else wf.seq

    async def timers(self, rt: Runtime, pid: str) -> tuple[int, int]:
        run = self._run(rt, pid)
        if run is None:
            return 0, 0
        journal = self._host(rt).journal
        rows = journal._read("SELECT seq, data FROM events WHERE run_id=? ORDER BY seq", (run.run_id,))
        timers = set()
        fired = 0
        for seq, data in rows:
            record = unpack(data)
            if record.get("op") in ("time.sleep", "time.timer"):
                timers.add(seq)
            elif record.get("in") == "done" and record.get("ref") in timers:
                fired += 1
        return len(timers), fired

    async def blocked(self, rt: Runtime, pid: str) -> str | None:
        wf = self._host(rt).actors.get(pid)
        return None if wf is None else wf.stuck

    async def attributes(self, rt: Runtime, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        run = self._run(rt, pid)
        return run.search, run.memo


class TemporalWorker(Provider):
    """``temporal.worker`` on a real Temporal dev server (``tests/temporal_server.py``).

    Each project copy gets a ``temporal.client`` on the session's server and the worker
    ``conf:worker`` on a task queue of its own; everything the tests read comes from the
    server through the runtime's own client (describe, result, history)."""

    name = "temporal.worker"
    CLIENT = "conf:temporal"

    def __init__(self) -> None:
        self.address: str | None = None  # set by the provider fixture from ``temporal_server``

    def worker_yaml(self, store: Path) -> str:
        assert self.address is not None, "the temporal.worker provider needs the temporal_server fixture"
        return (
            "namespace: conf\n"
            "entries:\n"
            "  - name: temporal\n"
            "    kind: temporal.client\n"
            f"    address: {self.address!r}\n"
            "    lifecycle: {auto_start: true}\n"
            "  - name: worker\n"
            "    kind: temporal.worker\n"
            "    client: conf:temporal\n"
            f"    task_queue: conf-{uuid.uuid4().hex[:12]}\n"
            # A worker that stops (or dies) just as a workflow task is dispatched to it
            # leaves that task to time out: the task timeout (10s by default) and, for its
            # sticky queue, the schedule-to-start timeout (10s). The restart tests stop
            # right after something happened, so keep both short.
            "    workflow_task_timeout: 1s\n"
            "    worker_options: {sticky_queue_schedule_to_start_timeout: 1s}\n"
            "    lifecycle:\n"
            "      auto_start: true\n"
            "      depends_on: [conf:counter]\n"
        )

    def pid(self, workflow_id: str) -> str:
        return make_pid(WORKER, workflow_id)

    async def _handle(self, rt: Runtime, pid: str) -> Any:
        service = rt.lifecycle.services[self.CLIENT]
        client = await service.connected(DEADLINE)
        return client.get_workflow_handle(parse_pid(pid)[1])

    async def _describe(self, rt: Runtime, pid: str) -> Any:
        from temporalio.service import RPCError, RPCStatusCode

        try:
            return await (await self._handle(rt, pid)).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def status(self, rt: Runtime, pid: str) -> str | None:
        desc = await self._describe(rt, pid)
        return None if desc is None or desc.status is None else desc.status.name.lower()

    async def outcome(self, rt: Runtime, pid: str) -> Outcome | None:
        from temporalio.client import WorkflowFailureError

        from wippy.providers.temporal.failures import from_failure

        status = await self.status(rt, pid)
        if status is None or status == "running":
            return None
        handle = await self._handle(rt, pid)
        try:
            return Outcome(status, await handle.result(follow_runs=False))
        except WorkflowFailureError as exc:
            err = from_failure(exc.cause or exc)
            return Outcome(status, None, {"kind": err.kind, "message": err.message, "retryable": err.retryable})

    async def _events(self, rt: Runtime, pid: str) -> list[Any]:
        return list((await (await self._handle(rt, pid)).fetch_history()).events)

    async def history_length(self, rt: Runtime, pid: str) -> int:
        return len(await self._events(rt, pid))

    async def timers(self, rt: Runtime, pid: str) -> tuple[int, int]:
        from temporalio.api.enums.v1 import EventType

        events = await self._events(rt, pid)
        started = sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events)
        fired = sum(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in events)
        return started, fired

    async def blocked(self, rt: Runtime, pid: str) -> str | None:
        """The failure of the workflow task that could not replay: Temporal records the
        first failed attempt in the history and retries the task until a worker's code
        agrees with the history again."""
        from temporalio.api.enums.v1 import EventType

        why = None
        for event in await self._events(rt, pid):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                why = event.workflow_task_failed_event_attributes.failure.message
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                why = None
        return why

    async def diagnose(self, rt: Runtime, pid: str) -> str:
        from temporalio.api.enums.v1 import EventType

        lines = [f"history of {pid}:"]
        events = await self._events(rt, pid)
        start = events[0].event_time.ToDatetime() if events else None
        for event in events:
            at = (event.event_time.ToDatetime() - start).total_seconds() if start else 0.0
            detail = ""
            kind = event.WhichOneof("attributes")
            if event.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED) and kind:
                detail = " ".join(str(getattr(event, kind)).split())[:200]
            lines.append(f"  {at:+8.3f}s {EventType.Name(event.event_type)[11:]} {detail}")
        return "\n".join(lines)

    async def attributes(self, rt: Runtime, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        desc = await self._describe(rt, pid)
        assert desc is not None, f"no workflow {pid}"
        # the server adds attributes of its own (TemporalChangeVersion for workflow.version,
        # BuildIds, ...): keep those the project set
        search = {pair.key.name: pair.value for pair in desc.typed_search_attributes
                  if not pair.key.name.startswith(("Temporal", "BuildIds"))}
        return search, await desc.memo()


PROVIDERS: dict[str, Provider] = {p.name: p for p in (EmbeddedHost(), TemporalWorker())}


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

        try:
            return await until(check, f"workflow {pid} to close", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.provider.diagnose(rt, pid)}") from None


# Fixtures: a test module imports these two (``from ... import conformance_fixture,
# provider_fixture``) and lists ``pytest_plugins = ["tests.temporal_server"]`` (the
# Temporal dev server); tests then ask for ``provider`` or ``conformance``.
@pytest.fixture(scope="module", params=list(PROVIDERS), name="provider")
def provider_fixture(request: pytest.FixtureRequest) -> Provider:
    provider = PROVIDERS[request.param]
    if isinstance(provider, TemporalWorker):
        provider.address = request.getfixturevalue("temporal_server").address
    return provider


@pytest.fixture(name="conformance")
def conformance_fixture(provider: Provider, tmp_path: Path) -> Conformance:
    return Conformance(tmp_path / "project", provider)
