"""``process.host``: the in-memory provider. Actors live as long as the runtime does."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from wippy.actors.process import Process
from wippy.actors.scheduler import Dispatcher
from wippy.errors import CANCELED, INVALID, NOT_FOUND, WippyError
from wippy.host.router import make_pid
from wippy.providers.base import HostProvider, SpawnRequest

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime
    from wippy.registry import Entry

SPAWNABLE = {"process.lua": b"process", "workflow.lua": b"workflow"}


class ProcessHost(HostProvider):
    kind = "process.host"

    def __init__(self, runtime: Runtime, entry: Entry) -> None:
        super().__init__(runtime, entry)
        self.processes: dict[str, Process] = {}
        self._counter = 0
        self._all_gone: asyncio.Event | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        return self.runtime.dispatcher

    async def start(self) -> None:
        self.runtime.router.add_host(self)
        self.running = True

    # Spawning ------------------------------------------------------------------------------
    def spawn(self, request: SpawnRequest) -> str:
        if not self.running:
            raise WippyError("UNAVAILABLE", f"host {self.host_id} is not running", retryable=True)
        entry = self.runtime.registry.get(request.entry_id)
        if entry is None:
            raise WippyError(NOT_FOUND, f"process {request.entry_id} not found", retryable=False)
        profile = SPAWNABLE.get(entry.kind)
        if profile is None:
            raise WippyError(
                INVALID,
                f"{entry.id} is a {entry.kind} entry; only process.lua and workflow.lua entries can be spawned",
                retryable=False,
            )
        self._counter += 1
        pid = make_pid(self.host_id, f"{self._counter:x}")
        router = self.runtime.router
        if request.name is not None:
            router.register(request.name, pid)
        proc = Process(self, pid, entry.id, profile, request.context)
        self.processes[pid] = proc
        parent = request.parent
        if parent is not None and request.link:
            proc.links = {parent}
            router.watch(parent, pid, link=True)
        if parent is not None and request.monitor:
            proc.monitors = {parent}
        for topic, payload in request.messages:
            proc.deliver(topic.encode(), payload, parent.encode() if parent else None)
        proc.start(request.args)
        return pid

    def forget(self, proc: Process) -> None:
        self.processes.pop(proc.pid, None)
        if not self.processes and self._all_gone is not None:
            self._all_gone.set()

    # Signals -------------------------------------------------------------------------------
    def get(self, pid: str) -> Process | None:
        return self.processes.get(pid)

    def alive(self, pid: str) -> bool:
        return pid in self.processes

    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        proc.deliver(topic.encode(), payload, sender.encode() if sender else None)
        return True

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        proc.deliver_event(event)
        return True

    def terminate(self, pid: str, error: Any) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        proc.terminate(error if error is not None else proc.cancel_error())
        return True

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        proc.deliver_event({"kind": "CANCEL", "from": sender, "reason": reason, "deadline": int(deadline * 1000)})
        error = self.runtime.vm.to_lua(
            WippyError(CANCELED, f"process did not finish within the cancel deadline ({reason})", retryable=False)
        )
        handle = self.runtime.scheduler.loop.call_later(deadline, proc.terminate, error)
        proc.on_close(handle.cancel)
        return True

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        proc = self.processes.get(pid)
        if proc is None:
            return False
        if link:
            if proc.links is None:
                proc.links = set()
            proc.links.add(watcher)
        else:
            if proc.monitors is None:
                proc.monitors = set()
            proc.monitors.add(watcher)
        return True

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        proc = self.processes.get(pid)
        if proc is None:
            return
        group = proc.links if link else proc.monitors
        if group is not None:
            group.discard(watcher)

    # Lifecycle -----------------------------------------------------------------------------
    async def stop(self, timeout: float) -> None:
        """Cancel every process, wait up to ``timeout``, then terminate the rest."""
        self.running = False
        try:
            await self._stop_processes(timeout)
        finally:
            self.runtime.router.remove_host(self.host_id)

    async def _stop_processes(self, timeout: float) -> None:
        if self.processes:
            self._all_gone = asyncio.Event()
            for pid in list(self.processes):
                self.cancel(pid, None, "host stopping", timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_gone.wait(), timeout)
            for proc in list(self.processes.values()):
                proc.terminate(proc.cancel_error())

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"pid": p.pid, "entry": p.entry_id, "host": self.host_id, "inbox": len(p.inbox.buffer)}
            for p in self.processes.values()
        ]
