"""The ``time`` module: values, layouts, zones, sleeps and timers (ms-scale, no sleeps as sync)."""

from __future__ import annotations

import asyncio
import time as clock
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError
from wippy.lua.convert import TypedValue
from wippy.lua.modules._gotime import duration_string, parse_duration

MS = 1_000_000


def lua(project: Project, body: str, *args: Any, modules: list[str] | None = None) -> Any:
    return run_lua(project, 'local time = require("time")\n' + body, *args,
                   modules=modules or ["time"])


def lua_error(project: Project, body: str) -> WippyError:
    with pytest.raises(WippyError) as info:
        lua(project, body)
    return info.value


def live_timers(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """Timer handles still armed on the loop (asyncio keeps them in ``_scheduled``)."""
    return [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]


# Constants -----------------------------------------------------------------------------
def test_constants(project: Project) -> None:
    got = lua(project, """
        return { time.NANOSECOND, time.MICROSECOND, time.MILLISECOND, time.SECOND, time.MINUTE,
                 time.HOUR, time.RFC3339, time.RFC3339NANO, time.RFC822, time.RFC822Z,
                 time.RFC850, time.RFC1123, time.RFC1123Z, time.DATE_TIME, time.DATE_ONLY,
                 time.TIME_ONLY, time.KITCHEN, time.STAMP, time.STAMP_MILLI, time.STAMP_MICRO,
                 time.STAMP_NANO, time.JANUARY, time.DECEMBER, time.SUNDAY, time.SATURDAY,
                 time.utc:string(), time.localtz:string() }
    """)
    assert got == [
        1, 1000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000,
        "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00",
        "02 Jan 06 15:04 MST", "02 Jan 06 15:04 -0700", "Monday, 02-Jan-06 15:04:05 MST",
        "Mon, 02 Jan 2006 15:04:05 MST", "Mon, 02 Jan 2006 15:04:05 -0700",
        "2006-01-02 15:04:05", "2006-01-02", "15:04:05", "3:04PM", "Jan _2 15:04:05",
        "Jan _2 15:04:05.000", "Jan _2 15:04:05.000000", "Jan _2 15:04:05.000000000",
        1, 12, 0, 6, "UTC", "Local",
    ]


# Creating times --------------------------------------------------------------------------
def test_now_reads_the_clock(project: Project) -> None:
    before = clock.time_ns()
    got = lua(project, "local t = time.now() return { t:unix_nano(), t:location():string() }")
    after = clock.time_ns()
    assert before <= got[0] <= after
    assert got[1] == "Local"


def test_date_and_components(project: Project) -> None:
    got = lua(project, """
        local t = time.date(2024, time.DECEMBER, 25, 10, 30, 15, 123456789, time.utc)
        local y, m, d = t:date()
        local h, mi, s = t:clock()
        return { t:format_rfc3339(), y, m, d, h, mi, s, t:year(), t:month(), t:day(), t:hour(),
                 t:minute(), t:second(), t:nanosecond(), t:weekday(), t:year_day(), t:is_zero(),
                 time.date(1, 1, 1, 0, 0, 0, 0, time.utc):is_zero(),
                 time.date(2024, 13, 32, 25, 0, 0, 0, time.utc):format(time.DATE_TIME),
                 time.date(2024, 1, 15, 12, 0, 0, 0):location():string() }
    """)
    assert got == ["2024-12-25T10:30:15Z", 2024, 12, 25, 10, 30, 15, 2024, 12, 25, 10, 30, 15,
                   123456789, 3, 360, False, True, "2025-02-02 01:00:00", "Local"]


def test_unix(project: Project) -> None:
    got = lua(project, """
        local t = time.unix(1703862245, 0)
        local js = 1703862245123
        local j = time.unix(js // 1000, (js % 1000) * 1000000)
        local n = time.unix(10, -1)
        return { t:utc():format_rfc3339(), t:unix(), t:unix_nano(), j:nanosecond(),
                 j:utc():format(time.RFC3339NANO), n:unix(), n:nanosecond(), time.unix(5):unix() }
    """)
    assert got == ["2023-12-29T15:04:05Z", 1703862245, 1703862245 * 10**9, 123_000_000,
                   "2023-12-29T15:04:05.123Z", 9, 999_999_999, 5]


def test_date_rejects_bad_arguments(project: Project) -> None:
    err = lua_error(project, 'return time.date(2024, "x", 1, 0, 0, 0, 0)')
    assert err.kind == "Invalid"
    assert err.message == "time.date: bad argument #2 (month): expected an integer, got string"


def test_date_rejects_bad_location(project: Project) -> None:
    err = lua_error(project, 'return time.date(2024, 1, 1, 0, 0, 0, 0, "UTC")')
    assert err.kind == "Invalid"
    assert "time.date: bad argument #8 (location): expected a Location" in err.message


# Parsing and formatting ------------------------------------------------------------------
def test_parse(project: Project) -> None:
    got = lua(project, """
        local a = assert(time.parse(time.RFC3339, "2024-12-29T15:04:05Z"))
        local b = assert(time.parse("2006-01-02", "2024-12-29"))
        local c = assert(time.parse("15:04:05", "14:30:00"))
        local d = assert(time.parse(time.RFC3339, "2024-12-29T15:04:05+05:30"))
        local ny = assert(time.load_location("America/New_York"))
        local e = assert(time.parse("2006-01-02 15:04", "2024-12-29 14:30", ny))
        local f = assert(time.parse("2006-01-02 15:04:05 MST", "2024-07-04 09:00:00 EDT", ny))
        local g = assert(time.parse(time.STAMP_MILLI, "Feb  3 04:05:06.789"))
        local h = assert(time.parse(time.KITCHEN, "3:04PM"))
        local i = assert(time.parse("Mon, 02 Jan 2006", "sun, 29 dec 2024"))
        return { a:unix(), a:location():string(), b:format_rfc3339(), c:format(time.DATE_TIME),
                 d:utc():format_rfc3339(), d:format_rfc3339(), e:utc():format_rfc3339(),
                 e:location():string(), f:utc():format_rfc3339(), g:nanosecond(), g:day(),
                 h:hour(), h:minute(), i:format(time.DATE_ONLY) }
    """)
    assert got == [1735484645, "UTC", "2024-12-29T00:00:00Z", "0000-01-01 14:30:00",
                   "2024-12-29T09:34:05Z", "2024-12-29T15:04:05+05:30", "2024-12-29T19:30:00Z",
                   "America/New_York", "2024-07-04T13:00:00Z", 789_000_000, 3, 15, 4, "2024-12-29"]


def test_parse_errors_are_returned(project: Project) -> None:
    got = lua(project, """
        local t, err = time.parse(time.RFC3339, "invalid")
        local _, range_err = time.parse(time.DATE_ONLY, "2024-02-30")
        local _, extra = time.parse(time.DATE_ONLY, "2024-02-03x")
        local _, type_err = time.parse(42, "x")
        return { t == nil, err:kind(), errors.is(err, errors.INVALID), err:message(),
                 range_err:message(), extra:message(), type_err:message() }
    """)
    assert got == [
        True, "Invalid", True,
        'time.parse: parsing time "invalid" as "2006-01-02T15:04:05Z07:00": cannot parse "invalid" as "2006"',
        'time.parse: parsing time "2024-02-30": day out of range',
        'time.parse: parsing time "2024-02-03x": extra text: "x"',
        "time.parse: bad argument #1 (layout): expected a string, got number",
    ]


def test_format(project: Project) -> None:
    got = lua(project, """
        local t = time.date(2024, 12, 29, 15, 4, 5, 120000000, time.utc)
        local ist = time.fixed_zone("IST", 5 * 3600 + 30 * 60)
        return { t:format(time.DATE_ONLY), t:format(time.TIME_ONLY), t:format("Mon Jan 2, 2006"),
                 t:format(time.KITCHEN), t:format(time.RFC1123), t:format(time.RFC1123Z),
                 t:format(time.RFC850), t:format(time.RFC822), t:format(time.STAMP_MICRO),
                 t:format(time.RFC3339NANO), t:format("Monday January _2 002 06 03 pm .999"),
                 t:in_location(ist):format(time.RFC3339), t:in_location(ist):format("-07 Z0700 MST"),
                 tostring(t), "at " .. t }
    """)
    assert got == ["2024-12-29", "15:04:05", "Sun Dec 29, 2024", "3:04PM",
                   "Sun, 29 Dec 2024 15:04:05 UTC", "Sun, 29 Dec 2024 15:04:05 +0000",
                   "Sunday, 29-Dec-24 15:04:05 UTC", "29 Dec 24 15:04 UTC",
                   "Dec 29 15:04:05.120000", "2024-12-29T15:04:05.12Z",
                   "Sunday December 29 364 24 03 pm .12", "2024-12-29T20:34:05+05:30",
                   "+05 +0530 IST", "2024-12-29 15:04:05.12 +0000 UTC",
                   "at 2024-12-29 15:04:05.12 +0000 UTC"]


# Arithmetic and comparison -------------------------------------------------------------
def test_arithmetic_and_comparison(project: Project) -> None:
    got = lua(project, """
        local t = time.date(2024, 1, 31, 12, 0, 0, 0, time.utc)
        local d = assert(time.parse_duration("1h30m"))
        local tomorrow = t:add("24h")
        local later = t:add(5 * time.MINUTE)
        local diff = tomorrow:sub(t)
        local t1 = time.date(2024, 1, 1, 0, 0, 0, 0, time.utc)
        local t2 = time.date(2024, 1, 2, 0, 0, 0, 0, time.utc)
        return { diff:hours(), later:format(time.TIME_ONLY), t:add(d):format(time.TIME_ONLY),
                 t:add(-1):nanosecond(), t:add_date(0, 1, 0):format(time.DATE_ONLY),
                 t:add_date(1, 0, 0):year(), t:add_date(0, 0, -7):format(time.DATE_ONLY),
                 t1:before(t2), t2:after(t1), t1:equal(t1), t1:equal(t2), t2:before(t1),
                 t1 == time.date(2024, 1, 1, 5, 30, 0, 0, time.fixed_zone("X", 19800)),
                 t1 < t2, t2 <= t1, tostring(t2 - t1), (t1 + d):hour(), (t2 - "1h"):day(),
                 tostring(t1:sub(t2)) }
    """)
    assert got == [24.0, "12:05:00", "13:30:00", 999_999_999, "2024-03-02", 2025, "2024-01-24",
                   True, True, True, False, False, True, True, False, "24h0m0s", 1, 1, "-24h0m0s"]


def test_time_method_misuse(project: Project) -> None:
    err = lua_error(project, "return time.now().add(5)")
    assert err.kind == "Invalid"
    assert err.message == "Time:add must be called with ':' on a Time"


def test_add_rejects_bad_duration(project: Project) -> None:
    err = lua_error(project, 'return time.now():add("soon")')
    assert err.kind == "Invalid"
    assert err.message == 'Time:add: bad argument #1 (duration): invalid duration "soon"'


def test_sub_requires_a_time(project: Project) -> None:
    err = lua_error(project, "return time.now():sub(5)")
    assert err.message == "Time:sub: bad argument #1 (time): expected a Time, got number"


# Zones ---------------------------------------------------------------------------------
def test_locations(project: Project) -> None:
    got = lua(project, """
        local ny = assert(time.load_location("America/New_York"))
        local tokyo = assert(time.load_location("Asia/Tokyo"))
        local t = time.date(2024, 7, 1, 12, 0, 0, 0, time.utc)
        local _, empty = time.load_location("")
        local _, missing = time.load_location("Unknown/Zone")
        local _, escape = time.load_location("../../etc/passwd")
        local pst = time.fixed_zone("PST", -8 * 3600)
        return { t:in_location(ny):format(time.TIME_ONLY), t:in_location(ny):format("MST -07:00"),
                 t:in_location(tokyo):hour(), tostring(ny), t:in_location(ny):location():string(),
                 t:in_location(ny):utc():location():string(), t:in_local():location():string(),
                 t:in_location(pst):format(time.RFC3339), pst:string(),
                 time.load_location("UTC") == time.utc, time.load_location("Local") == time.localtz,
                 empty:kind(), empty:message(), missing:kind(), errors.is(missing, errors.NOT_FOUND),
                 missing:message(), escape:kind(),
                 time.date(2024, 1, 15, 14, 0, 0, 0, ny):utc():format(time.TIME_ONLY) }
    """)
    assert got == ["08:00:00", "EDT -04:00", 21, "America/New_York", "America/New_York", "UTC",
                   "Local", "2024-07-01T04:00:00-08:00", "PST", True, True,
                   "Invalid", "time.load_location: location name must not be empty",
                   "NotFound", True, "time.load_location: unknown time zone Unknown/Zone",
                   "NotFound", "19:00:00"]


def test_round_and_truncate(project: Project) -> None:
    got = lua(project, """
        local t = time.date(2024, 12, 29, 15, 31, 45, 500000000, time.utc)
        local hour = assert(time.parse_duration("1h"))
        local quarter = assert(time.parse_duration("15m"))
        local second = assert(time.parse_duration("1s"))
        return { t:round(hour):format(time.TIME_ONLY), t:truncate(quarter):format(time.TIME_ONLY),
                 t:round(second):format(time.TIME_ONLY), t:truncate(second):format(time.TIME_ONLY),
                 t:round(time.parse_duration(0)):nanosecond() }
    """)
    assert got == ["16:00:00", "15:30:00", "15:31:46", "15:31:45", 500_000_000]


def test_round_requires_a_duration(project: Project) -> None:
    err = lua_error(project, "return time.now():round(time.HOUR)")
    assert err.kind == "Invalid"
    assert err.message == ("Time:round: bad argument #1 (duration): expected a Duration "
                           "(from time.parse_duration), got number")


# Durations -----------------------------------------------------------------------------
def test_durations(project: Project) -> None:
    got = lua(project, """
        local d = assert(time.parse_duration("1h30m45s500ms"))
        local s = assert(time.parse_duration(time.SECOND))
        local m = assert(time.parse_duration(5 * time.MINUTE))
        local same = assert(time.parse_duration(d))
        local neg = assert(time.parse_duration("-1.5us"))
        return { d:hours(), d:minutes(), d:seconds(), d:milliseconds(), d:microseconds(),
                 d:nanoseconds(), tostring(d), tostring(s), tostring(m), same == d,
                 tostring(neg), neg:nanoseconds(), neg:microseconds(),
                 tostring(assert(time.parse_duration("0"))), tostring(s + m), tostring(m - s),
                 tostring(-s), tostring(s * 2), tostring(3 * s), s < m, m <= s, s < 2 * time.SECOND,
                 tostring(s + 500 * time.MILLISECOND), "took " .. s }
    """)
    assert got == [5445.5 / 3600, 5445.5 / 60, 5445.5, 5_445_500, 5_445_500_000,
                   5_445_500_000_000, "1h30m45.5s", "1s", "5m0s", True, "-1.5µs", -1500, -1,
                   "0s", "5m1s", "4m59s", "-1s", "2s", "3s", True, False, True, "1.5s", "took 1s"]


@pytest.mark.parametrize("value, message", [
    ('"5 parsecs"', 'time.parse_duration: unknown unit " parsecs" in duration "5 parsecs"'),
    ('"5"', 'time.parse_duration: missing unit in duration "5"'),
    ('""', 'time.parse_duration: invalid duration ""'),
    ('"1h."', 'time.parse_duration: invalid duration "1h."'),
    ("{}", 'time.parse_duration: expected a Duration, a duration string like "1h30m" or a '
           "number of nanoseconds, got table"),
])
def test_parse_duration_errors(project: Project, value: str, message: str) -> None:
    got = lua(project, f"local d, err = time.parse_duration({value}) return {{ d == nil, err:kind(), err:message() }}")
    assert got == [True, "Invalid", message]


def test_duration_strings_match_go() -> None:
    cases = {"1h0m0s": 3600 * 10**9, "2m0s": 120 * 10**9, "1.5µs": 1500, "999ns": 999,
             "1.000000001s": 10**9 + 1, "-2h45m0s": -(2 * 3600 + 45 * 60) * 10**9}
    for text, ns in cases.items():
        assert duration_string(ns) == text
        assert parse_duration(text) == ns
    assert parse_duration("1.5h") == 5400 * 10**9
    assert parse_duration("+3μs") == parse_duration("3us") == 3000
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("9999999999h")


# Crossing boundaries ---------------------------------------------------------------------
def test_values_cross_actors_and_into_python(project: Project) -> None:
    project.function("echo", "return { main = function(...) return { ... } end }")
    got = lua(project, """
        local funcs = require("funcs")
        local t = time.date(2024, 5, 6, 7, 8, 9, 10, time.fixed_zone("X", 3600))
        local r = funcs.call("app:echo", t, time.parse_duration("90s"), time.utc)
        return { r[1]:format(time.RFC3339NANO), r[1] == t, tostring(r[2]), r[3]:string(),
                 getmetatable(r[1]), t, r[2] }
    """, modules=["time", "funcs"])
    assert got[:5] == ["2024-05-06T07:08:09.00000001+01:00", True, "1m30s", "UTC", "wippy.time"]
    assert got[5] == TypedValue("time", {"sec": 1714975689, "nsec": 10, "zone": "X", "offset": 3600})
    assert got[6] == TypedValue("duration", {"ns": 90 * 10**9})


def test_python_values_become_lua_times(project: Project) -> None:
    t = TypedValue("time", {"sec": 1703862245, "nsec": 0, "zone": "UTC"})
    d = TypedValue("duration", {"ns": 1500 * MS})
    got = run_lua(project, 'local t, d = ... return { t:format_rfc3339(), tostring(d), t:add(d):second() }',
                  t, d, modules=["time"])
    assert got == ["2023-12-29T15:04:05Z", "1.5s", 6]


# Sleeping ------------------------------------------------------------------------------
@pytest.mark.parametrize("arg, ns", [('"30ms"', 30 * MS), ("30 * time.MILLISECOND", 30 * MS),
                                      ('time.parse_duration("25ms")', 25 * MS)])
def test_sleep_waits(project: Project, arg: str, ns: int) -> None:
    start = clock.monotonic_ns()
    got = lua(project, f"local t0 = time.now() time.sleep({arg}) return time.now():sub(t0):nanoseconds()")
    elapsed = clock.monotonic_ns() - start
    assert elapsed >= ns
    assert got >= ns - MS  # the wall clock may be slewed slightly against the monotonic one


def test_sleep_zero_and_negative_return_at_once(project: Project) -> None:
    assert lua(project, 'time.sleep(0) time.sleep("-5s") return "ok"') == "ok"


@pytest.mark.parametrize("arg, message", [
    ('"abc"', 'time.sleep: bad argument #1 (duration): invalid duration "abc"'),
    ("{}", 'time.sleep: bad argument #1 (duration): expected a Duration, a duration string '
           'like "1h30m" or a number of nanoseconds, got table'),
    ("nil", 'time.sleep: bad argument #1 (duration): expected a Duration, a duration string '
            'like "1h30m" or a number of nanoseconds, got nil'),
    ("0/0", "time.sleep: bad argument #1 (duration): duration -nan is out of range"),
])
def test_sleep_rejects_bad_durations(project: Project, arg: str, message: str) -> None:
    err = lua_error(project, f"time.sleep({arg})")
    assert err.kind == "Invalid"
    assert err.message.replace("-nan", "nan") == message.replace("-nan", "nan")


def test_sleeping_call_that_times_out_leaves_no_timer(project: Project) -> None:
    project.function("t", 'local time = require("time")\n'
                     'return { main = function() time.sleep("10s") return 1 end }', modules=["time"])

    async def go() -> list[Any]:
        runtime = project.runtime()
        with pytest.raises(WippyError) as info:
            await runtime.call("app:t", timeout=0.03)
        assert info.value.kind == "Timeout"
        return live_timers(asyncio.get_running_loop())

    assert asyncio.run(go()) == []


# after / timer / ticker --------------------------------------------------------------------
def test_after_wins_select_against_idle_channel(project: Project) -> None:
    start = clock.monotonic_ns()
    got = lua(project, """
        local idle = channel.new()
        local t0 = time.now()
        local timeout, err = time.after("20ms")
        assert(err == nil)
        local r = channel.select{ idle:case_receive(), timeout:case_receive() }
        return { r.channel == timeout, r.ok, getmetatable(r.value), r.value:before(time.now()) or r.value:equal(time.now()),
                 r.value:sub(t0):nanoseconds() }
    """)
    elapsed = clock.monotonic_ns() - start
    assert got[:4] == [True, True, "wippy.time", True]
    # not before its time: the value is the wall-clock time it fired (1 ms for clock slew)
    assert got[4] >= 20 * MS - MS, got[4]
    assert elapsed >= 20 * MS


def test_after_races_a_future(project: Project) -> None:
    project.function("slow", 'local time = require("time")\n'
                     'return { main = function(ms) time.sleep(ms * time.MILLISECOND) return ms end }',
                     modules=["time"])
    got = lua(project, """
        local funcs = require("funcs")
        local function race(work_ms, timeout)
          local fut = funcs.async("app:slow", work_ms)
          local deadline = time.after(timeout)
          local r = channel.select{ fut:response():case_receive(), deadline:case_receive() }
          if r.channel == deadline then fut:cancel() return "timeout" end
          return r.value:data()
        end
        return { race(200, "20ms"), race(1, 200 * time.MILLISECOND) }
    """, modules=["time", "funcs"])
    assert got == ["timeout", 1]


def test_after_rejects_bad_duration(project: Project) -> None:
    got = lua(project, 'local ch, err = time.after("later") return { ch == nil, err:kind(), err:message() }')
    assert got == [True, "Invalid", 'time.after: bad argument #1 (duration): invalid duration "later"']


def test_timer_fires_once(project: Project) -> None:
    start = clock.monotonic_ns()
    got = lua(project, """
        local start = time.now()
        local timer, err = time.timer("15ms")
        assert(err == nil)
        local fired = timer:response():receive()
        local received = time.now()
        return { timer:channel() == timer:response(), getmetatable(fired), fired:sub(start):nanoseconds(),
                 received:sub(start):nanoseconds(), timer:stop() }
    """)
    elapsed = clock.monotonic_ns() - start
    assert got[:2] == [True, "wippy.time"] and got[4] is False
    fired, received = got[2], got[3]
    # fired no earlier than 15 ms after it was made (1 ms for wall-clock slew), received after that
    assert fired >= 15 * MS - MS, fired
    assert received >= fired
    assert elapsed >= 15 * MS


def test_timer_stop_prevents_firing(project: Project) -> None:
    got = lua(project, """
        local timer = time.timer("20ms")
        local stopped = timer:stop()
        local r = channel.select{ timer:response():case_receive(), time.after("60ms"):case_receive() }
        return { stopped, r.channel == timer:response(), timer:stop() }
    """)
    assert got == [True, False, False]


def test_timer_reset(project: Project) -> None:
    got = lua(project, """
        local timer = time.timer("1h")
        local t0 = time.now()
        local was_active = timer:reset("10ms")
        local r = channel.select{ timer:response():case_receive(), time.after("500ms"):case_receive() }
        local fired_first = r.channel == timer:response()
        local first_wait = r.value:sub(t0):nanoseconds()
        -- fired and never received: reset drops the stale value and re-arms
        local again = time.timer("5ms")
        time.sleep("25ms")
        local t1 = time.now()
        local after_fire = again:reset("60ms")
        local r2 = channel.select{ again:response():case_receive(), time.after("20ms"):case_receive() }
        local r3 = channel.select{ again:response():case_receive(), time.after("2s"):case_receive() }
        return { was_active, fired_first, after_fire, r2.channel == again:response(), getmetatable(r3.value),
                 first_wait, r3.value:sub(t1):nanoseconds(), r3.channel == again:response() }
    """)
    assert got[:5] == [True, True, False, False, "wippy.time"] and got[7] is True
    # each fired at its new time, not before (1 ms for wall-clock slew)
    assert got[5] >= 10 * MS - MS, got[5]
    assert got[6] >= 60 * MS - MS, got[6]


def test_ticker_ticks_then_stops(project: Project) -> None:
    got = lua(project, """
        local t0 = time.now()
        local ticker, err = time.ticker("10ms")
        assert(err == nil)
        local ch = ticker:response()
        local ticks = {}
        for i = 1, 3 do ticks[i] = ch:receive() end
        local stopped = ticker:stop()
        local r = channel.select{ ch:case_receive(), time.after("40ms"):case_receive() }
        return { ticks[2]:after(ticks[1]), ticks[3]:after(ticks[2]), stopped,
                 r.channel == ch, ticker:stop(), ticker:channel() == ch,
                 { ticks[1]:sub(t0):nanoseconds(), ticks[2]:sub(t0):nanoseconds(), ticks[3]:sub(t0):nanoseconds() } }
    """)
    assert got[:6] == [True, True, True, False, False, True]
    # tick i comes no earlier than i periods after the start (1 ms for wall-clock slew)
    for i, at in enumerate(got[6], 1):
        assert at >= i * 10 * MS - MS, (i, got[6])


@pytest.mark.parametrize("ctor", ["timer", "ticker"])
@pytest.mark.parametrize("arg, reason", [
    ("0", "must be positive, got 0s"),
    ('"-5ms"', "must be positive, got -5ms"),
    ('"x"', 'invalid duration "x"'),
    ("true", 'expected a Duration, a duration string like "1h30m" or a number of nanoseconds, got boolean'),
])
def test_timer_and_ticker_reject_bad_durations(project: Project, ctor: str, arg: str, reason: str) -> None:
    got = lua(project, f"local t, err = time.{ctor}({arg}) return {{ t == nil, err:kind(), err:message() }}")
    assert got == [True, "Invalid", f"time.{ctor}: bad argument #1 (duration): {reason}"]


def test_timer_reset_rejects_non_positive(project: Project) -> None:
    err = lua_error(project, 'local t = time.timer("1h") t:reset(-50)')
    assert err.message == "Timer:reset: bad argument #1 (duration): must be positive, got -50ns"


def test_actor_end_cancels_every_timer(project: Project) -> None:
    project.function("t", """
        local time = require("time")
        return { main = function()
          local ticker = time.ticker("5ms")
          local timer = time.timer("1h")
          local ch = time.after("1h")
          ticker:response():receive()
          return "left them running"
        end }
    """, modules=["time"])

    async def go() -> tuple[Any, list[Any]]:
        runtime = project.runtime()
        result = await runtime.call("app:t")
        return result, live_timers(asyncio.get_running_loop())

    assert asyncio.run(go()) == ("left them running", [])
