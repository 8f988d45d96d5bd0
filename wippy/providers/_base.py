"""The provider contract: :class:`HostProvider` and the :class:`ProviderSpec` that registers it.

A provider decides what an actor *is* (ephemeral on ``process.host``, durable on
``workflow.host``, remote on ``temporal.worker``) and how the commands its Lua code yields
are carried out (its :class:`~wippy.actors.scheduler.Dispatcher`). Everything else -- PIDs,
names, routing messages and exit signals between hosts -- is the router's job, so a
provider only answers for its own PIDs.

Values handed to a provider (arguments, message payloads, exit results) are Lua values
already copied for the receiver; a provider that stores them converts them with
``kernel.vm.to_python`` and back with ``to_lua``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from wippy.actors.host import Limits
from wippy.errors import INVALID, NOT_FOUND, UNAVAILABLE, WippyError
from wippy.registry.kinds import HOST, KindSpec

if TYPE_CHECKING:
    from wippy.actors.host import SpawnRequest
    from wippy.actors.kernel import Kernel
    from wippy.actors.process import Process
    from wippy.actors.scheduler import Dispatcher
    from wippy.registry import Entry


@dataclass(frozen=True)
class ProviderSpec(KindSpec):
    """How a provider registers its host kind: the kind name, YAML field validation
    (``validate``), the ``factory`` that builds a started host (usually the
    :class:`HostProvider` subclass itself), and optionally ``admin``, which opens the
    provider's :class:`~wippy.providers.WorkflowAdmin` for ``wippy workflows``.

    Publish it in the ``wippy.providers`` entry-point group of your package::

        [project.entry-points."wippy.providers"]
        my-host = "my_package:SPEC"
    """

    role: str = HOST
    factory: Callable[[Kernel, Entry], HostProvider] | None = None


class HostProvider(ABC):
    """One host entry once started. Subclass it to add a kind of host.

    The abstract methods are what the router calls for the PIDs this host owns (PIDs are
    ``{host_id|local_id}``, made with :func:`wippy.providers.make_pid`). The rest have
    defaults that suit a host which keeps nothing on disk.
    """

    kind: ClassVar[str] = ""
    #: Entry kinds this host runs (``process.spawn`` of other kinds is refused).
    runs: ClassVar[tuple[str, ...]] = ("process.lua",)

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        self.kernel = kernel
        self.entry = entry
        self.host_id = entry.id
        self.running = False
        self.limits = Limits.from_entry(entry.data, entry.id)

    # Lifecycle -------------------------------------------------------------------------
    @property
    @abstractmethod
    def dispatcher(self) -> Dispatcher:
        """The command handlers for actors on this host."""

    async def start(self) -> None:
        """Start accepting spawns. Register with ``self.kernel.router.add_host(self)``."""
        self.kernel.router.add_host(self)
        self.running = True

    async def stop(self, timeout: float) -> None:
        """Stop every actor on this host; ``timeout`` is how long they get to finish."""
        self.running = False
        self.kernel.router.remove_host(self.host_id)

    def start_note(self) -> str | None:
        """One line for ``wippy run`` once started (e.g. how many workflows resumed)."""
        return None

    # Routing (the router calls these for this host's PIDs) -------------------------------
    @abstractmethod
    def spawn(self, request: SpawnRequest) -> str:
        """Start an actor and return its PID; raise WippyError if it cannot start."""

    @abstractmethod
    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        """Queue a message; False if no such actor (the message is dropped)."""

    #: True only for a ProcessTable whose delivery never blocks or needs a barrier.
    instant_delivery: ClassVar[bool] = False

    @abstractmethod
    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        """Queue a lifecycle event (EXIT, LINK_DOWN, CANCEL) for an actor."""

    @abstractmethod
    def terminate(self, pid: str, error: Any) -> bool:
        """End an actor now with Lua error ``error`` (None: the host's own "terminated"
        error); False if it does not exist."""

    @abstractmethod
    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        """Ask an actor to finish (CANCEL event); force it after ``deadline`` seconds."""

    @abstractmethod
    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        """Record that ``watcher`` monitors (or is linked to) ``pid``; False if ``pid``
        does not exist."""

    @abstractmethod
    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        """Forget a monitor or link of ``watcher`` on ``pid``."""

    def alive(self, pid: str) -> bool:
        """Whether ``pid`` is a live actor of this host (names are released when not)."""
        return False

    def forget(self, proc: Process) -> None:
        """``proc`` has exited: drop it from the host's table."""
        return None

    def barrier(self) -> Any:
        """An awaitable that resolves once what was just handed to this host is durable,
        or None for a host that keeps nothing (senders and spawners wait on it)."""
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Live actors for ``wippy run --status``: dicts with pid, entry, host, inbox."""
        return []

    # Helpers for implementors -------------------------------------------------------------
    def accepts(self, entry_kind: str) -> bool:
        return entry_kind in self.runs

    def entry_for_spawn(self, entry_id: str) -> Entry:
        """The entry a spawn on this host names, or the error the spawner should get: host
        down, no such entry, or an entry of a kind this host does not run."""
        if not self.running:
            raise WippyError(UNAVAILABLE, f"host {self.host_id} is not running", retryable=True)
        entry = self.kernel.registry.get(entry_id)
        if entry is None:
            raise WippyError(NOT_FOUND, f"{self.runs[0].split('.')[0]} {entry_id} not found", retryable=False)
        if not self.accepts(entry.kind):
            raise WippyError(INVALID, f"{entry.id} is a {entry.kind} entry; {self.host_id} (a {self.kind}) runs "
                                      f"only {' and '.join(self.runs)} entries", retryable=False)
        return entry
