"""Handlers of the ``io`` module's commands: the terminal of a process on a terminal host.

The terminal is the actor's own (``actor.terminal``, set by the host that runs it); other
actors get UNAVAILABLE "no terminal context", as upstream. What a terminal must provide
is :class:`Terminal`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from wippy.actors.scheduler import PENDING
from wippy.errors import INTERNAL, UNAVAILABLE, UNKNOWN, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

STDOUT, STDERR = 1, 2
DEFAULT_READ_SIZE = 1024


class Terminal(Protocol):
    """Standard streams of a terminal process."""

    def write(self, data: bytes, stream: int) -> None:
        """Write to stdout (1) or stderr (2); raises OSError."""

    def flush(self) -> None: ...

    def read(self, size: int | None, live: Callable[[], bool],
             done: Callable[[bytes | None], None]) -> tuple[bool, bytes | None]:
        """Up to ``size`` bytes, or a line without its end when ``size`` is None.
        Returns ``(True, data)`` when it is there now (data None at end of input);
        otherwise ``(False, None)`` and calls ``done(data)`` later, unless ``live()`` has
        turned false by then (the reader is gone: the input stays for the next read)."""

    def raw(self, enable: bool) -> bool: ...


def terminal_of(task: LuaTask) -> Terminal | None:
    return getattr(task.actor, "terminal", None)


def commands(kernel: Kernel) -> dict[str, Any]:
    scheduler = kernel.scheduler
    to_lua = kernel.vm.to_lua

    def unavailable() -> tuple[None, Any]:
        return (None, to_lua(WippyError(UNAVAILABLE, "no terminal context", retryable=False)))

    def write(task: LuaTask, stream: int, data: bytes) -> Any:
        term = terminal_of(task)
        if term is None:
            return unavailable()
        try:
            term.write(data, stream)
        except (OSError, ValueError) as exc:
            name = "stderr" if stream == STDERR else "stdout"
            return (None, to_lua(WippyError(INTERNAL, f"write {name}: {exc}", retryable=False)))
        return (True,)

    def flush(task: LuaTask) -> Any:
        term = terminal_of(task)
        if term is None:
            return unavailable()
        try:
            term.flush()
        except (OSError, ValueError) as exc:
            return (None, to_lua(WippyError(INTERNAL, f"flush stdout: {exc}", retryable=False)))
        return (True,)

    def read(task: LuaTask, size: Any) -> Any:
        term = terminal_of(task)
        if term is None:
            return unavailable()
        what = "readline" if size is None else "read"

        def answer(data: bytes | None) -> tuple[Any, ...]:
            if data is None:
                return (None, to_lua(WippyError(UNKNOWN, f"{what}: EOF", retryable=False)))
            return (data,)

        def done(data: bytes | None) -> None:
            scheduler.resume(task, *answer(data))

        ready, data = term.read(size, lambda: not task.finished, done)
        return answer(data) if ready else PENDING

    def raw(task: LuaTask, enable: bool) -> Any:
        term = terminal_of(task)
        if term is None:
            return unavailable()
        try:
            return (term.raw(bool(enable)),)
        except OSError as exc:
            return (None, to_lua(WippyError(INTERNAL, f"raw terminal: {exc}", retryable=False)))

    def args(task: LuaTask) -> tuple[Any]:
        values = getattr(task.actor, "terminal_args", None) if terminal_of(task) is not None else None
        return (to_lua(list(values or [])),)

    return {"io.write": write, "io.flush": flush, "io.read": read, "io.raw": raw, "io.args": args}
