"""The driver: steps Lua coroutines and hands the commands they yield to a dispatcher.

No asyncio task per actor: an actor is a set of suspended Lua coroutines (``LuaTask``),
and the scheduler resumes whichever ones an event made ready. That keeps an idle actor at
a few hundred bytes and a message hand-off at a couple of microseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.errors import INTERNAL, INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.actor import Actor
    from wippy.lua.vm import LuaVM

log = logging.getLogger("wippy.scheduler")

PENDING: Any = object()
"""Returned by a command handler that will resume the task later itself."""

Handler = Callable[..., Any]

_STEP_BUDGET = 2000  # commands one task may run back to back before others get a turn
_DRAIN_BUDGET = 5000  # resumptions per event-loop callback
_MAX_NESTED = 20  # callees run inside their caller's turn, at most this deep
_DRAIN_WORK = 2000  # commands per event-loop callback before timers and I/O get a turn


class LuaTask:
    """One runtime-driven Lua coroutine, owned by an actor."""

    __slots__ = ("thread", "actor", "finished", "name")

    def __init__(self, actor: Actor, thread: Any, name: str = "main") -> None:
        self.thread = thread
        self.actor = actor
        self.finished = False
        self.name = name

    def __repr__(self) -> str:
        return f"<LuaTask {self.name} of {self.actor!r}{' finished' if self.finished else ''}>"


class Dispatcher:
    """Maps command names to handlers. A provider builds one from handler groups and
    overrides the commands it carries out differently (a durable timer, say)."""

    def __init__(self, *groups: dict[str, Handler]) -> None:
        self.handlers: dict[bytes, Handler] = {}
        for group in groups:
            self.update(group)

    def update(self, group: dict[str, Handler]) -> None:
        for op, fn in group.items():
            self.handlers[op.encode()] = fn

    def derive(self, *groups: dict[str, Handler]) -> Dispatcher:
        """A copy with some handlers replaced."""
        d = Dispatcher()
        d.handlers = dict(self.handlers)
        for group in groups:
            d.update(group)
        return d


class Scheduler:
    """Run queue of Lua tasks for one Lua state, drained on the asyncio loop."""

    def __init__(self, vm: LuaVM) -> None:
        self.vm = vm
        self._ready: deque[tuple[LuaTask, Any]] = deque()
        self._drain_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error_to_lua = vm.convert.to_lua
        self._nested = 0  # run_now levels on the Python stack
        self._draining = False  # inside _drain: its work budget applies (not to a step run elsewhere)
        self.current: LuaTask | None = None  # the task whose Lua runs now (for direct calls)
        self._work = 0
        self._failure_error = vm.rt.failure_error
        self._start_detached = vm.rt.start_detached

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # Making tasks ready ---------------------------------------------------------------
    def start(self, task: LuaTask) -> None:
        self._push(task, None)

    def resume(self, task: LuaTask, *values: Any) -> None:
        """Make ``task`` continue; its pending command returns ``values``."""
        self._push(task, (True, *values))

    def throw(self, task: LuaTask, error: WippyError | Any) -> None:
        """Make ``task`` continue by raising ``error`` at its pending command."""
        if isinstance(error, WippyError):
            error = self._error_to_lua(error)
        self._push(task, (False, error))

    def _push(self, task: LuaTask, payload: Any) -> None:
        self._ready.append((task, payload))
        if not self._drain_pending:
            self._drain_pending = True
            self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_pending = False
        ready = self._ready
        self._work = 0  # commands carried out in this drain (callees run inline count too)
        self._draining = True
        try:
            for _ in range(_DRAIN_BUDGET):
                if not ready or self._work >= _DRAIN_WORK:
                    break
                task, payload = ready.popleft()
                if not task.finished:
                    self._step(task, payload)
        finally:
            self._draining = False
        if ready and not self._drain_pending:
            self._drain_pending = True
            self.loop.call_soon(self._drain)

    def run_now(self, task: LuaTask, payload: Any = None, pending: tuple[Any, tuple[Any, ...]] | None = None) -> None:
        """Step ``task`` immediately, inside the current one's turn (a callee started by a
        command handler): a callee that does not block finishes before its caller's command
        returns. Nested too deep, it is queued instead, so the Python stack stays bounded.
        ``pending``: ``(op, args)`` of a command the task already yielded (to whoever ran it
        first), carried out before it is resumed."""
        if self._nested >= _MAX_NESTED and pending is None:
            self._push(task, payload)
            return
        self._nested += 1
        try:
            self._step(task, payload, pending)
        finally:
            self._nested -= 1

    def run_detached(self, *args: Any) -> Any:
        """``rt.start_detached(*args)``: make a call's coroutine and take its first step,
        outside any task (see ``FunctionRunner.run``). No task is current meanwhile, so
        direct calls from Lua take the command path."""
        outer, self.current = self.current, None
        self._work += 1
        try:
            return self._start_detached(*args)
        except Exception as exc:  # Lua itself failed
            return (None, None, False, False, self._error_to_lua(WippyError(INTERNAL, f"Lua task crashed: {exc}")))
        finally:
            self.current = outer

    def failure_error(self, value: Any) -> Any:
        """A failed task body's error as an error object (``rt.failure_error``)."""
        return self._failure_error(value)

    def used_up(self) -> bool:
        """Count one command a task carries out by a direct call (no yield); True when the
        drain's work is used up: the caller then takes the command path instead, where the
        task gives the event loop its turn."""
        self._work += 1
        return self._work >= _DRAIN_WORK and self._draining and not self._nested

    # Stepping ---------------------------------------------------------------------------
    def _step(self, task: LuaTask, payload: Any, pending: tuple[Any, tuple[Any, ...]] | None = None) -> None:
        left = self.step(task, payload, pending)
        if left is not None:
            self._push(task, left)  # out of budget: let others run first

    def step(self, task: LuaTask, payload: Any, pending: tuple[Any, tuple[Any, ...]] | None = None) -> Any:
        """Run ``task`` until it blocks or ends. Returns None, or the payload to resume it
        with later when it used up its budget (the caller decides where it queues).
        ``pending``: see :meth:`run_now`."""
        send = task.thread.send
        handlers = task.actor.dispatcher.handlers
        outer = self.current  # (a caller whose command runs this task inline)
        try:
            return self._run(task, payload, send, handlers,
                             None if pending is None else (True, pending[0], *pending[1]))
        finally:
            self.current = outer

    def _run(self, task: LuaTask, payload: Any, send: Any, handlers: dict[bytes, Handler], out: Any) -> Any:
        for _ in range(_STEP_BUDGET):
            if out is None:
                if self._work >= _DRAIN_WORK and self._draining and not self._nested:  # others' turn
                    return payload
                self._work += 1
                self.current = task
                try:
                    out = send(payload)
                except Exception as exc:  # a broken coroutine: Lua itself failed
                    self._fail(task, WippyError(INTERNAL, f"Lua task crashed: {exc}"))
                    return None
            else:
                self.current = task
            if out[0] is False:  # the task body returned: (false, ok, ...)
                task.finished = True
                values = out[2:] if out[1] else (self.failure_error(out[2] if len(out) > 2 else None),)
                task.actor.task_finished(task, out[1], values)
                return None
            if task.finished:  # ended while it ran (a callee it ran inline ended it)
                return None
            op = out[1]
            args = out[2:]
            out = None
            handler = handlers.get(op)
            try:
                if handler is None:
                    raise WippyError(INVALID, _unknown_command(op, task))
                result = handler(task, *args)
            except WippyError as err:
                payload = (False, self._error_to_lua(err))
                continue
            except Exception as exc:  # a bug, or a value Lua code forged: the task gets the error
                log.error("command %s failed in %s: %s: %s", _op_name(op), task.actor.describe(),
                          type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                payload = (False, self._error_to_lua(WippyError(INTERNAL, f"{_op_name(op)}: {exc}")))
                continue
            if result is PENDING or task.finished:  # blocked, or the handler ended it
                return None
            payload = (True, *result) if result else (True,)
        return payload

    def _fail(self, task: LuaTask, err: WippyError) -> None:
        task.finished = True
        task.actor.task_finished(task, False, (self._error_to_lua(err),))


def task_commands() -> dict[str, Handler]:
    """Commands about the actor's own tasks; the same for every provider."""

    def spawn(task: LuaTask, fn: Any) -> tuple[()]:
        actor = task.actor
        child = actor.spawn_task(fn, name=f"coroutine-{len(actor.tasks)}")
        actor.scheduler.start(child)
        return ()

    return {"coroutine.spawn": spawn}


def _op_name(op: Any) -> str:
    return op.decode("utf-8", "replace") if isinstance(op, bytes) else repr(op)


def _unknown_command(op: Any, task: LuaTask) -> str:
    if not isinstance(op, bytes):
        return "coroutine.yield was called outside a coroutine"
    return f"{_op_name(op)} is not available in {task.actor.describe()}"
