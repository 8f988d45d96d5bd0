"""Go-style duration strings (``"5s"``, ``"100ms"``, ``"1m30s"``), parsed in one place.

Wippy's YAML comes from a Go runtime, so timeouts and delays are written the way Go's
``time.ParseDuration`` reads them. Everything that reads a duration from an entry should
call :func:`parse_duration` so the accepted syntax and the error wording stay the same.
"""

from __future__ import annotations

import re

# Seconds per unit, as Go spells them (both micro signs included).
UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_PART = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")
_EXAMPLES = '"5s", "100ms" or "1m30s"'


class DurationError(ValueError):
    """A value that is not a Go-style duration; the message says why, for the user."""


def parse_duration(text: str) -> float:
    """``text`` as seconds. Accepts Go's syntax: an optional sign, then one or more
    ``<number><unit>`` parts with units ns, us (µs), ms, s, m, h; a bare ``"0"`` is zero."""
    if not isinstance(text, str):
        raise DurationError(f"must be a duration string such as {_EXAMPLES}, not {type(text).__name__}")
    body = text.strip()
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise DurationError(f"invalid duration {text!r}: empty; write e.g. {_EXAMPLES}")
    total = 0.0
    pos = 0
    while pos < len(body):
        m = _PART.match(body, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r}: expected a number at {body[pos:]!r}; write e.g. {_EXAMPLES}")
        number, unit = m.groups()
        if not unit:
            raise DurationError(f"invalid duration {text!r}: missing unit after {number} (use ns, us, ms, s, m or h)")
        if unit not in UNITS:
            raise DurationError(f"invalid duration {text!r}: unknown unit {unit!r} (use ns, us, ms, s, m or h)")
        total += float(number) * UNITS[unit]
        pos = m.end()
    return sign * total


def parse_duration_ns(text: str) -> int:
    """``text`` as whole nanoseconds (Go's own resolution), for code that wants integers."""
    return round(parse_duration(text) * 1e9)


__all__ = ["DurationError", "UNITS", "parse_duration", "parse_duration_ns"]
