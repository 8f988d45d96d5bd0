"""An actor owns Lua tasks and what they hold (timers, callees); it ends them together."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.scheduler import Dispatcher, LuaTask

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime


class Actor:
    """Base of everything that runs Lua: a function call, a process, a workflow run.

    Subclasses decide what a finished task means (``task_finished``)."""

    profile: bytes = b"function"

    def __init__(self, runtime: Runtime, dispatcher: Dispatcher, context: dict[str, Any] | None):
        self.runtime = runtime
        self.scheduler = runtime.scheduler
        self.dispatcher = dispatcher
        self.context: dict[str, Any] = context or {}
        self.tasks: list[LuaTask] = []
        self._cleanups: dict[int, Callable[[], None]] = {}
        self._next_cleanup = 0
        self.closed = False

    def spawn_task(self, fn: Any, *args: Any, name: str = "main") -> LuaTask:
        task = LuaTask(self, self.runtime.vm.new_thread(fn, *args), name)
        self.tasks.append(task)
        return task

    def on_close(self, cleanup: Callable[[], None]) -> int:
        """Run ``cleanup`` when this actor ends (cancel a timer, stop a callee); returns a
        key for :meth:`discard_cleanup` once the resource is gone by itself."""
        if self.closed:
            cleanup()
            return -1
        self._next_cleanup += 1
        self._cleanups[self._next_cleanup] = cleanup
        return self._next_cleanup

    def discard_cleanup(self, key: int) -> None:
        self._cleanups.pop(key, None)

    def close(self) -> None:
        """End every task and release every resource. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for task in self.tasks:
            task.finished = True
        cleanups, self._cleanups = self._cleanups, {}
        for cleanup in reversed(cleanups.values()):
            cleanup()

    def task_finished(self, task: LuaTask, ok: bool, values: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__
