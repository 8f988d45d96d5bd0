"""Lua workflows inside Temporal workflow runs.

One dynamic Temporal workflow class per ``temporal.worker`` runs every ``workflow.lua``
entry registered to it (workflow type = entry ID). The Lua code runs on Temporal's
deterministic event loop, in the worker's single workflow thread, in a Lua state of that
thread's own; Temporal's history and replay give durability, so nothing here records
anything: each command maps onto the SDK (activities, timers, child workflows, signals,
patches) and Temporal replays it.

Effects on the rest of the runtime (messages to ordinary processes, spawns on other
hosts, the name registry) go through local activities, so they happen once and are
replayed from history.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    RawValue,
)

from wippy.actors.host import Limits
from wippy.actors.kernel import Kernel
from wippy.actors.process import Process
from wippy.actors.router import make_pid
from wippy.actors.scheduler import Dispatcher, LuaTask
from wippy.errors import WippyError
from wippy.lua.vm import LuaVM
from wippy.providers.temporal.context import CONTEXT
from wippy.providers.temporal.dispatch import dispatcher_for
from wippy.providers.temporal.failures import to_application_error

if TYPE_CHECKING:
    from wippy.providers.temporal.worker import TemporalWorkerHost

EVENT_SIGNAL = "__wippy_event"
CANCEL_SIGNAL = "__wippy_cancel"

_thread = threading.local()


def thread_kernel(host: TemporalWorkerHost) -> Kernel:
    """The kernel (Lua state, modules, entries) of the current workflow thread: one per
    thread, since a Lua state must not be shared between threads."""
    kernel = getattr(_thread, "kernels", {}).get(host.host_id)
    if kernel is None:
        kernel = Kernel(host.kernel.registry, LuaVM())
        _thread.kernels = {**getattr(_thread, "kernels", {}), host.host_id: kernel}
    return kernel


class LoopQueue:
    """Scheduler interface for one Lua workflow: steps run on Temporal's workflow loop.

    Each input (an activity result, a timer firing, a signal) runs the Lua code until
    nothing more can run before the next input is handed over, as on workflow.host: when
    one workflow task brings several inputs (timers that fell due together while no worker
    ran), the Lua code sees them one at a time, in order, exactly as if they had come in
    separate tasks. So the queue runs at once when something is added from outside a step,
    instead of on a later turn of the loop after every input has been delivered."""

    __slots__ = ("proc", "queue", "running")

    def __init__(self, proc: TemporalProcess) -> None:
        self.proc = proc
        self.queue: deque[tuple[LuaTask, Any]] = deque()
        self.running = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_event_loop()

    def start(self, task: LuaTask) -> None:
        self._add(task, None)

    def resume(self, task: LuaTask, *values: Any) -> None:
        self._add(task, (True, *values))

    def throw(self, task: LuaTask, error: Any) -> None:
        if isinstance(error, WippyError):
            error = self.proc.kernel.vm.to_lua(error)
        self._add(task, (False, error))

    def _add(self, task: LuaTask, payload: Any) -> None:
        self.queue.append((task, payload))
        if not self.running:
            self.run()

    def run(self) -> None:
        self.running = True
        step = self.proc.kernel.scheduler.step
        try:
            while self.queue:
                task, payload = self.queue.popleft()
                if task.finished:
                    continue
                left = step(task, payload)
                if left is not None:
                    self.queue.append((task, left))
        finally:
            self.running = False


class _HostView:
    """What a Process needs of its host, for a workflow living in a worker thread."""

    def __init__(self, kernel: Kernel, host_id: str, dispatcher: Dispatcher, limits: Limits) -> None:
        self.kernel = kernel
        self.host_id = host_id
        self.dispatcher = dispatcher
        self.limits = limits

    def forget(self, proc: Any) -> None:
        pass


class TemporalProcess(Process):
    """The Lua side of one Temporal workflow run."""

    __slots__ = ("outcome", "bg", "versions", "worker", "search_types")

    def __init__(self, worker: TemporalWorkerHost, view: _HostView, workflow_id: str, entry_id: str,
                 context: dict[str, Any]) -> None:
        super().__init__(view, make_pid(view.host_id, workflow_id), entry_id, b"workflow", context)  # type: ignore[arg-type]
        self.worker = worker
        # (before any channel of the process exists: its inbox and event channels, made on
        # first use, queue here; a message waits for a listen until the inbox is asked for)
        self.scheduler = LoopQueue(self)  # type: ignore[assignment]
        self.outcome: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
        self.bg: set[asyncio.Task[Any]] = set()
        self.versions: dict[str, int] = {}
        # search attribute -> its registered type (None: not registered), as the run asked
        # the ``wippy.search_types`` local activity (so a replay reads the same answers)
        self.search_types: dict[str, str | None] = {}

    def spawn_bg(self, coro: Any, on_done: Any) -> asyncio.Task[Any]:
        """A workflow-loop task owned by this process (cancelled when it ends)."""
        task = asyncio.get_event_loop().create_task(coro)
        self.bg.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.bg.discard(t)
            if not t.cancelled() and not self.closed:
                on_done(t)

        task.add_done_callback(done)
        return task

    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        if self.outcome.done():
            return
        vm = self.kernel.vm
        if ok and values[0]:
            self.outcome.set_result(vm.to_python(values[1][1], "result"))
        else:
            err = values[1] if ok else values[0]
            self.outcome.set_exception(to_application_error(vm.to_python(err, "error")))
        self.close()
        for task in list(self.bg):
            task.cancel()

    def terminate(self, error: Any) -> None:
        self.main_finished(False, (error,))

    def evict(self) -> None:
        """Drop the Lua side without an outcome: the run left this worker's cache."""
        self.close()
        for task in list(self.bg):
            task.cancel()


def _evicting() -> bool:
    """True while the SDK evicts the current run from the worker's cache (it cancels every
    task of the run then, and the run must let them end)."""
    return bool(getattr(workflow._Runtime.maybe_current(), "_deleting", False))


WORKERS: dict[str, TemporalWorkerHost] = {}
"""Started worker hosts by task queue: how a workflow run finds its project."""


@workflow.defn(dynamic=True, sandboxed=False)
class LuaWorkflow:
    """Runs the ``workflow.lua`` entry named by the workflow type."""

    def __init__(self) -> None:
        self.proc: TemporalProcess | None = None
        self.early: list[tuple[str, Sequence[RawValue]]] = []

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        info = workflow.info()
        host = WORKERS.get(info.task_queue)
        if host is None:
            raise RuntimeError(f"no wippy worker for task queue {info.task_queue}")  # retried by Temporal
        rt = thread_kernel(host)
        entry = rt.registry.get(host.workflow_types.get(info.workflow_type, ""))
        if entry is None or entry.kind != "workflow.lua":
            raise to_application_error(WippyError(
                "NOT_FOUND", f"workflow type {info.workflow_type} is not a workflow.lua entry of this project"))
        conv = workflow.payload_converter()
        values = [conv.from_payload(a.payload) for a in args]
        view = _HostView(rt, host.host_id, dispatcher_for(rt, host), host.limits)
        proc = TemporalProcess(host, view, info.workflow_id, entry.id, dict(CONTEXT.get() or {}))
        self.proc = proc
        for name, sargs in self.early:
            self._deliver(name, sargs)
        self.early.clear()
        task = proc.spawn_task(rt.vm.entry_task, entry.id.encode(), b"workflow", rt.lua_args(values))
        proc.scheduler.start(task)
        while True:
            try:
                return await asyncio.shield(proc.outcome)
            except asyncio.CancelledError:
                if _evicting():
                    # the run leaves this worker's cache (shutdown, a failed task, cache
                    # size): drop the Lua side; the run goes on elsewhere from history
                    proc.evict()
                    raise
                # Temporal asked this workflow to cancel: tell the Lua code (a CANCEL event)
                # and keep running it; it decides how to finish, as with process.cancel.
                if proc.outcome.done():
                    raise
                Process.deliver_event(proc, {"kind": "CANCEL", "from": None, "reason": "canceled through Temporal"})

    @workflow.signal(dynamic=True)
    def signal(self, name: str, args: Sequence[RawValue]) -> None:
        if self.proc is None:
            self.early.append((name, args))
        else:
            self._deliver(name, args)

    def _deliver(self, name: str, args: Sequence[RawValue]) -> None:
        proc = self.proc
        assert proc is not None
        conv = workflow.payload_converter()
        values = [conv.from_payload(a.payload) for a in args]
        vm = proc.kernel.vm
        if name == EVENT_SIGNAL:
            event = dict(values[0])
            result = event.get("result")
            if result is not None:
                event["result"] = {"value": vm.to_lua(result.get("value")), "error": vm.to_lua(result.get("error"))}
            Process.deliver_event(proc, event)
        elif name == CANCEL_SIGNAL:
            Process.deliver_event(proc, {"kind": "CANCEL", **dict(values[0] if values else {})})
        else:
            payload = values[0] if values else None
            sender = values[1] if len(values) > 1 else None
            Process.deliver(proc, name.encode(), vm.to_lua(payload, "signal"), sender.encode() if sender else None)
