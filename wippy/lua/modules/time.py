"""Python side of the ``time`` module.

Natives are the pure parts (Go layouts, duration strings, calendar math, zone offsets:
see :mod:`wippy.lua.modules._gotime`). Commands are the parts that read the clock or wait
(``time.now``, ``time.sleep``, ``time.timer``, ``time.ticker``, ``time.stop``,
``time.reset``), so a durable provider can record and replay them.

A Time crosses into Lua as ``(unix seconds, nanoseconds, zone name, fixed offset or nil)``.
"""

from __future__ import annotations

import time as _clock
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.errors import INVALID, WippyError
from wippy.lua.convert import TypedValue
from wippy.lua.modules._gotime import (
    INT64_MAX,
    INT64_MIN,
    NS,
    check_zone,
    civil,
    duration_string,
    format_time,
    make_date,
    parse_duration,
    parse_time,
    round_time,
    zone_offset,
)

if TYPE_CHECKING:
    from wippy.actors.actor import Actor
    from wippy.host.runtime import Runtime
    from wippy.lua.vm import LuaVM


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _out(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def time_value(sec: int, nsec: int = 0, zone: str = "Local", offset: int | None = None) -> TypedValue:
    """A Time as Python data (what a Lua Time converts to), e.g. for a replaying provider."""
    data: dict[str, Any] = {"sec": sec, "nsec": nsec, "zone": zone}
    if offset is not None:
        data["offset"] = offset
    return TypedValue("time", data)


def duration_value(ns: int) -> TypedValue:
    return TypedValue("duration", {"ns": ns})


def natives(vm: LuaVM) -> dict[str, Callable[..., Any]]:
    """Pure helpers for time.lua. Strings arrive and leave as bytes; bad input comes back
    as ``nil, message`` so Lua can word the error for the function the user called."""

    def n_parse_duration(text: bytes) -> Any:
        try:
            return parse_duration(_text(text))
        except ValueError as exc:
            return None, _out(str(exc))

    def n_duration_string(ns: int) -> bytes:
        return _out(duration_string(ns))

    def n_fields(sec: int, zone: bytes, fixed: int | None) -> tuple[Any, ...]:
        offset, abbrev = zone_offset(sec, _text(zone), fixed)
        return (*civil(sec + offset), offset, _out(abbrev))

    def checked(sec: int, nsec: int) -> Any:
        if INT64_MIN <= sec <= INT64_MAX:
            return sec, nsec
        return None, b"date is out of range"

    def n_date(y: int, mo: int, d: int, h: int, mi: int, s: int, ns: int,
               zone: bytes, fixed: int | None) -> Any:
        return checked(*make_date(y, mo, d, h, mi, s, ns, _text(zone), fixed))

    def n_add_date(sec: int, nsec: int, zone: bytes, fixed: int | None,
                   years: int, months: int, days: int) -> Any:
        name = _text(zone)
        y, mo, d, h, mi, s, _, _ = civil(sec + zone_offset(sec, name, fixed)[0])
        return checked(*make_date(y + years, mo + months, d + days, h, mi, s, nsec, name, fixed))

    def n_format(layout: bytes, sec: int, nsec: int, zone: bytes, fixed: int | None) -> bytes:
        return _out(format_time(_text(layout), sec, nsec, _text(zone), fixed))

    def n_parse(layout: bytes, value: bytes, zone: bytes, fixed: int | None, explicit: bool) -> Any:
        try:
            sec, nsec, name, offset = parse_time(_text(layout), _text(value), _text(zone), fixed, explicit)
        except ValueError as exc:
            return None, _out(str(exc))
        if not INT64_MIN <= sec <= INT64_MAX:
            return None, b"date is out of range"
        return sec, nsec, _out(name), offset

    def n_sub(s1: int, n1: int, s2: int, n2: int) -> int:
        return max(INT64_MIN, min(INT64_MAX, (s1 - s2) * NS + n1 - n2))

    def n_round(sec: int, nsec: int, d: int, up: bool) -> tuple[int, int]:
        return round_time(sec, nsec, d, up)

    def n_check_zone(name: bytes) -> Any:
        problem = check_zone(_text(name))
        return None if problem is None else (_out(problem[0]), _out(problem[1]))

    return {
        "parse_duration": n_parse_duration,
        "duration_string": n_duration_string,
        "fields": n_fields,
        "date": n_date,
        "add_date": n_add_date,
        "format": n_format,
        "parse": n_parse,
        "sub": n_sub,
        "round": n_round,
        "check_zone": n_check_zone,
    }


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
            self.key = self.actor.on_close(self.cancel)

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


def commands(runtime: Runtime) -> dict[str, Any]:
    """In-memory clock and timers on the asyncio loop. A durable provider replaces these
    to record ``time.now`` and to make sleeps and timers survive restarts."""
    scheduler = runtime.scheduler
    to_lua = runtime.vm.to_lua

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
