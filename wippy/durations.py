"""Go-style duration strings ("1h30m", "250ms", "-1.5s"): the one parser for the project.

YAML timeouts, Lua's ``time.parse_duration`` and process options all read durations the
way Go's ``time.ParseDuration`` does, in integer nanoseconds with Go's overflow rules.
"""

from __future__ import annotations

import re

from wippy.errors import INVALID, WippyError

NS = 1_000_000_000
INT64_MAX = 2**63 - 1
UNITS_NS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
            "s": NS, "m": 60 * NS, "h": 3600 * NS}
_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_UNIT = re.compile(r"[^0-9.]*")


class DurationError(WippyError, ValueError):
    """Not a duration. ``str()`` is the message alone, ready to put after a field name."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID, message, retryable=False)

    def __str__(self) -> str:
        return self.message


def parse_duration_ns(text: object) -> int:
    """Nanoseconds in ``text``, exactly as Go's ``time.ParseDuration`` reads it."""
    if not isinstance(text, str):
        raise DurationError(f'must be a duration string such as "5s", "100ms" or "1m30s", not {type(text).__name__}')
    s, neg = text, False
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise DurationError(f'invalid duration "{text}"')
    total = 0
    while s:
        num = _NUMBER.match(s)
        assert num is not None  # the pattern matches the empty string
        whole, frac = num.group(1), num.group(2)
        if not whole and not frac:
            raise DurationError(f'invalid duration "{text}"')
        s = s[num.end():]
        unit = _UNIT.match(s).group(0)  # type: ignore[union-attr]
        if not unit:
            raise DurationError(f'missing unit in duration "{text}"')
        if unit not in UNITS_NS:
            raise DurationError(f'unknown unit "{unit}" in duration "{text}"')
        s = s[len(unit):]
        scale = UNITS_NS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        if total > INT64_MAX + (1 if neg else 0):
            raise DurationError(f'invalid duration "{text}"')
    return -total if neg else total


def parse_duration(text: object) -> float:
    """Seconds in a duration string."""
    return parse_duration_ns(text) / NS
