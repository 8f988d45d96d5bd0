"""``python.host``: a host whose actors are Python async functions (``python.actor`` entries)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from wippy.errors import CANCELED, INVALID, LIMIT_EXCEEDED, WippyError
from wippy.providers import (
    Dispatcher,
    Entry,
    ExitResult,
    Field,
    HostProvider,
    Kernel,
    KindSpec,
    Process,
    ProviderSpec,
    SpawnRequest,
    make_pid,
)

from wippy_python_host._actor import CANCEL, Actor, Handler, Message

ACTOR_KIND = "python.actor"
HOST_KIND = "python.host"


def load_handler(spec: str, where: str) -> Handler:
    """The async function named by ``"package.module:function"`` (the attribute may be
    dotted: ``module:Class.method``); raises INVALID saying what is wrong."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise WippyError(INVALID, f"{where}: handler {spec!r} must look like 'package.module:function'",
                         retryable=False)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise WippyError(INVALID, f"{where}: cannot import {module_name!r} for handler {spec!r}: {exc}",
                         retryable=False) from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise WippyError(INVALID, f"{where}: handler {spec!r}: {module_name} has no {attr!r}",
                             retryable=False)
        target = getattr(target, part)
    if not inspect.iscoroutinefunction(target):
        raise WippyError(INVALID, f"{where}: handler {spec!r} must be an async function "
                                  "(async def main(actor, *args))", retryable=False)
    return target


class PythonHost(HostProvider):
    """Runs ``python.actor`` entries as asyncio tasks on the runtime's event loop."""

    kind = HOST_KIND
    runs = (ACTOR_KIND,)

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        super().__init__(kernel, entry)
        self.actors: dict[str, Actor] = {}
        self._dispatcher = Dispatcher()  # its actors run no Lua, so they yield no commands
        self._handlers: dict[str, Handler] = {}
        self._seq = 0
        self._all_gone: asyncio.Event | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    # Lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Add the entry's ``paths`` to ``sys.path`` and import every handler, so a typo
        stops ``wippy run`` at once instead of at the first spawn."""
        base = self.entry.file.parent
        for raw in reversed(self.entry.data.get("paths") or []):
            path = str((base / raw).resolve())
            if path not in sys.path:
                sys.path.insert(0, path)
        for entry in self.kernel.registry:
            if entry.kind == ACTOR_KIND:
                self._handler(entry)
        await super().start()

    async def stop(self, timeout: float) -> None:
        """Cancel every actor, wait up to ``timeout``, terminate the rest."""
        self.running = False
        try:
            if self.actors:
                self._all_gone = asyncio.Event()
                for pid in list(self.actors):
                    self.cancel(pid, None, "host stopping", timeout)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_gone.wait(), timeout)
                actors = list(self.actors.values())
                for actor in actors:
                    actor._fail(WippyError(CANCELED, "the host stopped", retryable=False))
                await asyncio.gather(*(a._finished() for a in actors))
        finally:
            await super().stop(timeout)

    def _handler(self, entry: Entry) -> Handler:
        handler = self._handlers.get(entry.id)
        if handler is None:
            handler = self._handlers[entry.id] = load_handler(str(entry.data.get("handler", "")), entry.id)
        return handler

    def _forget(self, actor: Actor) -> None:
        if self.actors.get(actor.pid) is actor:
            del self.actors[actor.pid]
        if not self.actors and self._all_gone is not None:
            self._all_gone.set()

    # Routing -------------------------------------------------------------------------------
    def spawn(self, request: SpawnRequest) -> str:
        entry = self.entry_for_spawn(request.entry_id)
        handler = self._handler(entry)
        vm, router = self.kernel.vm, self.kernel.router
        packed = request.args
        args = [] if packed is None else [vm.to_python(packed[i], f"argument #{i}")
                                          for i in range(1, int(packed[b"n"] or 0) + 1)]
        first = [Message(topic, vm.to_python(payload, "payload"), request.parent)
                 for topic, payload in request.messages]
        self._seq += 1
        pid = make_pid(self.host_id, f"{self._seq:x}")
        if request.name is not None:
            router.register(request.name, pid)
        actor = self.actors[pid] = Actor(self, pid, entry.id, handler, args, dict(request.context))
        parent = request.parent
        if parent is not None and request.link:
            actor.links.add(parent)
            router.watch(parent, pid, link=True)
        if parent is not None and request.monitor:
            actor.monitors.add(parent)
        for message in first:
            actor._push_message(message)
        actor._start()
        return pid

    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        limit = self.limits.max_inbox
        if limit and actor._queued() >= limit:
            raise WippyError(LIMIT_EXCEEDED, f"the inbox of actor {pid} is full ({limit} messages waiting)",
                             retryable=True)
        actor._push_message(Message(topic, self.kernel.vm.to_python(payload, "payload"), sender))
        return True

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor._push_event(event)
        return True

    def terminate(self, pid: str, error: Any) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        if error is None:
            actor._fail(WippyError(CANCELED, "actor terminated", retryable=False))
        else:
            actor._end(ExitResult(error=error))
        return True

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        actor._push_event({"kind": CANCEL, "from": sender, "reason": reason, "deadline": int(deadline * 1000)})
        actor._force_after(deadline, reason)
        return True

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        actor = self.actors.get(pid)
        if actor is None:
            return False
        (actor.links if link else actor.monitors).add(watcher)
        return True

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        actor = self.actors.get(pid)
        if actor is not None:
            (actor.links if link else actor.monitors).discard(watcher)

    def alive(self, pid: str) -> bool:
        return pid in self.actors

    def forget(self, proc: Process) -> None:
        return None  # its actors are not Lua processes

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"pid": a.pid, "entry": a.entry_id, "host": self.host_id, "inbox": a._queued()}
                for a in self.actors.values()]


def _check_handler(entry: Entry, registry: Any, report: Callable[[str | None, str], None]) -> None:
    handler = entry.data.get("handler")
    if isinstance(handler, str) and handler.count(":") != 1:
        report("handler", f"must look like 'package.module:function', got {handler!r}")


ACTOR_SPEC = KindSpec(
    ACTOR_KIND, description="a Python async function run as an actor on a python.host",
    fields={"handler": Field("string", required=True, doc="'package.module:function', an async function")},
    validate=_check_handler,
)
HOST_SPEC = ProviderSpec(
    HOST_KIND, factory=PythonHost, description="runs python.actor entries as asyncio tasks",
    fields={
        "paths": Field("list", items="string", doc="directories (relative to this file) added to sys.path"),
        "limits": Field("mapping", fields={"inbox": Field("integer")}, doc="inbox: messages one actor may queue"),
    },
)
SPECS = [HOST_SPEC, ACTOR_SPEC]
