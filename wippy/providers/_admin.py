"""The workflow admin protocol: what ``wippy workflows`` needs from a durable provider.

A provider whose workflows outlive a runtime (``workflow.host`` keeps them in a SQLite
store, ``temporal.worker`` on a Temporal server) lets the command line look at and steer
them from outside a running runtime. It subclasses :class:`WorkflowAdmin` and returns an
instance from its spec's ``admin(entry, registry)``; the command line then only talks to
that object, whatever the provider is::

    admin = spec.admin(entry, registry)   # no I/O yet
    async with admin:                      # close() at the end
        runs = await admin.list(ListInput(status="running"))
        details = await admin.show("order-1")
        done = await admin.signal(SignalInput("order-1", "approve", {"by": "ops"}))
        print(done.message)

Inputs are small frozen dataclasses (new optional fields can be added without breaking
providers); outputs are plain dataclasses in a provider-neutral shape. Values are the
Python form of Lua values (``None``, numbers, strings, lists, dicts, :class:`WippyError`).

**One error path.** Every failure is a :class:`~wippy.errors.WippyError` whose message
names the store file or the server and says what to do: a missing, damaged or unreadable
store, an unreachable server, an unknown or closed workflow. A request that is wrong in
itself (a filter a store cannot apply, a reserved topic) raises :class:`InvalidRequest`,
which the command line reports as a usage error (exit code 2). Nothing else escapes.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.registry import Entry, Registry

#: The status names of workflow runs, on every provider (a provider that has no
#: ``timed_out`` or ``continued_as_new`` runs simply lists none).
STATUSES = ("running", "completed", "failed", "terminated", "canceled", "timed_out",
            "continued_as_new")

DEFAULT_WAIT = 2.0  # seconds a command waits for a running host to take it
DEFAULT_CANCEL_DEADLINE = 5.0  # seconds a canceled workflow gets before it is terminated


class InvalidRequest(WippyError):
    """The request itself is wrong (bad filter, reserved topic): fix the arguments.
    Nothing was read or changed."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID, message, retryable=False)


# Shown values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Value:
    """A workflow value inside a :class:`Text`: the reader prints it compactly (one-line
    JSON, an error as ``KIND: message``), cut to ``width`` characters."""

    value: Any
    width: int = 60


@dataclass(frozen=True)
class Text:
    """A line of text made of words and values, joined by spaces. With ``width``, runs of
    whitespace are collapsed and the line is cut to that many characters."""

    parts: tuple[str | Value, ...]
    width: int | None = None


#: A table cell or a line: plain text, a value, or a mix of both.
Shown = str | Value | Text


# Inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ListInput:
    """Which workflows :meth:`WorkflowAdmin.list` returns."""

    status: str | None = None  #: one of :data:`STATUSES`, or every status
    #: search attribute -> value, compared as text (``true``, ``42``, ``gold``); all must match
    attrs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InvalidRequest(f"unknown status {self.status!r} (expected one of {', '.join(STATUSES)})")
        for key in self.attrs:
            if not key:
                raise InvalidRequest("a search attribute filter needs a name (KEY=VALUE)")


@dataclass(frozen=True)
class SignalInput:
    """A message for a running workflow: delivered exactly once, as a durable input."""

    workflow_id: str
    topic: str
    payload: Any = None
    wait: float = DEFAULT_WAIT  #: seconds to wait for a running host to take it (0: do not)

    def __post_init__(self) -> None:
        if not self.topic or self.topic.startswith("@"):
            raise InvalidRequest(f"topic {self.topic!r} must be non-empty and must not start with '@' "
                                 "(those topics belong to the runtime)")


@dataclass(frozen=True)
class CancelInput:
    """Ask a running workflow to finish: it gets a CANCEL event with ``reason`` and
    ``deadline``, and is terminated if it is still running when the deadline passes."""

    workflow_id: str
    reason: str = "canceled from the command line"
    deadline: float = DEFAULT_CANCEL_DEADLINE
    wait: float = DEFAULT_WAIT


@dataclass(frozen=True)
class TerminateInput:
    """End a running workflow now (status ``terminated``)."""

    workflow_id: str
    reason: str = "terminated from the command line"
    wait: float = DEFAULT_WAIT


# Outputs --------------------------------------------------------------------------------------
@dataclass
class WorkflowRun:
    """One workflow run as listed."""

    workflow_id: str
    run_id: str
    status: str  #: one of :data:`STATUSES` (``unknown`` when the provider cannot say)
    host: str  #: the host entry ID
    type: str  #: the workflow type (the ``workflow.lua`` entry ID, or the server's name)
    entry: str | None  #: the ``workflow.lua`` entry of this project, when known
    created: float | None  #: unix seconds
    closed: float | None
    search: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    #: provider-specific facts, shown in JSON output only (task queue, update time, ...)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class HistoryEvent:
    """One record of a run's history: its cells (one per :attr:`WorkflowHistory.columns`)
    and the record itself as the provider keeps it (JSON output)."""

    cells: tuple[Shown, ...]
    data: Any


@dataclass
class WorkflowHistory:
    columns: tuple[str, ...]  #: the header of the history table
    events: list[HistoryEvent]
    size: int  #: bytes the history takes
    unit: str = "record"  #: what one event is called ("record", "event")


@dataclass
class PendingWork:
    """Something the run waits for, or a command waiting to be carried out."""

    text: Shown
    data: dict[str, Any]


@dataclass
class WorkflowDetails:
    """One run as :meth:`WorkflowAdmin.show` returns it."""

    run: WorkflowRun
    input: list[Any]
    result: Any = None
    error: WippyError | None = None
    parent: str | None = None
    history: WorkflowHistory = field(default_factory=lambda: WorkflowHistory((), [], 0))
    pending: list[PendingWork] = field(default_factory=list)
    #: where the run lives beyond its host ID (shown beside the host), if that says more
    location: str | None = None


@dataclass
class CommandResult:
    """What became of a signal, cancel or terminate."""

    workflow_id: str
    message: str  #: one or more lines for the user, saying what happened
    delivered: bool  #: a running host or worker took it (False: stored for later)
    status: str | None = None  #: the workflow's status afterwards, when known


# The protocol ---------------------------------------------------------------------------------
class WorkflowAdmin(ABC):
    """The workflows of one durable host entry, seen from outside a running runtime.

    Built by the provider spec's ``admin(entry, registry)``; the constructor checks the
    entry's settings but does no I/O (a store is opened, a server connected, on the first
    call). Use it as an async context manager, or call :meth:`close` when done.
    """

    def __init__(self, entry: Entry, registry: Registry) -> None:
        self.entry = entry
        self.registry = registry
        #: The host entries whose workflows are shown and steered. The command line sets
        #: None when several host entries share one place (one store, one task queue) and
        #: the user picked none of them: then every workflow of the place.
        self.hosts: frozenset[str] | None = frozenset({entry.id})

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the workflows are, for messages: a store file, a task queue and server.
        Two admins with the same location show the same workflows."""

    @property
    def where(self) -> str:
        """``location`` with its preposition, for "no workflows {where}"."""
        return f"in {self.location}"

    @abstractmethod
    async def list(self, query: ListInput) -> list[WorkflowRun]:
        """The runs matching ``query`` (a missing store holds none)."""

    @abstractmethod
    async def show(self, workflow_id: str) -> WorkflowDetails:
        """The latest run of ``workflow_id`` (or the run with that run ID), with its
        history; NOT_FOUND when there is none."""

    @abstractmethod
    async def signal(self, request: SignalInput) -> CommandResult:
        """Send a message; NOT_FOUND for an unknown workflow, INVALID for a closed one."""

    @abstractmethod
    async def cancel(self, request: CancelInput) -> CommandResult:
        """Ask the workflow to finish (a CANCEL event), terminate it after the deadline."""

    @abstractmethod
    async def terminate(self, request: TerminateInput) -> CommandResult:
        """End the workflow now."""

    async def close(self) -> None:  # noqa: B027 (a hook: nothing to release by default)
        """Release the store or the connection; safe to call more than once."""

    async def __aenter__(self) -> WorkflowAdmin:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


# Helpers for providers and readers ------------------------------------------------------------
def local_time(stamp: float | None) -> str:
    """A unix time as local ``YYYY-MM-DD HH:MM:SS``; ``-`` for none."""
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def attr_text(value: Any) -> str:
    """A search attribute value as a ``KEY=VALUE`` filter compares it: the way Lua or JSON
    would write it (``true``, ``nil``, ``42``, ``gold``, ``{"a":1}``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


__all__ = [
    "STATUSES",
    "CancelInput",
    "CommandResult",
    "HistoryEvent",
    "InvalidRequest",
    "ListInput",
    "PendingWork",
    "Shown",
    "SignalInput",
    "TerminateInput",
    "Text",
    "Value",
    "WorkflowAdmin",
    "WorkflowDetails",
    "WorkflowHistory",
    "WorkflowRun",
    "attr_text",
    "local_time",
]
