"""The host-provider interface: what a host must do for the actors it runs.

A provider decides what an actor *is* (ephemeral on ``process.host``, durable on
``workflow.host``, remote on ``temporal.worker``) and how the commands its Lua code yields
are carried out (its :class:`~wippy.actors.scheduler.Dispatcher`). Everything else -- PIDs,
names, routing messages and exit signals between hosts -- is the router's job, so a
provider only answers for its own PIDs.

Values handed to a provider (arguments, message payloads, exit results) are Lua values
already copied for the receiver; a provider that stores them converts them with
``runtime.vm.to_python`` and back with ``to_lua``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.actors.scheduler import Dispatcher
    from wippy.host.runtime import Runtime
    from wippy.registry import Entry


@dataclass
class SpawnRequest:
    """Everything needed to start one actor."""

    entry_id: str
    args: Any  # packed Lua table {n = count, ...}
    parent: str | None = None  # PID of the spawner, if it is a process
    context: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    messages: list[tuple[str, Any]] = field(default_factory=list)  # (topic, payload) first
    monitor: bool = False  # parent monitors the child
    link: bool = False  # parent and child are linked


@dataclass
class ExitResult:
    """How an actor ended: ``error`` is a Lua error object, or None for a normal exit."""

    value: Any = None
    error: Any = None

    @property
    def abnormal(self) -> bool:
        return self.error is not None


class HostProvider(ABC):
    """One host entry (``process.host``, ``workflow.host``, ...) once started."""

    kind: str = ""

    def __init__(self, runtime: Runtime, entry: Entry) -> None:
        self.runtime = runtime
        self.entry = entry
        self.host_id = entry.id
        self.running = False

    @property
    @abstractmethod
    def dispatcher(self) -> Dispatcher:
        """The command handlers for actors on this host."""

    async def start(self) -> None:
        self.running = True

    async def stop(self, timeout: float) -> None:
        """Stop every actor on this host; ``timeout`` is how long they get to finish."""
        self.running = False

    @abstractmethod
    def spawn(self, request: SpawnRequest) -> str:
        """Start an actor and return its PID; raise WippyError if it cannot start."""

    @abstractmethod
    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        """Queue a message; False if no such actor (the message is dropped)."""

    @abstractmethod
    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        """Queue a lifecycle event (EXIT, LINK_DOWN, CANCEL) for an actor."""

    @abstractmethod
    def terminate(self, pid: str, error: Any) -> bool:
        """End an actor now with Lua error ``error``; False if it does not exist."""

    @abstractmethod
    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        """Ask an actor to finish (CANCEL event); force it after ``deadline`` seconds."""

    @abstractmethod
    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        """Record that ``watcher`` monitors (or is linked to) ``pid``."""

    @abstractmethod
    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        """Forget a monitor or link of ``watcher`` on ``pid``."""

    def workflow_entry(self, entry_id: str) -> Entry:
        """The ``workflow.lua`` entry a spawn on this (workflow) host names, or the error
        the spawner should get: host down, no such entry, or an entry of another kind."""
        from wippy.errors import INVALID, NOT_FOUND, UNAVAILABLE, WippyError

        if not self.running:
            raise WippyError(UNAVAILABLE, f"host {self.host_id} is not running", retryable=True)
        entry = self.runtime.registry.get(entry_id)
        if entry is None:
            raise WippyError(NOT_FOUND, f"workflow {entry_id} not found", retryable=False)
        if entry.kind != "workflow.lua":
            raise WippyError(INVALID, f"{entry.id} is a {entry.kind} entry; only workflow.lua entries run on "
                                      f"{self.host_id} (a {self.kind})", retryable=False)
        return entry

    def alive(self, pid: str) -> bool:
        return False

    def barrier(self) -> Any:
        """An awaitable that resolves once what was just handed to this host is durable,
        or None for a host that keeps nothing (senders and spawners wait on it)."""
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """A snapshot of live actors for ``wippy ps``."""
        return []
