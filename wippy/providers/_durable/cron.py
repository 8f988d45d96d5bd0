"""Five-field cron schedules (``temporal.workflow.cron_schedule``) and their next time.

``minute hour day-of-month month day-of-week``, in UTC, as Temporal reads them: each
field is ``*``, a value, a range ``a-b``, a step ``*/n`` / ``a-b/n`` / ``a/n`` (``a`` to
the field's maximum), or a comma list of those; months and weekdays also by name
(``JAN``, ``MON``), weekday 7 is Sunday, ``?`` is ``*``. When both day fields are
restricted a day matches if either does (as in cron and Temporal); the descriptors
``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly`` are shorthands.

The clock is injectable: :data:`clock` is what "now" is, and :func:`set_minute` makes a
cron minute last fewer seconds (tests cannot wait minutes). Both only change the time
scale the real computation runs on: :func:`next_fire` always maps real time to cron time
and back with the same formula, which is the identity unless a test changed the scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wippy.errors import INVALID, WippyError

clock: Callable[[], float] = time.time  # "now", in seconds since the epoch

MINUTE = 60.0  # real seconds in one cron minute: 60 except under set_minute()
ANCHOR = 0.0  # the real time at which scaled cron time and real time agree

_MONTHS = {n: i + 1 for i, n in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))}
_DAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# (name, low, high, names)
_FIELDS = (
    ("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS),
)
_SEARCH_YEARS = 9  # a schedule that matches at all matches within this (29 Feb: up to 8 years apart)


def set_minute(seconds: float | None) -> None:
    """Tests: from now on one cron minute lasts ``seconds`` real seconds (None: 60 again).

    Cron time then runs faster than real time from this moment on; schedules are still
    matched by :meth:`Schedule.next_after`, on the scaled clock."""
    global MINUTE, ANCHOR
    if seconds is None:
        MINUTE, ANCHOR = 60.0, 0.0
        return
    if seconds <= 0:
        raise ValueError("a cron minute must last a positive number of seconds")
    MINUTE, ANCHOR = float(seconds), clock()


@dataclass(frozen=True)
class Schedule:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_star: bool
    weekdays_star: bool

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next_after(self, after: float) -> float:
        """The first matching minute strictly after ``after`` (seconds since the epoch, UTC)."""
        t = datetime.fromtimestamp(math.floor(after / 60) * 60 + 60, tz=UTC)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t.timestamp()
        raise WippyError(INVALID, f"cron schedule {self.expr!r} never matches", retryable=False)


def _value(token: str, name: str, low: int, high: int, names: dict[str, int] | None, expr: str) -> int:
    if names is not None and token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise WippyError(INVALID, f"cron schedule {expr!r}: {name} {token!r} is not a number", retryable=False)
    value = int(token)
    if not low <= value <= high:
        raise WippyError(INVALID, f"cron schedule {expr!r}: {name} {value} is outside {low}-{high}", retryable=False)
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int] | None,
           expr: str) -> tuple[set[int], bool]:
    """The values of one field, and whether it is unrestricted (``*`` or ``?``)."""
    values: set[int] = set()
    star = False
    for item in text.split(","):
        if not item:
            raise WippyError(INVALID, f"cron schedule {expr!r}: empty item in the {name} field", retryable=False)
        body, _, step_text = item.partition("/")
        step = 1
        if step_text or item.endswith("/"):
            if not step_text.isdigit() or int(step_text) == 0:
                raise WippyError(INVALID, f"cron schedule {expr!r}: bad step {step_text!r} in the {name} field",
                                 retryable=False)
            step = int(step_text)
        if body in ("*", "?"):
            first, last = low, high
            star = star or step == 1
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, name, low, high, names, expr), _value(b, name, low, high, names, expr)
            if first > last:
                raise WippyError(INVALID, f"cron schedule {expr!r}: range {body} in the {name} field runs backwards",
                                 retryable=False)
        else:
            first = _value(body, name, low, high, names, expr)
            last = high if step_text else first  # "a/n": from a to the maximum, every n
        values.update(range(first, last + 1, step))
    return values, star


def parse(expr: str) -> Schedule:
    """A schedule from a cron expression; INVALID naming the problem otherwise."""
    if not isinstance(expr, str):
        raise WippyError(INVALID, "cron schedule must be a string", retryable=False)
    text = expr.strip()
    text = _DESCRIPTORS.get(text.lower(), text)
    parts = text.split()
    if len(parts) != 5:
        raise WippyError(INVALID, f"cron schedule {expr!r} must have 5 fields (minute hour day-of-month month "
                                  f"day-of-week), not {len(parts)}", retryable=False)
    fields = [_field(part, *spec, expr) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = {0 if d == 7 else d for d in fields[4][0]}
    schedule = Schedule(expr, frozenset(fields[0][0]), frozenset(fields[1][0]), frozenset(fields[2][0]),
                        frozenset(fields[3][0]), frozenset(weekdays), fields[2][1], fields[4][1])
    schedule.next_after(0.0)  # one that can never match (31 February) is refused now
    return schedule


def next_fire(schedule: Schedule, after: float | None = None) -> float:
    """The real time of the first run of ``schedule`` strictly after ``after`` (default: now)."""
    if after is None:
        after = clock()
    scale = 60.0 / MINUTE
    scaled = schedule.next_after(ANCHOR + (after - ANCHOR) * scale)
    fire = ANCHOR + (scaled - ANCHOR) / scale
    while fire <= after + 1e-6:  # a scaled `after` that rounded down onto a slot: take the next
        scaled = schedule.next_after(scaled)
        fire = ANCHOR + (scaled - ANCHOR) / scale
    return fire
