"""``terminal.host``: runs one process at a time with the terminal's stdin, stdout and
stderr (the ``io`` module) and its command-line arguments (``io.args()``).

``wippy run <command>`` spawns the command's process here; when it ends,
:func:`completion` says what to print and the exit code, as upstream's terminal host
does: an error goes to stderr (exit 1), a string to stdout (exit 0), a number is the exit
code, ``true``/``false`` are 0/1, anything else 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wippy.actors.process import Process
from wippy.actors.router import make_pid
from wippy.errors import UNAVAILABLE, WippyError
from wippy.lua.modules import logger as lua_logger
from wippy.providers._base import ProviderSpec
from wippy.providers._table import ActorTable
from wippy.providers.terminal.console import Console
from wippy.registry.schema import BOOL, LIMITS, Field

if TYPE_CHECKING:
    from wippy.actors.host import Host, SpawnRequest
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import Dispatcher
    from wippy.registry import Entry

KIND = "terminal.host"


class TerminalProcess(Process):
    """A process with a terminal: what the ``io`` module reads and writes."""

    __slots__ = ("terminal", "terminal_args")

    def __init__(self, host: Host, pid: str, entry_id: str, context: dict[str, Any],
                 terminal: Console, args: list[str]) -> None:
        super().__init__(host, pid, entry_id, b"process", context)
        self.terminal = terminal
        self.terminal_args = args


class TerminalHost(ActorTable[TerminalProcess]):
    """One process at a time, on the console of this Python process (or the one given)."""

    kind = KIND
    runs = ("process.lua",)

    def __init__(self, kernel: Kernel, entry: Entry, console: Console | None = None) -> None:
        super().__init__(kernel, entry)
        self.console = console if console is not None else Console.of_process()
        self.hide_logs = bool(entry.data.get("hide_logs"))
        self._counter = 0

    @property
    def dispatcher(self) -> Dispatcher:
        return self.kernel.dispatcher

    def spawn(self, request: SpawnRequest) -> str:
        entry = self.entry_for_spawn(request.entry_id)
        if self.actors:
            busy = next(iter(self.actors.values()))
            raise WippyError(UNAVAILABLE, f"terminal host {self.host_id} runs one process at a time and is running "
                                          f"{busy.entry_id}", retryable=True)
        self._counter += 1
        pid = make_pid(self.host_id, f"{self._counter:x}")
        router = self.kernel.router
        if request.name is not None:
            router.register(request.name, pid)
        args = _string_args(self.kernel, request.args)
        proc = self.add(TerminalProcess(self, pid, entry.id, request.context, self.console, args))
        self.wire(proc, request)
        if self.hide_logs:
            lua_logger.suspend_console(True)
        proc.start(request.args)
        return pid

    def forget(self, proc: Process) -> None:
        super().forget(proc)
        self.console.reset()
        if self.hide_logs:
            lua_logger.suspend_console(False)

    async def stop(self, timeout: float) -> None:
        self.running = False
        try:
            await self.stop_actors(timeout)
        finally:
            self.console.reset()
            self.kernel.router.remove_host(self.host_id)


def _string_args(kernel: Kernel, args: Any) -> list[str]:
    """The string arguments of a spawn (``io.args()``), as upstream collects them."""
    out: list[str] = []
    n = (args[b"n"] or 0) if args is not None else 0
    for i in range(1, n + 1):
        value = args[i]
        if isinstance(value, bytes):
            out.append(value.decode("utf-8", "replace"))
    return out


@dataclass(frozen=True)
class Completion:
    """What a finished terminal process means for the command line."""

    exit_code: int
    stdout: str | None = None  # printed with a newline
    stderr: str | None = None


def completion(value: Any = None, error: WippyError | None = None) -> Completion:
    """Exit code and output of a terminal process that returned ``value`` (Python data) or
    failed with ``error``."""
    if error is not None:
        text = error.text if hasattr(error, "text") else str(error)
        head, sep, rest = text.partition(": ")
        if sep and rest.startswith(head + sep):  # "P: P: rest" -> "P: rest"
            text = rest
        return Completion(1, stderr=text or error.kind or "error")
    if isinstance(value, bool):
        return Completion(0 if value else 1)
    if isinstance(value, str):
        return Completion(0, stdout=value)
    if isinstance(value, int):
        return Completion(value)
    if isinstance(value, float):
        return Completion(1 if math.isnan(value) or math.isinf(value) else int(value))
    return Completion(0)


def exit_result(kernel: Kernel, value: Any, error: Any) -> Completion:
    """:func:`completion` of a process exit as the router reports it (Lua values)."""
    vm = kernel.vm
    if error is not None:
        err = vm.to_python(error, "error")
        return completion(error=err if isinstance(err, WippyError) else WippyError("", str(err)))
    try:
        converted = vm.to_python(value, "result")
    except WippyError:  # a table holding a function, say: not a code, so 0
        converted = None
    return completion(converted)


SPEC = ProviderSpec(KIND, factory=TerminalHost, description="runs a command-line process on this terminal",
                    fields={"hide_logs": Field(BOOL), "limits": LIMITS})

__all__ = ["KIND", "SPEC", "Completion", "Console", "TerminalHost", "TerminalProcess", "completion", "exit_result"]
