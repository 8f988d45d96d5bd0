"""The process: a PID-addressed actor with an inbox, topic listeners, events, monitors and
links, following Erlang's semantics for how exits propagate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.actors.actor import Actor
from wippy.actors.channel import Channel
from wippy.actors.host import ExitResult
from wippy.errors import CANCELED, WippyError

if TYPE_CHECKING:
    from wippy.actors.host import Host


class Process(Actor):
    """One running process. Idle, it is a few Python objects and a suspended coroutine."""

    __slots__ = (
        "host", "pid", "entry_id", "inbox", "_events", "listeners", "monitors", "monitoring",
        "links", "trap_links", "exit_result", "_pid_bytes", "profile",
    )

    def __init__(
        self, host: Host, pid: str, entry_id: str, profile: bytes, context: dict[str, Any]
    ) -> None:
        super().__init__(host.kernel, host.dispatcher, context)
        self.host = host
        self.pid = pid
        self._pid_bytes = pid.encode()
        self.entry_id = entry_id
        self.profile = profile
        self.inbox = Channel(self.scheduler, None)
        self._events: Channel | None = None
        self.listeners: dict[bytes, Channel] | None = None  # topic -> its own channel
        self.monitors: set[str] | None = None  # who monitors me
        self.monitoring: set[str] | None = None  # whom I monitor
        self.links: set[str] | None = None
        self.trap_links = False
        self.exit_result: ExitResult | None = None

    noun = "process"  # how messages about this actor name it

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.entry_id}>"

    def describe(self) -> str:
        return f"process {self.pid} ({self.entry_id})"

    @property
    def events(self) -> Channel:
        if self._events is None:
            self._events = Channel(self.scheduler, None)
        return self._events

    def start(self, args: Any) -> None:
        task = self.spawn_task(self.kernel.vm.entry_task, self.entry_id.encode(), self.profile, args)
        self.scheduler.start(task)

    def restart_with(self, entry_id: str, args: Any) -> None:
        """``process.upgrade``: new code, same PID, inbox, links and monitors."""
        for task in self.tasks:
            task.finished = True
        self.tasks = []
        # The new code cannot reach the old code's listener channels: their topics go back
        # to the inbox, with any messages buffered in them, and may be listened to again.
        listeners, self.listeners = self.listeners, None
        for listener in (listeners or {}).values():
            pending = list(listener.buffer)
            listener.buffer.clear()
            listener.close()
            for message in pending:
                self.inbox.push(message)
        self.entry_id = entry_id
        self.start(args)

    # Incoming ------------------------------------------------------------------------------
    def deliver(self, topic: bytes, payload: Any, sender: bytes | None) -> None:
        message = self.kernel.vm.make_message(topic, sender, payload)
        listeners = self.listeners
        if listeners is not None:
            target = listeners.get(topic)
            if target is not None:
                target.push(message)
                return
        self.inbox.push(message)

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
        fields = vm.to_lua({k: v for k, v in event.items() if k != "result"})
        result = event.get("result")
        if result is None:
            self.events.push(vm.make_event(fields, False))
        else:
            self.events.push(vm.make_event(fields, True, result["value"], result["error"]))

    def _link_error(self, sender: str, error: Any) -> Any:
        vm = self.kernel.vm
        cause = vm.to_python(error)
        return vm.to_lua(WippyError(
            cause.kind, f"linked process {sender} failed: {cause.message}", retryable=cause.retryable
        ))

    # Ending --------------------------------------------------------------------------------
    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        if ok and values[0]:
            self.exit(ExitResult(value=values[1][1]))
        elif ok:
            self.exit(ExitResult(error=values[1]))
        else:
            self.exit(ExitResult(error=values[0]))

    def terminate(self, error: Any) -> None:
        self.exit(ExitResult(error=error))

    def cancel_error(self) -> Any:
        return self.kernel.vm.to_lua(WippyError(CANCELED, "process terminated", retryable=False))

    def exit(self, result: ExitResult) -> None:
        if self.exit_result is not None:
            return
        self.exit_result = result
        self.close()
        self.host.forget(self)
        router = self.kernel.router
        for target in self.monitoring or ():
            router.unwatch(target, self.pid, link=False)
        router.exited(self.pid, result, self.monitors or set(), self.links or set())
