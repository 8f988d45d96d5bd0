"""Running one coroutine from the command line: clean Ctrl-C, and a watchdog for Lua code
that never yields.

Lua runs inside the event loop's thread with the GIL released, so while a Lua loop spins
without yielding, neither asyncio timers nor Python signal handlers get a turn. A watchdog
thread covers that case: it hears SIGINT through :func:`signal.set_wakeup_fd` (the C-level
handler writes to it whatever the main thread is doing) and can wait for a deadline.

- First Ctrl-C: the main task is cancelled, so runtimes stop in order and :meth:`Supervisor.run`
  raises :class:`Interrupted`. If the loop does not answer within ``grace`` seconds (Lua
  is spinning), the process ends at once with exit code 130.
- Second Ctrl-C: the process ends at once with exit code 130.
- :meth:`Supervisor.arm`: if the deadline passes by ``grace`` seconds (less for short
  deadlines, at least 0.5) and nobody disarmed it, the loop is stuck; ``on_stuck`` runs in
  the watchdog thread and its return value becomes the exit code.

:func:`loop_is_quiet` tells when nothing on the loop can ever run again (no ready
callbacks, timers, I/O watchers, other tasks or busy threads): everything left is waiting
for something that will not come.

Uses a plain asyncio loop (uvloop takes the wakeup fd for itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

EXIT_INTERRUPTED = 130
_POLL = 0.05


class Interrupted(Exception):
    """Ctrl-C stopped the run; the coroutine was cancelled and cleaned up."""


def hard_exit(code: int, message: str | None = None) -> None:
    """Flush what was printed, say why, and end the process now (no cleanup)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    if message:
        with contextlib.suppress(Exception):
            print(message, file=sys.stderr, flush=True)
    os._exit(code)


class Supervisor:
    """Runs one coroutine on a fresh event loop under the watchdog (see module docs)."""

    def __init__(self, grace: float = 1.0) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._on_stuck: Callable[[], int] | None = None
        self._interrupted_at: float | None = None
        self._loop_answered = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._closing = False

    def own_tasks(self) -> set[asyncio.Task[Any]]:
        """The tasks the supervisor itself keeps waiting (for :func:`loop_is_quiet`)."""
        return {t for t in (self._task, self._waiter) if t is not None}

    # Deadlines ------------------------------------------------------------------------
    def arm(self, seconds: float, on_stuck: Callable[[], int]) -> None:
        """Expect :meth:`disarm` within ``seconds``; past that plus ``grace``, the loop is
        stuck: ``on_stuck()`` runs (in another thread) and the process exits with its value."""
        grace = min(self.grace, max(0.5, seconds))
        with self._lock:
            self._deadline = time.monotonic() + seconds + grace
            self._on_stuck = on_stuck

    def disarm(self) -> None:
        with self._lock:
            self._deadline = None
            self._on_stuck = None

    # Running --------------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` to completion; raises :class:`Interrupted` after Ctrl-C."""
        in_main = threading.current_thread() is threading.main_thread()
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        old_fd: int | None = None
        old_handler: Any = None
        if in_main:
            old_handler = signal.signal(signal.SIGINT, _ignore)
            old_fd = signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        watcher = threading.Thread(target=self._watch, args=(rfd,), name="wippy-watchdog", daemon=True)
        watcher.start()
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                self._task = self._loop.create_task(coro)
                try:
                    return runner.run(self._wait(self._task))
                except asyncio.CancelledError:
                    if self._interrupted_at is not None:
                        raise Interrupted() from None
                    raise
        finally:
            self._closing = True
            if in_main:
                signal.set_wakeup_fd(old_fd if old_fd is not None else -1)
                signal.signal(signal.SIGINT, old_handler)
            os.close(wfd)
            watcher.join(1.0)
            os.close(rfd)
            self._loop = self._task = self._waiter = None

    async def _wait(self, task: asyncio.Task[Any]) -> Any:
        self._waiter = asyncio.current_task()
        return await task

    # The watchdog thread ----------------------------------------------------------------
    def _watch(self, rfd: int) -> None:
        while not self._closing:
            try:
                ready, _, _ = select.select([rfd], [], [], _POLL)
            except (OSError, ValueError):
                return
            if ready:
                try:
                    data = os.read(rfd, 64)
                except OSError:
                    return
                if not data:
                    return
                if signal.SIGINT in data:
                    self._on_sigint()
            self._check_deadlines()

    def _on_sigint(self) -> None:
        if self._interrupted_at is not None:
            hard_exit(EXIT_INTERRUPTED, "interrupted")
        self._interrupted_at = time.monotonic()
        loop, task = self._loop, self._task
        if loop is None or task is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(self._loop_answered.set)
            loop.call_soon_threadsafe(task.cancel)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        started = self._interrupted_at
        if started is not None and not self._loop_answered.is_set() and now - started > self.grace:
            hard_exit(EXIT_INTERRUPTED, "interrupted (Lua code was running without yielding; stopped at once)")
        with self._lock:
            deadline, on_stuck = self._deadline, self._on_stuck
        if deadline is not None and on_stuck is not None and now > deadline:
            code = 1
            try:
                code = on_stuck()
            finally:
                hard_exit(code)


def _ignore(signum: int, frame: Any) -> None:
    """SIGINT is handled by the watchdog; this only keeps Python from raising
    KeyboardInterrupt (and makes the C handler write to the wakeup fd)."""


def loop_is_quiet(loop: asyncio.AbstractEventLoop, ignore: set[asyncio.Task[Any]]) -> bool:
    """Whether nothing can happen on ``loop`` any more by itself: no callback ready, no
    timer, no I/O watched but the loop's own wake-up socket, no pending task other than
    ``ignore`` (the caller's, which wait), no busy thread. False whenever it cannot tell
    (a loop implementation without asyncio's internals)."""
    ready = getattr(loop, "_ready", None)
    scheduled = getattr(loop, "_scheduled", None)
    selector = getattr(loop, "_selector", None)
    if ready is None or scheduled is None or selector is None:
        return False
    if ready or any(not h.cancelled() for h in scheduled):
        return False
    own = getattr(loop, "_ssock", None)
    own_fd = own.fileno() if own is not None else -1
    if any(key.fd != own_fd for key in selector.get_map().values()):
        return False
    if any(not t.done() and t not in ignore for t in asyncio.all_tasks(loop)):
        return False
    return not _threads_busy(loop)


def _threads_busy(loop: asyncio.AbstractEventLoop) -> bool:
    """A thread (other than the main one, the watchdog and idle executor workers) that
    may still hand work to the loop."""
    executor = getattr(loop, "_default_executor", None)
    workers: set[Any] = set(getattr(executor, "_threads", ()) or ())
    if executor is not None:
        idle = getattr(getattr(executor, "_idle_semaphore", None), "_value", None)
        queue = getattr(executor, "_work_queue", None)
        if idle is None or queue is None or queue.qsize() or idle < len(workers):
            return True
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread in workers or thread.name == "wippy-watchdog":
            continue
        if thread.is_alive():
            return True
    return False
