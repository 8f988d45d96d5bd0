"""A Python actor: an async function with a PID, an inbox and lifecycle events."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from wippy.errors import CANCELED, INTERNAL, NOT_FOUND, WippyError
from wippy.providers import ExitResult, Kernel, SpawnRequest

if TYPE_CHECKING:
    from wippy_python_host._host import PythonHost

log = logging.getLogger("wippy_python_host")

# Event kinds, as the runtime's Python side names them (Lua sees pid.exit, ...).
EXIT, LINK_DOWN, CANCEL = "EXIT", "LINK_DOWN", "CANCEL"

Handler = Callable[..., Awaitable[Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """A message: its topic, its payload as Python data, and the sender's PID (None when
    it came from outside any actor)."""

    topic: str
    payload: Any
    sender: str | None


@dataclass(frozen=True)
class Event:
    """A lifecycle event. ``EXIT`` (a monitored actor ended) and ``LINK_DOWN`` (a linked
    actor failed; only seen with ``trap_links``) carry the other actor's PID in ``sender``
    and its ``value`` or ``error``; ``CANCEL`` carries who asked (``sender``), the
    ``reason`` and the ``deadline`` in seconds after which the actor is terminated."""

    kind: str
    sender: str | None
    value: Any = None
    error: WippyError | None = None
    reason: str = ""
    deadline: float | None = None


class Actor:
    """What a handler gets as its first argument: its PID and its ways to talk.

    ``async def main(actor, *args)``: return a value to end normally (a monitor gets it in
    EXIT), raise :class:`~wippy.WippyError` (or any exception, seen as ``Internal``) to
    fail. Payloads and results are data: None, bool, int, float, str, bytes, lists and
    dicts of them.
    """

    def __init__(self, host: PythonHost, pid: str, entry_id: str, handler: Handler, args: list[Any],
                 context: dict[str, Any]) -> None:
        self.host = host
        self.kernel: Kernel = host.kernel
        self.pid = pid
        self.entry_id = entry_id
        self.context = context
        #: Receive LINK_DOWN as an event instead of being terminated with the linked actor.
        self.trap_links = False
        self.monitors: set[str] = set()  # who monitors me
        self.monitoring: set[str] = set()  # whom I monitor
        self.links: set[str] = set()
        self.exit_result: ExitResult | None = None
        self._handler = handler
        self._args = args
        self._messages: deque[Message] = deque()
        self._events: deque[Event] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Actor {self.pid} {self.entry_id}>"

    @property
    def alive(self) -> bool:
        return self.exit_result is None

    # Receiving ---------------------------------------------------------------------------
    async def receive(self, *topics: str, timeout: float | None = None) -> Message:
        """The next message (of one of ``topics``, if given: others stay queued in order).
        Raises TimeoutError after ``timeout`` seconds."""
        return await self._wait(lambda: self._take_message(topics), timeout)

    async def event(self, timeout: float | None = None) -> Event:
        """The next lifecycle event (EXIT, LINK_DOWN with trap_links, CANCEL)."""
        return await self._wait(lambda: self._events.popleft() if self._events else None, timeout)

    async def next(self, timeout: float | None = None) -> Message | Event:
        """Whichever comes first: an event (events go first) or a message."""
        return await self._wait(self._take_any, timeout)

    def _take_any(self) -> Message | Event | None:
        if self._events:
            return self._events.popleft()
        return self._messages.popleft() if self._messages else None

    def _take_message(self, topics: tuple[str, ...]) -> Message | None:
        if not topics:
            return self._messages.popleft() if self._messages else None
        for i, message in enumerate(self._messages):
            if message.topic in topics:
                del self._messages[i]
                return message
        return None

    async def _wait(self, take: Callable[[], T | None], timeout: float | None) -> T:
        async with asyncio.timeout(timeout):
            while True:
                item = take()
                if item is not None:
                    return item
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # Sending and spawning ------------------------------------------------------------------
    def send(self, dest: str, topic: str, payload: Any = None) -> None:
        """Send ``payload`` to a PID or registered name. Raises NotFound if nobody is there."""
        router = self.kernel.router
        target = router.resolve(dest)
        if not router.send(target, topic, self.kernel.vm.to_lua(payload, "payload"), self.pid):
            raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)

    def spawn(self, entry_id: str, host: str, *args: Any, monitor: bool = False, link: bool = False,
              name: str | None = None, context: dict[str, Any] | None = None) -> str:
        """Start ``entry_id`` on ``host`` (a Lua process on a process.host, another Python
        actor, ...) with ``args``; returns its PID. ``monitor``: EXIT comes to this actor;
        ``link``: the two are linked."""
        kernel = self.kernel
        target = kernel.router.host_for_spawn(host, kernel.registry)
        request = SpawnRequest(entry_id, kernel.lua_args(args), parent=self.pid,
                               context={**self.context, **(context or {})}, name=name,
                               monitor=monitor, link=link)
        pid = target.spawn(request)
        if monitor:
            self.monitoring.add(pid)
        return pid

    # Watching ------------------------------------------------------------------------------
    def monitor(self, dest: str) -> None:
        """EXIT comes to this actor when ``dest`` ends (at once, NotFound, if it is gone)."""
        router = self.kernel.router
        target = router.resolve(dest)
        self.monitoring.add(target)
        if not router.watch(target, self.pid, link=False):
            error = WippyError(NOT_FOUND, f"process {target} not found", retryable=False)
            self._events.append(Event(EXIT, target, error=error))
            self._wake()

    def unmonitor(self, dest: str) -> None:
        router = self.kernel.router
        target = router.resolve(dest)
        router.unwatch(target, self.pid, link=False)
        self.monitoring.discard(target)
        self._drop_events(EXIT, target)

    def link(self, dest: str) -> None:
        """Link to ``dest``: if either fails, the other gets LINK_DOWN (and without
        ``trap_links`` ends with it). Raises NotFound if ``dest`` is gone."""
        router = self.kernel.router
        target = router.resolve(dest)
        if not router.watch(target, self.pid, link=True):
            raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)
        self.links.add(target)

    def unlink(self, dest: str) -> None:
        router = self.kernel.router
        target = router.resolve(dest)
        router.unwatch(target, self.pid, link=True)
        self.links.discard(target)
        self._drop_events(LINK_DOWN, target)

    def _drop_events(self, kind: str, sender: str) -> None:
        kept = [e for e in self._events if not (e.kind == kind and e.sender == sender)]
        self._events.clear()
        self._events.extend(kept)

    # Control and names ---------------------------------------------------------------------
    def terminate(self, dest: str) -> None:
        """End ``dest`` now (its monitors see an error). Raises NotFound if it is gone."""
        router = self.kernel.router
        target = router.resolve(dest)
        host = router.host_of(target)
        if host is None or not host.terminate(target, None):
            raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)

    def cancel(self, dest: str, deadline: float = 5.0, reason: str = "") -> None:
        """Ask ``dest`` to finish (it gets CANCEL); it is terminated after ``deadline`` s."""
        router = self.kernel.router
        target = router.resolve(dest)
        host = router.host_of(target)
        if host is None or not host.cancel(target, self.pid, reason, deadline):
            raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)

    def register(self, name: str) -> None:
        """Register this actor under ``name`` (released when it ends)."""
        self.kernel.router.register(name, self.pid)

    def unregister(self, name: str) -> bool:
        return self.kernel.router.unregister(name, self.pid)

    def lookup(self, name: str) -> str:
        """The PID registered as ``name``; raises NotFound."""
        return self.kernel.router.resolve(name)

    # Called by the host ----------------------------------------------------------------------
    def _start(self) -> None:
        self._task = self.kernel.scheduler.loop.create_task(self._main(), name=f"actor {self.pid}")

    async def _main(self) -> None:
        try:
            value = await self._handler(self, *self._args)
        except asyncio.CancelledError:  # terminated (already ended), or the loop is closing
            self._fail(WippyError(CANCELED, f"actor {self.pid} was cancelled", retryable=False))
        except WippyError as err:
            self._fail(err)
        except Exception as exc:
            log.debug("actor %s (%s) failed", self.pid, self.entry_id, exc_info=True)
            self._fail(WippyError(INTERNAL, f"{type(exc).__name__}: {exc}", retryable=False,
                                  stack=traceback.format_exc()))
        else:
            try:
                result = self.kernel.vm.to_lua(value, "result")
            except WippyError as err:
                self._fail(err)
            else:
                self._end(ExitResult(value=result))

    def _push_message(self, message: Message) -> None:
        self._messages.append(message)
        self._wake()

    def _queued(self) -> int:
        return len(self._messages)

    def _push_event(self, event: dict[str, Any]) -> None:
        kind, sender = event["kind"], event.get("from")
        vm = self.kernel.vm
        result = event.get("result") or {}
        value = None if result.get("value") is None else vm.to_python(result["value"], "result")
        error = None if result.get("error") is None else vm.to_python(result["error"], "error")
        if kind == LINK_DOWN:
            self.links.discard(sender)
            if not self.trap_links:
                cause = error if isinstance(error, WippyError) else WippyError(INTERNAL, "failed")
                self._fail(WippyError(cause.kind, f"linked process {sender} failed: {cause.message}",
                                      retryable=cause.retryable))
                return
        elif kind == EXIT:
            self.monitoring.discard(sender)
        deadline = event.get("deadline")
        self._events.append(Event(kind, sender, value, error, str(event.get("reason") or ""),
                                  None if deadline is None else deadline / 1000))
        self._wake()

    def _force_after(self, seconds: float, reason: str) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        error = WippyError(CANCELED, f"actor did not finish within the cancel deadline ({reason})", retryable=False)
        self._deadline = self.kernel.scheduler.loop.call_later(seconds, self._fail, error)

    def _fail(self, error: WippyError) -> None:
        self._end(ExitResult(error=self.kernel.vm.to_lua(error)))

    def _end(self, result: ExitResult) -> None:
        """End once: tell the host, the router (monitors, links, names), stop the task."""
        if self.exit_result is not None:
            return
        self.exit_result = result
        if self._deadline is not None:
            self._deadline.cancel()
        self.host._forget(self)
        router = self.kernel.router
        for target in self.monitoring:
            router.unwatch(target, self.pid, link=False)
        router.exited(self.pid, result, set(self.monitors), set(self.links))
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _finished(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
