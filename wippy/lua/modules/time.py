"""Python side of the ``time`` module.

Natives are the pure parts (Go layouts, duration strings, calendar math, zone offsets:
see :mod:`wippy.lua.modules._gotime`). Commands are the parts that read the clock or wait
(``time.now``, ``time.sleep``, ``time.timer``, ``time.ticker``, ``time.stop``,
``time.reset``), so a durable provider can record and replay them.

A Time crosses into Lua as ``(unix seconds, nanoseconds, zone name, fixed offset or nil)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
