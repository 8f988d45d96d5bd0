"""An actor owns Lua tasks and what they hold (timers, callees); it ends them together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from wippy.actors.scheduler import Dispatcher, LuaTask
from wippy.errors import LIMIT_EXCEEDED

LIMIT_EXCEEDED_B = LIMIT_EXCEEDED.encode()

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel


class Actor:
    """Base of everything that runs Lua: a function call, a process, a workflow run.

    Subclasses decide what a finished task means (``task_finished``)."""

    __slots__ = ("kernel", "scheduler", "dispatcher", "context", "tasks", "_cleanups", "_next_cleanup", "closed", "_prune_at", "__weakref__")

    profile: bytes = b"function"
    step_budget: float | None = None  # CPU seconds per step (None: the runtime's default)

    def __init__(self, kernel: Kernel, dispatcher: Dispatcher, context: dict[str, Any] | None):
        self.kernel = kernel
        self.scheduler = kernel.scheduler
        self.dispatcher = dispatcher
        self.context: dict[str, Any] = context or {}
        self.tasks: list[LuaTask] = []
        self._prune_at = 16
        self._cleanups: dict[int, Callable[[], None]] | None = None  # made on first use
        self._next_cleanup = 0
        self.closed = False

    def spawn_task(self, fn: Any, *args: Any, name: str = "main") -> LuaTask:
        return self.add_task(self.kernel.vm.new_thread(self.step_budget, fn, *args), name)

    def add_task(self, thread: Any, name: str = "main") -> LuaTask:
        """Own the runtime coroutine ``thread`` (made by :meth:`spawn_task`, or already
        running: a call its caller started inline) as a task of this actor."""
        task = LuaTask(self, thread, name)
        tasks = self.tasks
        if len(tasks) >= self._prune_at:  # drop finished coroutines; amortised O(1) per spawn
            self.tasks = tasks = [t for i, t in enumerate(tasks) if i == 0 or not t.finished]
            self._prune_at = max(16, 2 * len(tasks))
        tasks.append(task)
        return task

    def on_close(self, cleanup: Callable[[], None]) -> int:
        """Run ``cleanup`` when this actor ends (cancel a timer, stop a callee); returns a
        key for :meth:`discard_cleanup` once the resource is gone by itself."""
        if self.closed:
            cleanup()
            return -1
        if self._cleanups is None:
            self._cleanups = {}
        self._next_cleanup += 1
        self._cleanups[self._next_cleanup] = cleanup
        return self._next_cleanup

    def run_owned(self, work: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        """Run ``work`` as an asyncio task this actor owns: cancelled if the actor ends first."""
        job = asyncio.ensure_future(work)
        key = self.on_close(lambda: None if job.cancel() else None)
        job.add_done_callback(lambda _j: self.discard_cleanup(key))
        return job

    def discard_cleanup(self, key: int) -> None:
        if self._cleanups is not None:
            self._cleanups.pop(key, None)

    def close(self) -> None:
        """End every task and release every resource. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for task in self.tasks:
            task.finished = True
        cleanups, self._cleanups = self._cleanups, None
        for cleanup in reversed((cleanups or {}).values()):
            cleanup()

    def task_finished(self, task: LuaTask, ok: bool, values: tuple[Any, ...]) -> None:
        """A task's body returned. The main task decides the actor's outcome; a coroutine
        started with ``coroutine.spawn`` that fails takes the actor down with its error."""
        if not ok:
            self._name_limit_error(values[0])
        if task is self.tasks[0]:
            self.main_finished(ok, values)
        elif not ok:
            self.crashed(values[0])

    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _name_limit_error(self, error: Any) -> None:
        """A resource limit stopped this actor: say which one it was (the Lua side cannot
        know), and give back what a memory hog held before anyone else allocates."""
        try:
            if error[b"_kind"] != LIMIT_EXCEEDED_B:
                return
            message = error[b"_message"]
        except (TypeError, KeyError):
            return
        error[b"_message"] = self.describe().encode() + b": " + message
        if b"memory limit" in message:
            self.kernel.vm.lua.gccollect()

    def crashed(self, error: Any) -> None:
        """A non-main task failed with Lua error object ``error``."""
        self.main_finished(False, (error,))

    def describe(self) -> str:
        return type(self).__name__
