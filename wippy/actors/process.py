"""The process: a PID-addressed actor with an inbox, topic listeners, events, monitors and
links, following Erlang's semantics for how exits propagate."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from wippy.actors.actor import Actor
from wippy.actors.channel import Channel
from wippy.actors.host import ExitResult
from wippy.errors import CANCELED, LIMIT_EXCEEDED, WippyError

if TYPE_CHECKING:
    from wippy.actors.host import Host


class Process(Actor):
    """One running process. Idle, it is a few Python objects and a suspended coroutine.

    Messages are routed when they arrive if the process already said where they go (a
    ``listen`` on their topic, or ``inbox()``); otherwise they wait in arrival order until
    it does, so a ``listen`` made after a message arrived still receives it."""

    __slots__ = (
        "host", "pid", "entry_id", "_inbox", "_pending", "_events", "listeners", "monitors",
        "monitoring", "links", "trap_links", "exit_result", "_pid_bytes", "profile",
    )

    noun = "process"  # how messages about this actor name it

    def __init__(
        self, host: Host, pid: str | None, entry_id: str, profile: bytes, context: dict[str, Any]
    ) -> None:
        super().__init__(host.kernel, host.dispatcher, context)
        self.host = host
        self.pid = pid  # type: ignore[assignment]  # None only for a function frame without one yet
        self._pid_bytes = pid.encode() if pid is not None else None
        self.entry_id = entry_id
        self.profile = profile
        self._inbox: Channel | None = None
        self._pending: deque[Any] | None = None  # messages with nowhere to go yet
        self._events: Channel | None = None
        self.listeners: dict[bytes, Channel] | None = None  # topic -> its own channel
        self.monitors: set[str] | None = None  # who monitors me
        self.monitoring: set[str] | None = None  # whom I monitor
        self.links: set[str] | None = None
        self.trap_links = False
        self.exit_result: ExitResult | None = None

    pid: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.pid} {self.entry_id}>"

    def describe(self) -> str:
        return f"{self.noun} {self.pid} ({self.entry_id})"

    def own_pid(self) -> str:
        """This actor's PID (a function frame gets one the first time it is asked)."""
        return self.pid

    @property
    def step_budget(self) -> float | None:  # type: ignore[override]
        return self.host.limits.step_budget

    @property
    def events(self) -> Channel:
        if self._events is None:
            self._events = Channel(self.scheduler, None)
        return self._events

    @property
    def inbox(self) -> Channel:
        """The inbox; made on first use, when the messages waiting for it move in."""
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = Channel(self.scheduler, None)
            pending, self._pending = self._pending, None
            for message in pending or ():
                inbox.push(message)
        return inbox

    def listen(self, topic: bytes) -> Channel:
        """The channel for ``topic`` (the same one on every call); messages of that topic
        already waiting move into it."""
        listeners = self.listeners
        if listeners is None:
            listeners = self.listeners = {}
        ch = listeners.get(topic)
        if ch is None:
            ch = listeners[topic] = Channel(self.scheduler, None)
            pending = self._pending
            if pending:
                keep: deque[Any] = deque()
                for message in pending:
                    (ch.push if message[b"_t"] == topic else keep.append)(message)
                self._pending = keep or None
        return ch

    def unlisten(self, ch: Channel) -> bool:
        """Stop listening on ``ch``; its undelivered messages go back to be routed again."""
        for topic, listener in list((self.listeners or {}).items()):
            if listener is ch:
                del self.listeners[topic]  # type: ignore[union-attr]
                self._reroute(listener)
                return True
        return False

    def _reroute(self, listener: Channel) -> None:
        pending = list(listener.buffer)
        listener.buffer.clear()
        listener.close()
        for message in pending:
            self.route(message[b"_t"], message)

    def queued(self) -> int:
        """Messages received and not yet taken (for status tables)."""
        return len(self._inbox.buffer if self._inbox is not None else ()) + len(self._pending or ())

    def start(self, args: Any) -> None:
        task = self.spawn_task(self.kernel.vm.entry_task, self.entry_id.encode(), self.profile, args)
        self.scheduler.start(task)

    def restart_with(self, entry_id: str, args: Any) -> None:
        """``process.upgrade``: new code, same PID, inbox, links and monitors."""
        for task in self.tasks:
            task.finished = True
        self.tasks = []
        # The new code cannot reach the old code's listener channels: their messages are
        # routed again, and the topics may be listened to again.
        listeners, self.listeners = self.listeners, None
        for listener in (listeners or {}).values():
            self._reroute(listener)
        self.entry_id = entry_id
        self.start(args)

    # Incoming ------------------------------------------------------------------------------
    def deliver(self, topic: bytes, payload: Any, sender: bytes | None) -> None:
        self.route(topic, self.kernel.vm.make_message(topic, sender, payload))

    def check_room(self, topic: bytes) -> None:
        """Raise LIMIT_EXCEEDED if the queue a message of ``topic`` would join is full."""
        limit = self.host.limits.max_inbox
        if not limit:
            return
        listeners = self.listeners
        queue = listeners.get(topic) if listeners is not None else None
        if queue is None:
            queue = self._inbox
        waiting = len(queue.buffer) if queue is not None else len(self._pending or ())
        if waiting >= limit:
            raise WippyError(LIMIT_EXCEEDED, f"the inbox of {self.describe()} is full ({limit} messages "
                                             "waiting); it is not reading them", retryable=True)

    def route(self, topic: bytes, message: Any) -> None:
        listeners = self.listeners
        if listeners is not None:
            target = listeners.get(topic)
            if target is not None:
                target.push(message)
                return
        inbox = self._inbox
        if inbox is not None:
            inbox.push(message)
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        pending.append(message)

    def deliver_event(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        sender = event.get("from")
        if kind == "LINK_DOWN":
            if self.links is not None:
                self.links.discard(sender)
            if not self.trap_links:
                self.terminate(self._link_error(sender, event["result"]["error"]))
                return
        elif kind == "EXIT" and self.monitoring is not None:
            self.monitoring.discard(sender)
        vm = self.kernel.vm
        result = event.get("result")
        if len(event) == 3 and result is not None and isinstance(sender, str):  # EXIT, LINK_DOWN: the hot path
            self.events.push(vm.make_exit_event(kind.encode(), sender.encode(), result["value"], result["error"]))
            return
        fields = vm.to_lua({k: v for k, v in event.items() if k != "result"})
        if result is None:
            self.events.push(vm.make_event(fields, False))
        else:
            self.events.push(vm.make_event(fields, True, result["value"], result["error"]))

    def _link_error(self, sender: Any, error: Any) -> Any:
        vm = self.kernel.vm
        cause = vm.to_python(error)
        return vm.to_lua(WippyError(
            cause.kind, f"linked process {sender} failed: {cause.message}", retryable=cause.retryable
        ))

    # Ending --------------------------------------------------------------------------------
    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        self.exit(result_of(ok, values))

    def terminate(self, error: Any) -> None:
        self.exit(ExitResult(error=error))

    def cancel_error(self) -> Any:
        return self.kernel.vm.to_lua(WippyError(CANCELED, "process terminated", retryable=False))

    def exit(self, result: ExitResult) -> None:
        if self.exit_result is not None:
            return
        self.exit_result = result
        self.close()
        pid = self.pid
        if pid is None:  # a function frame nobody could address: nothing to tell
            return
        self.host.forget(self)
        router = self.kernel.router
        for target in self.monitoring or ():
            router.unwatch(target, pid, link=False)
        router.exited(pid, result, self.monitors or set(), self.links or set())


def result_of(ok: bool, values: tuple[Any, ...]) -> ExitResult:
    """How a main task's ``(ok, values)`` ends its actor (see ``rt.entry_task``)."""
    if ok and values[0]:
        return ExitResult(value=values[2] if len(values) > 2 else values[1][1])
    return ExitResult(error=values[1] if ok else values[0])
