"""In-memory handlers of the ``time`` commands: the clock and asyncio timers. A durable
provider replaces them to record ``time.now`` and make sleeps and timers survive restarts."""

from __future__ import annotations

import time as _clock
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.errors import INVALID, WippyError
from wippy.lua.modules.time import NS, time_value

if TYPE_CHECKING:
    from wippy.actors.actor import Actor
    from wippy.actors.kernel import Kernel

# Commands ----------------------------------------------------------------------------
class Timer:
    """One asyncio timer owned by an actor: a sleep, an ``after``, a timer or a ticker.

    While armed it holds a cleanup on its actor, so an actor that ends cancels it and a
    fired one-shot timer leaves nothing behind."""

    __slots__ = ("actor", "fire", "period", "channel", "handle", "deadline", "key")

    def __init__(self, actor: Actor, fire: Callable[[Timer], None], period: int = 0,
                 channel: Channel | None = None) -> None:
        self.actor = actor
        self.fire = fire
        self.period = period  # ns between ticks; 0 for one-shot
        self.channel = channel
        self.handle: Any = None
        self.deadline = 0.0
        self.key: int | None = None

    def start(self, ns: int) -> None:
        loop = self.actor.scheduler.loop
        self.deadline = loop.time() + max(ns, 0) / NS
        self.handle = loop.call_at(self.deadline, self._run)
        if self.key is None:
            self.key = self.actor.on_close(self._release_by_owner)

    def _release_by_owner(self) -> None:
        self.cancel()

    def _run(self) -> None:
        self.handle = None
        if self.period:
            loop = self.actor.scheduler.loop
            step, now = self.period / NS, loop.time()
            self.deadline += step
            if self.deadline <= now:  # the loop fell behind: drop missed ticks, like Go
                self.deadline += ((now - self.deadline) // step + 1) * step
            self.handle = loop.call_at(self.deadline, self._run)
        else:
            self._release()
        self.fire(self)

    def cancel(self) -> bool:
        """Disarm; True if it was still going to fire."""
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.cancel()
        self._release()
        return handle is not None

    def _release(self) -> None:
        if self.key is not None:
            self.actor.discard_cleanup(self.key)
            self.key = None


def _nanoseconds(op: str, ns: Any) -> int:
    if type(ns) is not int:
        raise WippyError(INVALID, f"{op}: duration must be an integer number of nanoseconds", retryable=False)
    return ns


def _timer(op: str, handle: Any) -> Timer:
    if not isinstance(handle, Timer) or handle.channel is None:
        raise WippyError(INVALID, f"{op}: not a timer or ticker", retryable=False)
    return handle


def commands(kernel: Kernel) -> dict[str, Any]:
    """In-memory clock and timers on the asyncio loop. A durable provider replaces these
    to record ``time.now`` and to make sleeps and timers survive restarts."""
    scheduler = kernel.scheduler
    to_lua = kernel.vm.to_lua

    def now(task: LuaTask) -> tuple[int, int]:
        return divmod(_clock.time_ns(), NS)

    def sleep(task: LuaTask, ns: Any) -> Any:
        ns = _nanoseconds("time.sleep", ns)
        if ns <= 0:
            return ()
        Timer(task.actor, lambda _t: scheduler.resume(task)).start(ns)
        return PENDING

    def push_now(timer: Timer) -> None:
        assert timer.channel is not None
        timer.channel.push(to_lua(time_value(*divmod(_clock.time_ns(), NS))))  # full: dropped

    def new_timer(task: LuaTask, ns: Any) -> tuple[Timer, Channel]:
        timer = Timer(task.actor, push_now, channel=Channel(scheduler, 1))
        timer.start(_nanoseconds("time.timer", ns))
        return timer, timer.channel  # type: ignore[return-value]

    def new_ticker(task: LuaTask, ns: Any) -> tuple[Timer, Channel]:
        ns = _nanoseconds("time.ticker", ns)
        if ns <= 0:
            raise WippyError(INVALID, "time.ticker: interval must be positive", retryable=False)
        timer = Timer(task.actor, push_now, period=ns, channel=Channel(scheduler, 1))
        timer.start(ns)
        return timer, timer.channel  # type: ignore[return-value]

    def stop(task: LuaTask, handle: Any) -> tuple[bool]:
        timer = _timer("time.stop", handle)
        active = timer.cancel()
        timer.channel.buffer.clear()  # type: ignore[union-attr]  # no stale value after stop
        return (active,)

    def reset(task: LuaTask, handle: Any, ns: Any) -> tuple[bool]:
        timer = _timer("time.reset", handle)
        ns = _nanoseconds("time.reset", ns)
        if timer.period and ns <= 0:
            raise WippyError(INVALID, "time.reset: interval must be positive", retryable=False)
        active = timer.cancel()
        timer.channel.buffer.clear()  # type: ignore[union-attr]
        if timer.period:
            timer.period = ns
        timer.start(ns)
        return (active,)

    return {
        "time.now": now,
        "time.sleep": sleep,
        "time.timer": new_timer,
        "time.ticker": new_ticker,
        "time.stop": stop,
        "time.reset": reset,
    }
