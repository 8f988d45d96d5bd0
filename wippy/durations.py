"""Go-style duration strings ("1h30m", "250ms", "1.5s"): the one parser for the project."""

from __future__ import annotations

import re

from wippy.errors import INVALID, WippyError

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in ``text``; raises INVALID naming the text when it is not a duration."""
    s = text.strip()
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise WippyError(INVALID, f"invalid duration {text!r} (use e.g. \"300ms\", \"1.5s\", \"2h45m\")", retryable=False)
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise WippyError(INVALID, f"invalid duration {text!r} (use e.g. \"300ms\", \"1.5s\", \"2h45m\")", retryable=False)
    return sign * int(round(total))


def parse_duration(text: str) -> float:
    """Seconds in a duration string."""
    return parse_duration_ns(text) / 1e9
