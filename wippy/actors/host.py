"""What the router and actors need from a host, and the two records that cross it.

The full provider contract (lifecycle, admin, specs) is :class:`wippy.providers.HostProvider`;
this module holds only the part the actor layer calls, so the actor layer never imports a
provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.process import Process
    from wippy.actors.scheduler import Dispatcher


@dataclass
class SpawnRequest:
    """Everything needed to start one actor. Built by :func:`wippy.actors.host.spawn_request`
    from Lua, and by Python callers (supervisors, the CLI) directly."""

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


class Host(Protocol):
    """The routing contract: what the router hands a host for the PIDs it owns."""

    host_id: str
    running: bool
    kernel: Kernel

    @property
    def kind(self) -> str: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    def spawn(self, request: SpawnRequest) -> str: ...

    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool: ...

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool: ...

    def terminate(self, pid: str, error: Any) -> bool: ...

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool: ...

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool: ...

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None: ...

    def alive(self, pid: str) -> bool: ...

    def accepts(self, entry_kind: str) -> bool: ...

    def barrier(self) -> Any: ...

    def forget(self, proc: Process) -> None: ...

    def snapshot(self) -> list[dict[str, Any]]: ...
