"""Routing over a table of :class:`Process` objects: what every in-memory host shares.

The function-call frames of :mod:`wippy.actors.functions` and the providers' in-memory
hosts (:class:`wippy.providers.ActorTable`) both keep their actors in ``self.actors``
(PID -> Process) and answer the router's calls from it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from wippy.actors.process import Process
from wippy.errors import CANCELED, WippyError

if TYPE_CHECKING:
    from wippy.actors.host import SpawnRequest
    from wippy.actors.kernel import Kernel

P = TypeVar("P", bound=Process)


class ProcessTable(Generic[P]):
    """Delivery, events, terminate, cancel with a deadline, monitors and links, and a stop
    that cancels every actor and terminates what is left after the timeout."""

    kernel: Kernel
    host_id: str
    instant_delivery: ClassVar[bool] = False
    """True where :meth:`deliver` is this table's own and :meth:`barrier` is None (nothing
    to make durable): Lua senders in the kernel may then hand over messages they built
    with a direct call (:meth:`deliver_message`) instead of a command. For implementors
    of new hosts."""

    def init_table(self) -> None:
        self.actors: dict[str, P] = {}
        self._all_gone: asyncio.Event | None = None

    def add(self, actor: P) -> P:
        self.actors[actor.pid] = actor
        return actor

    def wire(self, actor: P, request: SpawnRequest) -> None:
        """What every spawn does once its actor exists and before it runs: the link to and
        monitor by the parent, then the startup messages (from the parent)."""
        parent = request.parent
        if parent is not None and request.link:
            actor.links = {parent}
            self.kernel.router.watch(parent, actor.pid, link=True)
        if parent is not None and request.monitor:
            actor.monitors = {parent}
        for topic, payload in request.messages:
            actor.deliver(topic.encode(), payload, parent.encode() if parent else None)

    def get(self, pid: str) -> P | None:
        return self.actors.get(pid)

    def forget(self, proc: Process) -> None:
        if self.actors.get(proc.pid) is proc:  # a replacement may already own the PID
            del self.actors[proc.pid]
        if not self.actors and self._all_gone is not None:
            self._all_gone.set()

    def alive(self, pid: str) -> bool:
        return pid in self.actors

    def watchers_changed(self, actor: P) -> None:
        """A monitor or link of ``actor`` was added or removed (hook for durable hosts)."""

    # Routing -------------------------------------------------------------------------------
    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        raw = topic.encode()
        actor.check_room(raw)
        actor.deliver(raw, payload, sender.encode() if sender else None)
        return True

    def deliver_message(self, pid: str, topic: bytes, message: Any) -> bool:
        """Queue a message object Lua built (``rt.make_message``'s shape) for ``pid``."""
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor.check_room(topic)
        actor.route(topic, message)
        return True

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor.deliver_event(event)
        return True

    def terminate(self, pid: str, error: Any) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor.terminate(error if error is not None else actor.cancel_error())
        return True

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor.deliver_event({"kind": "CANCEL", "from": sender, "reason": reason, "deadline": int(deadline * 1000)})
        error = self.kernel.vm.to_lua(WippyError(
            CANCELED, f"{actor.noun} did not finish within the cancel deadline ({reason})", retryable=False))
        handle = self.kernel.scheduler.loop.call_later(deadline, actor.terminate, error)
        actor.on_close(handle.cancel)
        return True

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        if link:
            if actor.links is None:
                actor.links = set()
            actor.links.add(watcher)
        else:
            if actor.monitors is None:
                actor.monitors = set()
            actor.monitors.add(watcher)
        self.watchers_changed(actor)
        return True

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        actor = self.actors.get(pid)
        if actor is None:
            return
        group = actor.links if link else actor.monitors
        if group and watcher in group:
            group.discard(watcher)
            self.watchers_changed(actor)

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"pid": a.pid, "entry": a.entry_id, "host": self.host_id, "inbox": a.queued()}
                for a in self.actors.values()]

    # Stopping ------------------------------------------------------------------------------
    async def stop_actors(self, timeout: float) -> None:
        """Cancel every actor, wait up to ``timeout`` for them to end, terminate the rest."""
        if not self.actors:
            return
        self._all_gone = asyncio.Event()
        for pid in list(self.actors):
            self.cancel(pid, None, "host stopping", timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_gone.wait(), timeout)
        for actor in list(self.actors.values()):
            actor.terminate(actor.cancel_error())
