"""Process events: EXIT from monitors, LINK_DOWN and exit propagation through links,
CANCEL, terminate and cancel deadlines, options."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Project
from tests.test_process import WAITER, Procs, run_error


@pytest.fixture
def procs(project: Project) -> Procs:
    return Procs(project)


# Non-blocking look at the events channel: the kind of a queued event, or "none".
PEEK = """
local function peek(ch)
  local r = channel.select({ ch:case_receive(), default = true })
  if r.default then return "none" end
  return r.value.kind
end
"""


def test_exit_event_for_normal_and_crashed_children(procs: Procs) -> None:
    procs.body("ok", 'return "fine", 2  -- a second result that is not a string or an error is dropped')
    procs.body("bad", 'error(errors.new({ kind = "Conflict", message = "kaboom" }))')
    procs.body("lua_error", 'error("plain lua error")')
    out = procs.run("""
        local events = process.events()
        local out = {}
        for _, name in ipairs({ "ok", "bad", "lua_error" }) do
          local pid = process.spawn_monitored("app:" .. name, "app:host")
          local ev = events:receive()
          assert(ev.kind == process.event.EXIT)
          assert(ev.from == pid, "pid.exit names the child")
          local e = ev.result.error
          out[name] = { value = ev.result.value, kind = e and e:kind(), message = e and e:message() }
        end
        return out
    """)
    assert out["ok"] == {"value": "fine"}
    assert out["bad"] == {"kind": "Conflict", "message": "kaboom"}
    assert out["lua_error"]["kind"] == "Internal" and "plain lua error" in out["lua_error"]["message"]


def test_link_down_only_with_trap_links(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run(PEEK + """
        local events = process.events()
        local opts0 = process.get_options()
        assert(process.set_options({ trap_links = true }) == true)
        local opts1 = process.get_options()
        local pid = process.spawn_linked("app:child", "app:host")
        process.send(pid, "crash")
        local ev = events:receive()
        return {
          before = opts0.trap_links, after = opts1.trap_links, kind = ev.kind, from_child = ev.from == pid,
          err_kind = ev.result.error:kind(), err_message = ev.result.error:message(), rest = peek(events),
        }
    """)
    assert out == {"before": False, "after": True, "kind": "pid.link.down", "from_child": True,
                   "err_kind": "Conflict", "err_message": "asked to crash", "rest": "none"}


def test_without_trap_a_linked_crash_terminates_the_parent(procs: Procs) -> None:
    procs.body("child", WAITER)
    err = run_error(procs, """
        local pid = process.spawn_linked("app:child", "app:host")
        process.send(pid, "crash")
        process.inbox():receive()  -- never returns: the link takes this process down
        return "survived"
    """)
    assert err.kind == "Conflict"
    assert "linked process {app:host|" in err.message and "asked to crash" in err.message


def test_link_crash_cascades_three_levels(procs: Procs) -> None:
    # driver monitors A, B and C; A -link- B -link- C; C crashes; B and A go down with it.
    procs.body("level", """
        local driver, depth = ...
        if depth < 3 then process.spawn_linked("app:level", "app:host", driver, depth + 1) end
        process.send(driver, "pid", depth)
        local msg = process.inbox():receive()
        error(errors.new({ kind = "Conflict", message = "level " .. depth .. " crashed" }))
    """)
    out = procs.run("""
        local me, events, inbox = process.pid(), process.events(), process.inbox()
        process.spawn("app:level", "app:host", me, 1)
        local pids = {}
        for _ = 1, 3 do
          local m = inbox:receive()
          pids[m:payload():data()] = m:from()
          assert(process.monitor(m:from()) == true)
        end
        process.send(pids[3], "go")
        local out = {}
        for _ = 1, 3 do
          local ev = events:receive()
          assert(ev.kind == process.event.EXIT)
          for depth, pid in pairs(pids) do
            if pid == ev.from then out[depth] = ev.result.error:kind() .. ": " .. ev.result.error:message() end
          end
        end
        out.pids = pids
        return out
    """)
    a, b, c = out["pids"]
    assert out[3] == "Conflict: level 3 crashed"
    assert out[2] == f"Conflict: linked process {c} failed: level 3 crashed"
    assert out[1] == f"Conflict: linked process {b} failed: linked process {c} failed: level 3 crashed"
    assert len({a, b, c}) == 3


def test_trap_links_stops_the_cascade(procs: Procs) -> None:
    procs.body("middle", """
        local driver = ...
        process.set_options({ trap_links = true })
        local child = process.spawn_linked("app:child", "app:host")
        process.send(child, "crash")
        local ev = process.events():receive()
        return { kind = ev.kind, from_child = ev.from == child, msg = ev.result.error:message() }
    """)
    procs.body("child", WAITER)
    out = procs.run("""
        local pid = process.spawn_linked_monitored("app:middle", "app:host")
        local ev = process.events():receive()
        return { kind = ev.kind, value = ev.result.value, err = ev.result.error }
    """)
    assert out == {"kind": "pid.exit", "value": {"kind": "pid.link.down", "from_child": True, "msg": "asked to crash"}}


def test_normal_exit_sends_no_link_down(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run(PEEK + """
        process.set_options({ trap_links = true })
        local events = process.events()
        local pid = process.spawn_linked_monitored("app:child", "app:host")
        process.send(pid, "return")
        local ev = events:receive()
        -- router.exited tells monitors and links in one go: a LINK_DOWN would be queued now
        return { first = ev.kind, value = ev.result.value, rest = peek(events) }
    """)
    assert out == {"first": "pid.exit", "value": "returned return", "rest": "none"}


def test_monitor_unmonitor_link_unlink_after_start(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run(PEEK + """
        process.set_options({ trap_links = true })
        local events = process.events()
        local out = {}
        -- monitor after start: EXIT arrives
        local a = process.spawn("app:child", "app:host")
        out.monitor = process.monitor(a)
        process.send(a, "return")
        local ev = events:receive()
        out.a = ev.kind .. " " .. tostring(ev.from == a) .. " " .. ev.result.value
        -- unmonitor: no EXIT, even for a crash
        local b = process.spawn("app:child", "app:host")
        process.monitor(b)
        out.unmonitor = process.unmonitor(b)
        process.terminate(b)  -- synchronous: an EXIT would be queued by now
        out.b = peek(events)
        -- link after start: LINK_DOWN arrives
        local c = process.spawn("app:child", "app:host")
        out.link = process.link(c)
        process.send(c, "crash")
        ev = events:receive()
        out.c = ev.kind .. " " .. tostring(ev.from == c)
        -- unlink: no LINK_DOWN
        local d = process.spawn("app:child", "app:host")
        process.link(d)
        out.unlink = process.unlink(d)
        process.terminate(d)
        out.d = peek(events)
        -- monitoring a process that is already gone: EXIT with NOT_FOUND right away
        process.monitor(d)
        ev = events:receive()
        out.gone = ev.kind .. " " .. ev.result.error:kind()
        -- linking to a process that is gone: NOT_FOUND
        local ok, err = process.link(d)
        out.link_gone = err:kind()
        return out
    """)
    assert out == {
        "monitor": True, "a": "pid.exit true returned return",
        "unmonitor": True, "b": "none",
        "link": True, "c": "pid.link.down true",
        "unlink": True, "d": "none",
        "gone": "pid.exit NotFound", "link_gone": "NotFound",
    }


def test_no_exit_after_unmonitor_even_when_event_was_queued(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run(PEEK + """
        local events = process.events()
        local a = process.spawn_monitored("app:child", "app:host")
        local b = process.spawn_monitored("app:child", "app:host")
        process.terminate(a)  -- its EXIT is queued, not yet read
        process.unmonitor(a)  -- withdraws it
        process.terminate(b)
        local ev = events:receive()
        return { from_b = ev.from == b, rest = peek(events) }
    """)
    assert out == {"from_b": True, "rest": "none"}


def test_unlinked_crash_does_not_take_a_non_trapping_process_down(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        local events = process.events()
        local pid = process.spawn_linked_monitored("app:child", "app:host")
        process.unlink(pid)
        process.send(pid, "crash")
        local ev = events:receive()
        return ev.kind .. " " .. ev.result.error:kind()
    """)
    assert out == "pid.exit Conflict"


def test_linked_parent_crash_takes_child_down(procs: Procs) -> None:
    procs.body("parent", """
        local driver = ...
        local child = process.spawn_linked("app:child", "app:host")
        process.send(driver, "child", child)
        process.inbox():receive()
        error("parent failed")
    """)
    procs.body("child", WAITER)
    out = procs.run("""
        local events, inbox = process.events(), process.inbox()
        local parent = process.spawn("app:parent", "app:host", process.pid())
        local child = inbox:receive():payload():data()
        process.monitor(child)
        process.send(parent, "go")
        local ev = events:receive()
        return { from_child = ev.from == child, message = ev.result.error:message(), parent = parent }
    """)
    assert out["from_child"] is True
    assert out["message"].startswith(f"linked process {out['parent']} failed:")
    assert "parent failed" in out["message"]


def test_terminate_is_immediate_and_exit_carries_an_error(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host")
        local ok = process.terminate(pid)
        local ev = process.events():receive()
        local _, again = process.terminate(pid)
        local _, by_name = process.terminate("no-such-name")
        return { ok = ok, kind = ev.kind, from = ev.from == pid, err = ev.result.error:kind(),
                 msg = ev.result.error:message(), again = again:kind(), by_name = by_name:kind() }
    """)
    assert out == {"ok": True, "kind": "pid.exit", "from": True, "err": "Canceled",
                   "msg": "process terminated", "again": "NotFound", "by_name": "NotFound"}


def test_terminate_by_registered_name(procs: Procs) -> None:
    procs.body("child", 'process.registry.register("victim") process.send((...), "ready") ' + WAITER)
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host", process.pid())
        process.inbox():receive()
        process.terminate("victim")
        local ev = process.events():receive()
        return ev.from == pid and ev.result.error:kind()
    """)
    assert out == "Canceled"


def test_cancel_delivers_cancel_event_with_reason(procs: Procs) -> None:
    procs.body("child", """
        local ev = process.events():receive()
        return { kind = ev.kind, reason = ev.reason, from = ev.from, deadline = ev.deadline }
    """)
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host")
        assert(process.cancel(pid, "shutting down") == true)
        local ev = process.events():receive()
        return { kind = ev.kind, value = ev.result.value, err = ev.result.error, me = process.pid() }
    """)
    assert out["kind"] == "pid.exit" and "err" not in out
    value = out["value"]
    assert value["kind"] == "pid.cancel" and value["reason"] == "shutting down" and value["from"] == out["me"]
    assert value["deadline"] == 5000  # the default deadline, in ms


def test_cancel_handled_gracefully_exits_normally(procs: Procs) -> None:
    procs.body("child", """
        local events = process.events()
        while true do
          local ev = events:receive()
          if ev.kind == process.event.CANCEL then return "cleaned up after " .. ev.reason end
        end
    """)
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host")
        process.cancel(pid, "10ms", "deploy")
        local ev = process.events():receive()
        return { value = ev.result.value, err = ev.result.error }
    """)
    assert out == {"value": "cleaned up after deploy"}


@pytest.mark.parametrize("deadline", ['"50ms"', "50", 'require("time").parse_duration("50ms")'])
def test_cancel_forces_termination_at_the_deadline(procs: Procs, deadline: str) -> None:
    procs.body("child", WAITER)  # ignores CANCEL: it only reads its inbox
    started = time.perf_counter()
    out = procs.run(f"""
        local pid = process.spawn_monitored("app:child", "app:host")
        process.cancel(pid, {deadline}, "too slow")
        local ev = process.events():receive()
        return {{ kind = ev.result.error:kind(), message = ev.result.error:message() }}
    """, modules=["time"])
    elapsed = time.perf_counter() - started
    assert out["kind"] == "Canceled"
    assert "cancel deadline" in out["message"] and "too slow" in out["message"]
    assert elapsed < 2.0  # forced at ~50ms, not the 5 s default


def test_cancel_errors(procs: Procs) -> None:
    procs.body("child", "return 1")
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host")
        process.events():receive()
        local _, gone = process.cancel(pid, "bye")
        local _, bad_reason = process.cancel(process.pid(), 10, 42)
        local _, bad_dest = process.cancel(nil)
        local _, bad_duration = process.cancel(process.pid(), "5parsecs", "reason")
        return { gone = gone:kind(), bad_reason = bad_reason:kind(), bad_dest = bad_dest:kind(),
                 bad_duration = bad_duration and bad_duration:kind() }
    """)
    assert out["gone"] == "NotFound"
    assert out["bad_reason"] == "Invalid"
    assert out["bad_dest"] == "Invalid"
    assert out["bad_duration"] == "Invalid"


def test_set_options_validation(procs: Procs) -> None:
    out = procs.run("""
        local _, e1 = process.set_options("yes")
        local _, e2 = process.set_options({ trap_links = "yes" })
        return { e1:kind(), e2:kind(), process.get_options().trap_links }
    """)
    assert out == ["Invalid", "Invalid", False]
