"""What the router and actors need from a host, and the two records that cross it.

The full provider contract (lifecycle, admin, specs) is :class:`wippy.providers.HostProvider`;
this module holds only the part the actor layer calls, so the actor layer never imports a
provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.process import Process
    from wippy.actors.scheduler import Dispatcher
    from wippy.lua.vm import LuaVM


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


def spawn_request(vm: LuaVM, entry: bytes, host: bytes, mode: int, ctx: Any, opts: Any, name: Any,
                  msgs: Any, args: Any, *, parent: str | None,
                  context: Mapping[str, Any]) -> tuple[str, SpawnRequest]:
    """The arguments of a ``process.spawn`` command, as the Lua side yields them
    (``entry, host, mode, ctx, opts, name, msgs, args``), as the host ID the caller named
    and a :class:`SpawnRequest`. ``process.exec`` yields the same without ``mode`` (pass 0).

    ``mode`` is a bit set: 1 the caller monitors the child, 2 they are linked. ``parent``
    and ``context`` are the caller's PID (None outside a process) and context, which the
    spawn's own ``ctx`` extends. Options and context become Python values; the arguments
    (the packed table ``{n = count, ...}``) and the message payloads stay Lua values, for
    the receiving host to convert if it stores them. Raises INVALID for a monitored or
    linked spawn without a calling process, or for values that cannot be converted."""
    if mode & 3 and parent is None:
        raise WippyError(INVALID, "spawn_monitored/spawn_linked need a calling process to notify",
                         retryable=False)
    merged = dict(context)
    if ctx is not None:
        merged.update(vm.to_python(ctx, "context"))
    messages = [] if msgs is None else [(_text(item[1]), item[2]) for item in msgs.values()]
    request = SpawnRequest(
        entry_id=_text(entry), args=args, parent=parent, context=merged,
        options={} if opts is None else vm.to_python(opts, "options"),
        name=None if name is None else _text(name), messages=messages,
        monitor=bool(mode & 1), link=bool(mode & 2),
    )
    return _text(host), request


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class ExitResult:
    """How an actor ended: ``error`` is a Lua error object, or None for a normal exit."""

    value: Any = None
    error: Any = None

    @property
    def abnormal(self) -> bool:
        return self.error is not None


DEFAULT_STEP_BUDGET = 1.0  # seconds a task may run without yielding
DEFAULT_MAX_INBOX = 10_000  # messages waiting in one process before senders are refused


@dataclass(frozen=True)
class Limits:
    """A host's resource limits (the ``limits:`` field of a host entry)."""

    step_budget: float = DEFAULT_STEP_BUDGET  # CPU seconds per step; 0: no limit
    max_inbox: int = DEFAULT_MAX_INBOX  # queued messages per process; 0: no limit

    @classmethod
    def from_entry(cls, data: Mapping[str, Any], where: str) -> Limits:
        """Parse ``limits: {step_time: "1s", inbox: 10000}``; raises INVALID naming the field."""
        from wippy.durations import parse_duration

        raw = data.get("limits")
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise WippyError(INVALID, f"{where}: limits must be a mapping like {{step_time: 1s, inbox: 10000}}")
        unknown = sorted(set(raw) - {"step_time", "inbox"})
        if unknown:
            raise WippyError(INVALID, f"{where}: limits.{unknown[0]} is not a limit (step_time, inbox)")
        budget, inbox = raw.get("step_time", DEFAULT_STEP_BUDGET), raw.get("inbox", DEFAULT_MAX_INBOX)
        try:
            seconds = parse_duration(budget) if isinstance(budget, str) else float(budget)
        except (WippyError, TypeError, ValueError):
            raise WippyError(INVALID, f"{where}: limits.step_time must be a duration like \"1s\" (0: none)") from None
        if seconds < 0:
            raise WippyError(INVALID, f"{where}: limits.step_time must not be negative")
        if isinstance(inbox, bool) or not isinstance(inbox, int) or inbox < 0:
            raise WippyError(INVALID, f"{where}: limits.inbox must be a whole number of messages (0: none)")
        return cls(seconds, inbox)


class Host(Protocol):
    """The routing contract: what the router hands a host for the PIDs it owns."""

    host_id: str
    running: bool
    kernel: Kernel
    limits: Limits

    @property
    def kind(self) -> str: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    def spawn(self, request: SpawnRequest) -> str: ...

    instant_delivery: ClassVar[bool]

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

    def start_note(self) -> str | None: ...
