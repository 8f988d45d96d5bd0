"""Running function entries: each call is a short-lived actor with one task."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.host import ExitResult, Limits
from wippy.actors.process import Process, result_of
from wippy.actors.router import make_pid
from wippy.actors.table import ProcessTable
from wippy.errors import CANCELED, INVALID, NOT_FOUND, TIMEOUT, WippyError

if TYPE_CHECKING:
    from wippy.actors.actor import Actor
    from wippy.actors.host import SpawnRequest
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import Dispatcher

# on_done(ok, value): value is the first result (a Lua value) or a Lua error object.
DoneCallback = Callable[[bool, Any], None]

CALLABLE_KINDS = {"function.lua": b"function", "process.lua": b"process"}
FRAME_SUFFIX = "#fn"  # a frame's host ID is its entry ID plus this


def check_target(target: Any) -> str:
    """Validate a function ID; raises INVALID the way upstream names the problem."""
    if not isinstance(target, bytes) or not target:
        raise WippyError(INVALID, "function target must be a non-empty string \"namespace:name\"", retryable=False)
    text = target.decode("utf-8", "replace")
    ns, sep, name = text.rpartition(":")
    if not sep or not ns:
        raise WippyError(INVALID, f"function target {text!r} is missing its namespace (\"namespace:name\")", retryable=False)
    if not name:
        raise WippyError(INVALID, f"function target {text!r} is missing its name (\"namespace:name\")", retryable=False)
    return text


class FunctionCall(Process):
    """One invocation of a function entry: a process frame that finishes once.

    Upstream gives every call a PID, an inbox, events, monitors and links. Here the frame
    is a :class:`Process` whose PID is made the first time something needs it
    (``process.pid()``, a monitor, a link, a send), so a plain call costs no routing.
    When it finishes, ``on_done`` hears how and, if it had a PID, its monitors get EXIT
    and (on an error) its links get LINK_DOWN, as for any process."""

    __slots__ = ("_on_done", "task")

    noun = "function call"

    def __init__(
        self,
        kernel: Kernel,
        entry_id: str,
        profile: bytes,
        args: Any,
        context: dict[str, Any] | None,
        on_done: DoneCallback,
        thread: Any = None,
    ) -> None:
        """``thread``: the call's coroutine if it already runs (started inline by its caller)."""
        super().__init__(kernel.frames, None, entry_id, profile, context or {})
        self._on_done: DoneCallback | None = on_done
        if thread is None:
            self.task = self.spawn_task(kernel.vm.entry_task, entry_id.encode(), profile, args)
        else:
            self.task = self.add_task(thread)

    def describe(self) -> str:
        return f"function call {self.entry_id}" + (f" {self.pid}" if self.pid is not None else "")

    def own_pid(self) -> str:
        if self.pid is None:
            self.kernel.frames.assign(self)
        return self.pid

    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        result = result_of(ok, values)
        self._finish(result.error is None, result.value if result.error is None else result.error)

    def terminate(self, error: Any) -> None:
        self._finish(False, error)

    def fail(self, error: WippyError) -> None:
        """End the call from outside (timeout, cancel, caller gone)."""
        if self._on_done is not None:
            self._finish(False, self.kernel.vm.to_lua(error))

    def _finish(self, ok: bool, value: Any) -> None:
        on_done, self._on_done = self._on_done, None
        self.exit(ExitResult(value=value) if ok else ExitResult(error=value))
        if on_done is not None:
            on_done(ok, value)


class FunctionFrames(ProcessTable[FunctionCall]):
    """The host of function-call frames that have a PID: ``{<entry>#fn|<n>}``.

    One object serves every function entry; the router finds it under each entry's frame
    host ID, registered the first time a call of that entry needs a PID."""

    kind = "function frames"
    running = True
    instant_delivery = True

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.host_id = "functions"
        self.limits = Limits()
        self.init_table()
        self._counter = 0

    @property
    def dispatcher(self) -> Dispatcher:
        return self.kernel.dispatcher

    def assign(self, call: FunctionCall) -> None:
        host_id = call.entry_id + FRAME_SUFFIX
        router = self.kernel.router
        if host_id not in router.hosts:
            router.hosts[host_id] = self
        self._counter += 1
        call.pid = make_pid(host_id, f"{self._counter:x}")
        call._pid_bytes = call.pid.encode()
        self.add(call)

    def spawn(self, request: SpawnRequest) -> str:
        raise WippyError(INVALID, "function frames cannot be spawned; call the function", retryable=False)

    def accepts(self, entry_kind: str) -> bool:
        return False

    def start_note(self) -> str | None:
        return None

    def barrier(self) -> Any:
        return None


class Future:
    """Python side of a ``funcs.async`` future: state plus the channel it reports on."""

    __slots__ = ("state", "value", "channel", "call")

    def __init__(self, channel: Channel) -> None:
        self.state = b"pending"
        self.value: Any = None
        self.channel = channel
        self.call: FunctionCall | None = None

    def settle(self, ok: bool, value: Any, make_payload: Callable[[Any], Any]) -> None:
        if self.state != b"pending":
            return
        self.state = b"done" if ok else b"error"
        self.value = value
        self.channel.push(make_payload(value) if ok else value)
        self.call = None


class FunctionRunner:
    """Starts function calls for a kernel, with context, timeouts and cancellation."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def resolve(self, target: str) -> tuple[str, bytes]:
        entry = self.kernel.registry.get(target)
        if entry is None:
            raise WippyError(NOT_FOUND, f"function {target} not found", retryable=False)
        profile = CALLABLE_KINDS.get(entry.kind)
        if profile is None:
            raise WippyError(
                INVALID,
                f"{target} is a {entry.kind} entry and cannot be called as a function",
                retryable=False,
            )
        return target, profile

    def start(
        self,
        target: str,
        args: Any,
        context: dict[str, Any] | None,
        options: dict[str, Any] | None,
        on_done: DoneCallback,
        owner: Actor | None = None,
        run_now: bool = False,
        adopt: tuple[Any, Any, tuple[Any, ...]] | None = None,
        prepare: Callable[[FunctionCall], None] | None = None,
    ) -> FunctionCall:
        """Start ``target``; raises NOT_FOUND / INVALID before anything runs. ``run_now``:
        take its first step at once (from a command handler: a callee that does not block
        then reports to ``on_done`` before this returns). ``adopt``: ``(coroutine, op,
        args)`` of a call its caller started inline, suspended in its first command, which
        then runs first (see ``rt.call_inline``). ``prepare(call)`` runs before the call
        does (a service attaches what the call's commands will look for)."""
        entry_id, profile = self.resolve(target)
        timeout_ms = (options or {}).get("timeout")
        if timeout_ms is not None and (not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0):
            raise WippyError(INVALID, "call option timeout must be a positive number of milliseconds")
        call = FunctionCall(self.kernel, entry_id, profile, args, context, on_done,
                            thread=adopt[0] if adopt is not None else None)
        if timeout_ms is not None:
            handle = self.kernel.scheduler.loop.call_later(
                timeout_ms / 1000,
                call.fail,
                WippyError(TIMEOUT, f"function {entry_id} timed out after {timeout_ms} ms", retryable=True),
            )
            call.on_close(handle.cancel)
        if prepare is not None:
            prepare(call)
        if run_now:
            self.kernel.scheduler.run_now(call.task, pending=adopt[1:] if adopt is not None else None)
        else:
            self.kernel.scheduler.start(call.task)
        if owner is not None and not call.closed:  # the caller ending cancels a callee still running
            def caller_gone() -> None:
                call.fail(WippyError(CANCELED, f"caller of {entry_id} ended"))

            if owner.closed:  # (ended by the callee's first step)
                caller_gone()
            else:
                key = owner.on_close(caller_gone)
                call.on_close(lambda: owner.discard_cleanup(key))
        return call

    def run(self, target: str, args: Any, on_done: DoneCallback,
            prepare: Callable[[FunctionCall, Any], None] | None = None, bind: tuple[Any, ...] = ()) -> tuple[
            FunctionCall | None, Any]:
        """Run ``target`` now, from outside any task (a request the server answers). A call
        that finishes without issuing a command reports to ``on_done`` before this returns
        and never becomes an actor; at its first command it becomes a function call around
        its coroutine, as an inline ``funcs.call`` does, and ``prepare(call, bound)`` runs
        before that command is carried out. Returns that call (or None) and ``bound``, what
        ``bind`` returned: ``bind`` is a Lua function and arguments, called as
        ``bind[0](*bind[1:])`` before the call runs."""
        entry_id, profile = self.resolve(target)
        kernel = self.kernel
        bound, thread, *out = kernel.scheduler.run_detached(
            kernel.frames.limits.step_budget, entry_id.encode(), profile, args, *bind)
        if thread is not None:  # its first command: from here it is a function call
            call = self.start(target, args, None, None, on_done, run_now=True,
                              prepare=None if prepare is None else lambda call: prepare(call, bound),
                              adopt=(thread, out[1], tuple(out[2:])))
            return call, bound
        result = result_of(out[1], tuple(out[2:]) if out[1] else (kernel.scheduler.failure_error(out[2]),))
        if result.error is None:
            on_done(True, result.value)
        else:
            on_done(False, result.error)
        return None, bound
