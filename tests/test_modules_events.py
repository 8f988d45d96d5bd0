"""The events module: subscribe, send, patterns, delivery, closing, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError
from wippy.actors.commands import events as events_commands
from wippy.actors.commands.events import event_bus, matches


def ev(project: Project, body: str, *args: Any) -> Any:
    return run_lua(project, 'local events = require("events")\nlocal time = require("time")\n' + body, *args,
                   modules=["events", "time"])


def ev_error(project: Project, body: str) -> WippyError:
    with pytest.raises(WippyError) as info:
        ev(project, body)
    return info.value


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("", "anything", True),
        ("*", "anything", True),
        ("test.*", "test.match", True),
        ("test.*", "test.a.b", True),
        ("test.*", "testing", False),
        ("test*", "testing", True),
        ("test.system", "test.system", True),
        ("test.system", "test.systems", False),
        ("a*b", "axb", False),  # only a trailing * is special
    ],
)
def test_pattern_rules(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_send_then_receive_with_data_of_every_type(project: Project) -> None:
    got = ev(project, """
        local sub = events.subscribe("orders")
        local ok, err = events.send("orders", "order.created", "/orders/1",
            {s = "x", n = 42, f = 1.5, b = true, nested = {list = {1, 2, 3}, deep = {k = "v"}}})
        local e = sub:channel():receive()
        return {ok = ok, err = err, e = e}
    """)
    assert got["ok"] is True and "err" not in got
    assert got["e"] == {"system": "orders", "kind": "order.created", "path": "/orders/1",
                        "data": {"s": "x", "n": 42, "f": 1.5, "b": True,
                                 "nested": {"list": [1, 2, 3], "deep": {"k": "v"}}}}


def test_an_event_without_data_has_no_data_field(project: Project) -> None:
    assert ev(project, """
        local sub = events.subscribe("sys")
        events.send("sys", "heartbeat", "/health")
        local e = sub:channel():receive()
        return {has_data = e.data ~= nil, kind = e.kind}
    """) == {"has_data": False, "kind": "heartbeat"}


def test_delivery_happens_after_send_returns_and_in_order(project: Project) -> None:
    got = ev(project, """
        local sub = events.subscribe("seq")
        local ch = sub:channel()
        for i = 1, 5 do events.send("seq", "k", "/p" .. i) end
        local _, ready = ch:try_receive()  -- nothing yet: delivery is asynchronous
        local paths = {}
        for i = 1, 5 do paths[i] = ch:receive().path end
        return {ready = ready, paths = paths}
    """)
    assert got == {"ready": False, "paths": ["/p1", "/p2", "/p3", "/p4", "/p5"]}


def test_system_and_kind_filters(project: Project) -> None:
    got = ev(project, """
        local subs = {
          all = events.subscribe("*"),
          prefix = events.subscribe("test.*"),
          exact = events.subscribe("test.one", "created"),
          any_kind = events.subscribe("test.one", "*"),
          kind_prefix = events.subscribe("*", "user.*"),
        }
        local barrier = events.subscribe("barrier")
        events.send("test.one", "created", "/1")
        events.send("test.one", "deleted", "/2")
        events.send("other", "user.login", "/3")
        events.send("testing", "x", "/4")
        events.send("barrier", "b", "/b")
        barrier:channel():receive()  -- delivered in order: everything before it has arrived
        local out = {}
        for name, sub in pairs(subs) do
          local paths = {}
          while true do
            local v, ok = sub:channel():try_receive()
            if not ok then break end
            if v.path ~= "/b" then paths[#paths + 1] = v.path end
          end
          out[name] = paths
        end
        return out
    """)
    assert got == {"all": ["/1", "/2", "/3", "/4"], "prefix": ["/1", "/2"], "exact": ["/1"],
                   "any_kind": ["/1", "/2"], "kind_prefix": ["/3"]}


def test_every_matching_subscriber_gets_the_event_including_other_processes(project: Project) -> None:
    project.function("listener", """
        local events = require("events")
        return { main = function(parent)
          local sub = events.subscribe("shared")
          process.send(parent, "ready", true)
          local e = sub:channel():receive()
          process.send(parent, "got", e.path)
        end }
    """, kind="process.lua", modules=["events"])
    project.entries.append("  - name: host\n    kind: process.host\n    lifecycle: {auto_start: true}")
    project.function("t", """
        local events = require("events")
        return { main = function()
          local mine = events.subscribe("shared")
          local inbox = process.inbox()
          for i = 1, 2 do process.spawn("app:listener", "app:host", process.pid()) end
          for i = 1, 2 do inbox:receive() end  -- both subscribed
          events.send("shared", "k", "/x")
          local paths = { mine:channel():receive().path }
          for i = 1, 2 do paths[#paths + 1] = inbox:receive():payload():data() end
          return paths
        end }
    """, modules=["events"])
    project.write()

    async def main() -> Any:
        async with project.runtime() as rt:
            return await rt.call("app:t")

    assert asyncio.run(main()) == ["/x", "/x", "/x"]


def test_subscription_object(project: Project) -> None:
    got = ev(project, """
        local sub = events.subscribe("x")
        local ch1, ch2 = sub:channel(), sub:channel()
        local closed1, closed2 = sub:close(), sub:close()
        local v, ok = ch1:receive()
        local bad = pcall(sub.channel, {})
        return {same = rawequal(ch1, ch2), closed1 = closed1, closed2 = closed2, v = v, ok = ok,
                str = tostring(sub), type = type(sub), bad = bad}
    """)
    assert got == {"same": True, "closed1": True, "closed2": True, "ok": False,
                   "str": "events.Subscription{}", "type": "userdata", "bad": False}


def test_a_closed_subscription_receives_nothing_more(project: Project) -> None:
    assert ev(project, """
        local keep = events.subscribe("c")
        local gone = events.subscribe("c")
        gone:close()
        events.send("c", "k", "/after")
        local e = keep:channel():receive()
        local _, ok = gone:channel():try_receive()
        return {e.path, ok}
    """) == ["/after", False]


def test_subscriptions_end_with_their_owner(project: Project) -> None:
    project.function("sub_and_return", """
        local events = require("events")
        return { main = function() events.subscribe("a"); events.subscribe("b", "k"); return true end }
    """, modules=["events"])
    project.write()

    async def main() -> tuple[Any, int]:
        rt = project.runtime()
        result = await rt.call("app:sub_and_return")
        return result, len(event_bus(rt.kernel).subscriptions)

    assert asyncio.run(main()) == (True, 0)


def test_python_code_publishes_to_lua_subscribers(project: Project) -> None:
    project.function("wait_event", """
        local events = require("events")
        return { main = function()
          local sub = events.subscribe("py.*")
          local ch = sub:channel()
          local e = ch:receive()
          return e
        end }
    """, modules=["events"])
    project.write()

    async def main() -> Any:
        rt = project.runtime()
        call = asyncio.ensure_future(rt.call("app:wait_event"))
        bus = event_bus(rt.kernel)
        while not bus.subscriptions:
            await asyncio.sleep(0)
        bus.publish("py.source", "made", "/here", {"n": 1})
        return await call

    assert asyncio.run(main()) == {"system": "py.source", "kind": "made", "path": "/here", "data": {"n": 1}}


def test_an_unread_subscription_drops_events_past_its_limit(project: Project, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(events_commands, "MAX_QUEUED", 3)
    got = ev(project, """
        local slow = events.subscribe("flood")
        local fast = events.subscribe("flood.done")
        for i = 1, 6 do events.send("flood", "k", "/" .. i) end
        events.send("flood.done", "k", "/done")
        fast:channel():receive()  -- every event was handled by now
        local out, ch = {}, slow:channel()
        while true do
          local v, ok = ch:try_receive()
          if not ok then break end
          out[#out + 1] = v.path
        end
        return out
    """)
    assert got == ["/1", "/2", "/3"]
    assert "not being read" in caplog.text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('events.subscribe("")', "system pattern is required"),
        ('events.send("", "k", "/p")', "system is required"),
        ('events.send("s", "", "/p")', "kind is required"),
        ('events.send("s", "k", "")', "path is required"),
        ('events.send("s", "k", "/p", {f = function() end})', "cannot cross"),
    ],
)
def test_errors_are_returned_invalid(project: Project, call: str, message: str) -> None:
    got = ev(project, f"local v, err = {call}\nreturn {{v = v, kind = err:kind(), msg = tostring(err), "
                      "retryable = err:retryable()}")
    assert got["kind"] == "Invalid" and message in got["msg"] and got["retryable"] is False and "v" not in got


@pytest.mark.parametrize("call", ['events.subscribe({})', 'events.subscribe("s", {})', 'events.send("s", true, "/p")',
                                  'events.send(nil, "k", "/p")'])
def test_arguments_of_the_wrong_type_raise(project: Project, call: str) -> None:
    err = ev_error(project, f"return {call}")
    assert err.kind == "Invalid" and "string expected" in err.message


def test_numbers_are_taken_as_strings(project: Project) -> None:
    assert ev(project, """
        local sub = events.subscribe(42)
        events.send(42, 7, 1)
        local e = sub:channel():receive()
        return {e.system, e.kind, e.path}
    """) == ["42", "7", "1"]
