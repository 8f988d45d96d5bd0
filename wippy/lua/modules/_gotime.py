"""Go's time semantics in pure Python, for the ``time`` module's natives.

Durations (``ParseDuration`` / ``String``), proleptic Gregorian calendar math on plain
integers (any year, not only datetime's 1..9999), zone offsets, and layouts with the
reference time ``Mon Jan 2 15:04:05 MST 2006`` (``Format`` / ``Parse``). Nothing here reads
the clock: that stays behind the module's commands so it can be recorded and replayed.
"""

from __future__ import annotations

import time as _clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from wippy.errors import INVALID, NOT_FOUND

NS = 1_000_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ZERO_UNIX = -62_135_596_800  # 0001-01-01T00:00:00Z, Go's zero Time
_MIN_DT, _MAX_DT = ZERO_UNIX + 86_400, 253_402_300_799 - 86_400  # what datetime can place

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


# Durations ---------------------------------------------------------------------------
from wippy.durations import parse_duration_ns as parse_duration  # noqa: E402,F401  (re-exported)


def _fraction(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    tail = str(frac).rjust(digits, "0").rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


def duration_string(ns: int) -> str:
    """Go's ``Duration.String``: ``"1h30m0s"``, ``"1.5s"``, ``"250ms"``, ``"0s"``."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 3)}\u00b5s"
    if u < NS:
        return f"{sign}{_fraction(u, 6)}ms"
    secs, frac = divmod(u, NS)
    out = _fraction(secs % 60 * NS + frac, 9) + "s"
    minutes = secs // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        if minutes >= 60:
            out = f"{minutes // 60}h{out}"
    return sign + out


# Calendar ----------------------------------------------------------------------------
def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def civil(local: int) -> tuple[int, int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, weekday, yearday) of local seconds."""
    days, secs = divmod(local, 86_400)
    y, m, d = civil_from_days(days)
    hh, rem = divmod(secs, 3600)
    mm, ss = divmod(rem, 60)
    return y, m, d, hh, mm, ss, (days + 4) % 7, days - days_from_civil(y, 1, 1) + 1


# Zones -------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError, UnicodeError):
        return None


def zone_offset(sec: int, zone: str, fixed: int | None) -> tuple[int, str]:
    """(offset east of UTC in seconds, abbreviation) of a location at an instant."""
    if fixed is not None:
        return fixed, zone
    if zone == "UTC":
        return 0, "UTC"
    if zone == "Local":
        try:
            tm = _clock.localtime(sec)
        except (OverflowError, OSError, ValueError):
            tm = _clock.localtime()
        return tm.tm_gmtoff or 0, tm.tm_zone or ""
    info = _zone(zone)
    if info is None:  # a zone this host lacks (data from elsewhere): show it as UTC
        return 0, "UTC"
    dt = datetime.fromtimestamp(min(max(sec, _MIN_DT), _MAX_DT), tz=info)
    offset = dt.utcoffset()
    return (int(offset.total_seconds()) if offset else 0), dt.tzname() or ""


def check_zone(name: str) -> tuple[str, str] | None:
    """None if ``name`` loads, else (error kind, message)."""
    if not name:
        return INVALID, "location name must not be empty"
    if name in ("UTC", "Local") or _zone(name) is not None:
        return None
    return NOT_FOUND, f"unknown time zone {name}"


def to_utc(local: int, zone: str, fixed: int | None) -> int:
    """Unix seconds of a wall-clock reading in a location (Go's choice in gaps and folds)."""
    off = zone_offset(local, zone, fixed)[0]
    utc = local - off
    again = zone_offset(utc, zone, fixed)[0]
    return local - again if again != off else utc


def make_date(y: int, mo: int, d: int, h: int, mi: int, s: int, ns: int,
              zone: str, fixed: int | None) -> tuple[int, int]:
    """Go's ``time.Date``: out-of-range fields carry over (month 13 is January next year)."""
    y, mo = y + (mo - 1) // 12, (mo - 1) % 12 + 1
    s, ns = s + ns // NS, ns % NS
    mi, s = mi + s // 60, s % 60
    h, mi = h + mi // 60, mi % 60
    d, h = d + h // 24, h % 24
    local = (days_from_civil(y, mo, 1) + d - 1) * 86_400 + h * 3600 + mi * 60 + s
    return to_utc(local, zone, fixed), ns


# Layouts -----------------------------------------------------------------------------
_ZONES = ("-070000", "-07:00:00", "-0700", "-07:00", "-07")
_ISO_ZONES = ("Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07")
_WORDS = {"J": ("January", "Jan"), "M": ("Monday", "Mon", "MST"), "P": ("PM",), "p": ("pm",),
          "-": _ZONES, "Z": _ISO_ZONES}
Token = tuple[str, str, Any]  # (kind, layout text, extra)


def _match(layout: str, i: int) -> tuple[str, int] | None:
    """The layout element starting at ``i`` (Go's ``nextStdChunk`` rules) and its end."""
    c, rest = layout[i], layout[i:]
    for word in _WORDS.get(c, ()):
        if rest.startswith(word):
            return word, i + len(word)
    if c == "0":
        if rest[1:2] in ("1", "2", "3", "4", "5", "6") and len(rest) > 1:
            return rest[:2], i + 2
        if rest.startswith("002"):
            return "002", i + 3
    elif c == "1":
        return ("15", i + 2) if rest.startswith("15") else ("1", i + 1)
    elif c == "2":
        return ("2006", i + 4) if rest.startswith("2006") else ("2", i + 1)
    elif c == "_":
        if rest.startswith("_2") and not rest.startswith("_2006"):
            return "_2", i + 2
        if rest.startswith("__2"):
            return "__2", i + 3
    elif c in "345":
        return c, i + 1
    return None


@lru_cache(maxsize=256)
def tokens(layout: str) -> tuple[Token, ...]:
    out: list[Token] = []
    lit: list[str] = []
    i, n = 0, len(layout)
    while i < n:
        c = layout[i]
        if c in ".," and i + 1 < n and layout[i + 1] in "09":
            j = i + 1
            while j < n and layout[j] == layout[i + 1]:
                j += 1
            if not (j < n and layout[j].isascii() and layout[j].isdigit()):
                if lit:
                    out.append(("lit", "".join(lit), None))
                    lit = []
                kind = "frac0" if layout[i + 1] == "0" else "frac9"
                out.append((kind, layout[i:j], j - i - 1))
                i = j
                continue
        found = _match(layout, i)
        if found is None:
            lit.append(c)
            i += 1
            continue
        if lit:
            out.append(("lit", "".join(lit), None))
            lit = []
        out.append((found[0], found[0], None))
        i = found[1]
    if lit:
        out.append(("lit", "".join(lit), None))
    return tuple(out)


def _zone_text(kind: str, offset: int) -> str:
    if kind[0] == "Z" and offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    hh, rem = divmod(abs(offset), 3600)
    mm, ss = divmod(rem, 60)
    parts = {"07": [hh], "0700": [hh, mm], "07:00": [hh, mm], "070000": [hh, mm, ss],
             "07:00:00": [hh, mm, ss]}[kind[1:]]
    sep = ":" if ":" in kind else ""
    return sign + sep.join(f"{p:02d}" for p in parts)


def format_time(layout: str, sec: int, nsec: int, zone: str, fixed: int | None) -> str:
    """Go's ``Time.Format`` with the reference time ``Mon Jan 2 15:04:05 MST 2006``."""
    offset, abbrev = zone_offset(sec, zone, fixed)
    y, mo, d, h, mi, s, wd, yd = civil(sec + offset)
    out: list[str] = []
    add = out.append
    for kind, text, extra in tokens(layout):
        if kind == "lit":
            add(text)
        elif kind == "2006":
            add(f"{y:04d}" if y >= 0 else f"-{-y:04d}")
        elif kind == "06":
            add(f"{y % 100:02d}")
        elif kind in ("Jan", "January"):
            add(MONTHS[mo - 1][: 3 if kind == "Jan" else None])
        elif kind in ("Mon", "Monday"):
            add(DAYS[wd][: 3 if kind == "Mon" else None])
        elif kind in ("1", "2", "4", "5"):
            add(str({"1": mo, "2": d, "4": mi, "5": s}[kind]))
        elif kind in ("01", "02", "04", "05", "15"):
            add(f"{ {'01': mo, '02': d, '04': mi, '05': s, '15': h}[kind]:02d}")
        elif kind == "_2":
            add(f"{d:2d}")
        elif kind == "002":
            add(f"{yd:03d}")
        elif kind == "__2":
            add(f"{yd:3d}")
        elif kind in ("3", "03"):
            h12 = h % 12 or 12
            add(str(h12) if kind == "3" else f"{h12:02d}")
        elif kind == "PM":
            add("PM" if h >= 12 else "AM")
        elif kind == "pm":
            add("pm" if h >= 12 else "am")
        elif kind == "MST":
            add(abbrev or _zone_text("-0700", offset))
        elif kind in ("frac0", "frac9"):
            digits = f"{nsec:09d}"[:extra]
            if kind == "frac9":
                digits = digits.rstrip("0")
            if digits:
                add(text[0] + digits)
        else:
            add(_zone_text(kind, offset))
    return "".join(out)


class ParseError(ValueError):
    """A value did not match its layout (message in Go's words)."""


class _Bad(Exception):
    pass


def _isd(s: str, i: int) -> bool:
    return i < len(s) and "0" <= s[i] <= "9"


def _num(v: str, fixed: bool) -> tuple[int, str]:
    if not _isd(v, 0):
        raise _Bad
    if _isd(v, 1):
        return int(v[:2]), v[2:]
    if fixed:
        raise _Bad
    return int(v[0]), v[1:]


def _num3(v: str, fixed: bool) -> tuple[int, str]:
    n = 0
    while n < 3 and _isd(v, n):
        n += 1
    if n == 0 or (fixed and n != 3):
        raise _Bad
    return int(v[:n]), v[n:]


def _lookup(names: tuple[str, ...], v: str, short: bool) -> tuple[int, str]:
    for i, name in enumerate(names):
        word = name[:3] if short else name
        if v[: len(word)].lower() == word.lower():
            return i, v[len(word):]
    raise _Bad


def _skip(v: str, lit: str) -> str | None:
    """Match a literal; a run of spaces matches a run of spaces (Go's ``skip``)."""
    while lit:
        if lit[0] == " ":
            if v and v[0] != " ":
                return None
            lit, v = lit.lstrip(" "), v.lstrip(" ")
            continue
        if not v or v[0] != lit[0]:
            return None
        lit, v = lit[1:], v[1:]
    return v


def _signed_len(v: str) -> int:
    if not v or v[0] not in "+-":
        return 0
    j = 1
    while _isd(v, j):
        j += 1
    return j if j > 1 and int(v[1:j]) <= 23 else 0


def _zone_name_len(v: str) -> int:
    if len(v) < 3:
        return 0
    if v[:4] in ("ChST", "MeST"):
        return 4
    if v[:3] == "GMT":
        return 3 + _signed_len(v[3:])
    if v[0] in "+-":
        return _signed_len(v)
    n = 0
    while n < min(len(v), 6) and "A" <= v[n] <= "Z":
        n += 1
    if n == 3 or (n == 4 and (v[3] == "T" or v[:4] == "WITA")) or (n == 5 and v[4] == "T"):
        return n
    return 0


def _nanos(digits: str) -> int:
    return int(digits[:9].ljust(9, "0"))


def _frac_len(v: str) -> int:
    """Length of a ``.123`` / ``,123`` fraction at the start of ``v`` (0 if none)."""
    if len(v) < 2 or v[0] not in ".," or not _isd(v, 1):
        return 0
    j = 1
    while _isd(v, j):
        j += 1
    return j


def _zone_offset_value(kind: str, v: str) -> tuple[int, str]:
    shape = kind[1:]
    need = 1 + len(shape)
    if len(v) < need or v[0] not in "+-":
        raise _Bad
    digits = ""
    for ch, want in zip(v[1:need], shape, strict=True):
        if want == ":":
            if ch != ":":
                raise _Bad
        elif not ("0" <= ch <= "9"):
            raise _Bad
        else:
            digits += ch
    hh, mm, ss = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    if hh > 24 or mm > 59 or ss > 59:
        raise _Bad
    offset = hh * 3600 + mm * 60 + ss
    return (-offset if v[0] == "-" else offset), v[need:]


def _named_offset(zone: str, fixed: int | None, name: str, sec: int) -> int | None:
    """Offset a location uses under abbreviation ``name`` near ``sec`` (EST vs EDT)."""
    for probe in (sec, sec - 182 * 86_400, sec + 182 * 86_400):
        offset, abbrev = zone_offset(probe, zone, fixed)
        if abbrev == name:
            return offset
    return None


@dataclass
class _Parsed:
    """What ``parse_time`` has read so far (Go's ``time.Parse`` locals)."""

    value: str
    year: int = 0
    month: int = -1
    day: int = -1
    yday: int = -1
    hour: int = 0
    minute: int = 0
    second: int = 0
    nsec: int = 0
    pm: bool | None = None
    utc: bool = False
    offset: int | None = None
    name: str = ""

    def out_of_range(self, what: str) -> ParseError:
        return ParseError(f'parsing time "{self.value}": {what} out of range')


# Each element parser reads its element from the front of ``v`` and returns the rest;
# it raises _Bad when ``v`` does not match, or ParseError for a value out of range.
_Element = Callable[[_Parsed, str, str, int, Sequence[tuple[str, str, Any]], int], str]


def _p_year4(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    if not all(_isd(v, k) for k in range(4)):
        raise _Bad
    p.year = int(v[:4])
    return v[4:]


def _p_year2(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    year, v = _num(v, True)
    p.year = year + (1900 if year >= 69 else 2000)
    return v


def _p_month_name(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    month, v = _lookup(MONTHS, v, kind == "Jan")
    p.month = month + 1
    return v


def _p_weekday(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    return _lookup(DAYS, v, kind == "Mon")[1]


def _bounded(field: str, low: int, high: int, padded: tuple[str, ...], what: str | None = None) -> _Element:
    """An element that reads a 1-2 digit number into ``field`` and checks its range."""

    def parse(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
        n, v = _num(v, kind in padded)
        if not low <= n <= high:
            raise p.out_of_range(what or field)
        setattr(p, field, n)
        return v

    return parse


def _p_day(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    if kind == "_2" and v[:1] == " ":
        v = v[1:]
    p.day, v = _num(v, kind == "02")
    return v


def _p_yday(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    if kind == "__2":
        v = v[2:] if v[:2] == "  " else v[1:] if v[:1] == " " else v
    p.yday, v = _num3(v, kind == "002")
    if not 1 <= p.yday <= 366:
        raise p.out_of_range("day-of-year")
    return v


def _p_second(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    p.second, v = _num(v, kind == "05")
    if p.second > 59:
        raise p.out_of_range("second")
    following = next((t[0] for t in toks[i + 1:] if t[0] != "lit"), None)
    n = _frac_len(v)
    if n and following not in ("frac0", "frac9"):  # a fraction the layout lacks
        p.nsec, v = _nanos(v[1:n]), v[n:]
    return v


def _p_ampm(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    word = v[:2]
    if word not in (("AM", "PM") if kind == "PM" else ("am", "pm")):
        raise _Bad
    p.pm = word.upper() == "PM"
    return v[2:]


def _p_zone_name(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    if v[:3] == "UTC":
        p.utc = True
        return v[3:]
    n = _zone_name_len(v)
    if n == 0:
        raise _Bad
    p.name = v[:n]
    return v[n:]


def _p_frac_fixed(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    n = 1 + extra
    if len(v) < n or v[0] not in ".," or not all(_isd(v, k) for k in range(1, n)):
        raise _Bad
    p.nsec = _nanos(v[1:n])
    return v[n:]


def _p_frac_any(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    n = _frac_len(v)
    if n:
        p.nsec = _nanos(v[1:n])
        v = v[n:]
    return v


def _p_offset(p: _Parsed, v: str, kind: str, extra: int, toks: Sequence[tuple[str, str, Any]], i: int) -> str:
    if kind[0] == "Z" and v[:1] == "Z":
        p.utc = True
        return v[1:]
    p.offset, v = _zone_offset_value(kind, v)
    return v


_ELEMENTS: dict[str, _Element] = {
    "2006": _p_year4, "06": _p_year2, "Jan": _p_month_name, "January": _p_month_name,
    "Mon": _p_weekday, "Monday": _p_weekday,
    "1": _bounded("month", 1, 12, ("01",)), "01": _bounded("month", 1, 12, ("01",)),
    "2": _p_day, "02": _p_day, "_2": _p_day, "002": _p_yday, "__2": _p_yday,
    "15": _bounded("hour", 0, 23, ()), "3": _bounded("hour", 0, 12, ("03",)), "03": _bounded("hour", 0, 12, ("03",)),
    "4": _bounded("minute", 0, 59, ("04",)), "04": _bounded("minute", 0, 59, ("04",)),
    "5": _p_second, "05": _p_second, "PM": _p_ampm, "pm": _p_ampm, "MST": _p_zone_name,
    "frac0": _p_frac_fixed, "frac9": _p_frac_any,
}


def _read_elements(p: _Parsed, layout: str) -> None:
    toks = tokens(layout)
    v = p.value
    for i, (kind, text, extra) in enumerate(toks):
        start = v
        try:
            if kind == "lit":
                rest = _skip(v, text)
                if rest is None:
                    raise _Bad
                v = rest
            else:
                v = _ELEMENTS.get(kind, _p_offset)(p, v, kind, extra, toks, i)
        except _Bad:
            raise ParseError(f'parsing time "{p.value}" as "{layout}": cannot parse "{start}" as "{text}"') from None
    if v:
        raise ParseError(f'parsing time "{p.value}": extra text: "{v}"')


def _resolve_date(p: _Parsed) -> None:
    """Apply AM/PM and the day of the year; check the day of the month."""
    if p.pm is not None:
        if p.pm and p.hour < 12:
            p.hour += 12
        elif not p.pm and p.hour == 12:
            p.hour = 0
    if p.yday >= 0:
        if p.yday > (366 if _is_leap(p.year) else 365):
            raise p.out_of_range("day-of-year")
        _, m, d = civil_from_days(days_from_civil(p.year, 1, 1) + p.yday - 1)
        if (p.month >= 0 and p.month != m) or (p.day >= 0 and p.day != d):
            raise ParseError(f'parsing time "{p.value}": day-of-year does not match month and day')
        p.month, p.day = m, d
    p.month, p.day = max(p.month, 1), (1 if p.day < 0 else p.day)
    if not 1 <= p.day <= _days_in(p.month, p.year):
        raise p.out_of_range("day")


def parse_time(layout: str, value: str, zone: str, fixed: int | None,
               explicit: bool) -> tuple[int, int, str, int | None]:
    """Go's ``time.Parse`` (``explicit`` False: default UTC, zone names looked up in Local)
    and ``time.ParseInLocation`` (``explicit`` True). Returns (sec, nsec, zone, fixed)."""
    p = _Parsed(value)
    _read_elements(p, layout)
    _resolve_date(p)
    local = days_from_civil(p.year, p.month, p.day) * 86_400 + p.hour * 3600 + p.minute * 60 + p.second
    look_zone, look_fixed = (zone, fixed) if explicit else ("Local", None)
    if p.utc:
        return local, p.nsec, "UTC", None
    if p.offset is not None:
        sec = local - p.offset
        found, abbrev = zone_offset(sec, look_zone, look_fixed)
        if found == p.offset and (not p.name or abbrev == p.name):
            return sec, p.nsec, look_zone, look_fixed
        return sec, p.nsec, p.name, p.offset
    if p.name:
        found_offset = _named_offset(look_zone, look_fixed, p.name, local)
        if found_offset is not None:
            return local - found_offset, p.nsec, look_zone, look_fixed
        guess = int(p.name[3:]) * 3600 if len(p.name) > 3 and p.name.startswith("GMT") else 0
        return local - guess, p.nsec, p.name, guess
    if explicit:
        return to_utc(local, zone, fixed), p.nsec, zone, fixed
    return local, p.nsec, "UTC", None


def round_time(sec: int, nsec: int, d: int, up: bool) -> tuple[int, int]:
    """Go's ``Round`` (``up``) / ``Truncate``: multiples of ``d`` since the zero Time."""
    if d <= 0:
        return sec, nsec
    total = (sec - ZERO_UNIX) * NS + nsec
    r = total % d
    total += d - r if up and r + r >= d else -r
    q, n = divmod(total, NS)
    return q + ZERO_UNIX, n
