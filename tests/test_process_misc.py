"""The spawner builder, process.upgrade, channels and coroutines inside processes, misuse
errors, and the Lua test suite in tests/lua_suite run through ``wippy test``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.test_process import TIMEOUT, WAITER, Procs, run_error
from wippy import Runtime, load_project


@pytest.fixture
def procs(project: Project) -> Procs:
    return Procs(project)


LUA_SUITE = Path(__file__).parent / "lua_suite"


# ------------------------------------------------------------------------------------------
# Spawner builder
# ------------------------------------------------------------------------------------------
def test_spawner_is_immutable_and_reusable(procs: Procs) -> None:
    procs.body("child", """
        local ctx = require("ctx")
        local a = ctx.get("a")
        local b = ctx.get("b")
        local msgs = {}
        local inbox = process.inbox()
        for i = 1, (...) do msgs[i] = inbox:receive():topic() end
        return { a = a, b = b, msgs = msgs }
    """, modules=["ctx"])
    out = procs.run("""
        local base = process.with_context({ a = 1 })
        local with_b = base:with_context({ b = 2 })
        local with_msg = base:with_message("first")
        assert(with_b ~= base and with_msg ~= base)
        local r1 = base:exec("app:child", "app:host", 0)       -- base unchanged by derivations
        local r2 = base:exec("app:child", "app:host", 0)       -- reused: an independent child
        local r3 = with_b:exec("app:child", "app:host", 0)
        local r4 = with_msg:exec("app:child", "app:host", 1)
        local r5 = with_msg:with_message("second"):exec("app:child", "app:host", 2)
        local r6 = with_msg:exec("app:child", "app:host", 1)  -- "second" did not leak back
        return { r1, r2, r3, r4, r5, r6 }
    """)
    assert out == [
        {"a": 1, "msgs": {}},  # an empty Lua table comes back as {}
        {"a": 1, "msgs": {}},
        {"a": 1, "b": 2, "msgs": {}},
        {"a": 1, "msgs": ["first"]},
        {"a": 1, "msgs": ["first", "second"]},
        {"a": 1, "msgs": ["first"]},
    ]


def test_with_context_is_inherited_by_grandchildren(procs: Procs) -> None:
    procs.body("child", """
        local ctx = require("ctx")
        local depth = ...
        local mine = ctx.get("request_id")
        if depth == 1 then
          local below = process.exec("app:child", "app:host", 2)
          local overridden = process.with_context({ request_id = "inner" }):exec("app:child", "app:host", 2)
          return { mine = mine, below = below, overridden = overridden }
        end
        return mine
    """, modules=["ctx"])
    out = procs.run("""
        local s = process.with_context({ request_id = "req-1" })
        local pid = s:spawn_monitored("app:child", "app:host", 1)
        local ev = process.events():receive()
        return ev.result.value
    """)
    assert out == {"mine": "req-1", "below": "req-1", "overridden": "inner"}


def test_spawner_spawn_variants(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        process.set_options({ trap_links = true })
        local events = process.events()
        local s = process.with_context({ x = 1 }):with_options({ opt = true })
        local got = {}
        for _, method in ipairs({ "spawn", "spawn_monitored", "spawn_linked", "spawn_linked_monitored" }) do
          local pid, err = s[method](s, "app:child", "app:host")
          assert(pid, tostring(err))
          process.monitor(pid)  -- so every variant ends with at least one EXIT
          process.send(pid, "crash")
          local kinds, want = {}, method:find("linked") and 2 or 1
          repeat
            local ev = events:receive()
            kinds[#kinds + 1] = ev.kind
          until #kinds == want
          table.sort(kinds)
          got[method] = table.concat(kinds, "+")
        end
        return got
    """)
    # a second monitor on the same process is the same monitor: one EXIT per process
    assert out == {"spawn": "pid.exit", "spawn_monitored": "pid.exit",
                   "spawn_linked": "pid.exit+pid.link.down", "spawn_linked_monitored": "pid.exit+pid.link.down"}


def test_with_options_and_with_name(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        local out = {}
        local base = process.with_options({ network = "app:none" })
        local named = base:with_name("worker-1")
        local pid = named:spawn("app:child", "app:host")
        out.lookup = process.registry.lookup("worker-1") == pid
        local pid2, err = named:spawn("app:child", "app:host")
        out.dup = err:kind() .. ": " .. err:message()
        out.dup_pid = pid2
        local other = base:spawn("app:child", "app:host")  -- base has no name
        out.other_named = process.registry.lookup("worker-1") == other
        process.send("worker-1", "echo", "via name")
        out.echo = process.inbox():receive():payload():data()
        local ok, e = pcall(base.with_options, base, "no")
        out.bad_opts = e:kind()
        ok, e = pcall(base.with_name, base, "")
        out.bad_name = e:kind()
        ok, e = pcall(base.with_context, base, 5)
        out.bad_ctx = e:kind()
        ok, e = pcall(base.with_context, base, { f = print })
        out.bad_ctx_value = e:message()
        ok, e = pcall(process.with_context({}).spawn, {}, "app:child", "app:host")
        out.not_spawner = e:kind()
        process.terminate(other)
        return out
    """)
    assert out["lookup"] is True and out["other_named"] is False
    assert out["dup"].startswith("AlreadyExists") and "worker-1" in out["dup"]
    assert "dup_pid" not in out
    assert out["echo"] == "via name"
    assert out["bad_opts"] == out["bad_name"] == out["bad_ctx"] == out["not_spawner"] == "Invalid"
    assert "a function at context.f" in out["bad_ctx_value"]


def test_with_message_is_delivered_before_anything_else(procs: Procs) -> None:
    procs.body("child", """
        local inbox = process.inbox()
        local got = {}
        for i = 1, 4 do
          local m = inbox:receive()
          got[i] = { topic = m:topic(), data = m:payload():data(), from = m:from() }
        end
        return got
    """)
    out = procs.run("""
        local me = process.pid()
        local s = process.with_message("one", 1):with_message("two", 2, 3):with_message("three")
        local pid = s:spawn_monitored("app:child", "app:host")
        process.send(pid, "later", 4)
        local ev = process.events():receive()
        return { got = ev.result.value, me = me }
    """)
    me = out["me"]
    assert out["got"] == [
        {"topic": "one", "data": 1, "from": me},
        {"topic": "two", "data": [2, 3], "from": me},
        {"topic": "three", "from": me},
        {"topic": "later", "data": 4, "from": me},
    ]


@pytest.fixture
def sender_check(procs: Procs) -> Procs:
    procs.body("sender_check", "return process.inbox():receive():from()")
    return procs


def test_with_message_sender_is_the_spawner_for_exec(sender_check: Procs) -> None:
    out = sender_check.run("""
        return { from = process.with_message("hello"):exec("app:sender_check", "app:host"), me = process.pid() }
    """)
    assert out["from"] == out["me"]


def test_exec_child_dies_with_its_caller(procs: Procs) -> None:
    procs.body("slow", 'process.registry.register("slow") process.send((...), "started") return process.inbox():receive()')
    procs.body("caller", "return process.exec('app:slow', 'app:host', (...))")
    out = procs.run("""
        local events, inbox = process.events(), process.inbox()
        local caller = process.spawn_monitored("app:caller", "app:host", process.pid())
        local started = inbox:receive()
        local slow = started:from()
        process.monitor(slow)
        process.terminate(caller)
        local seen = {}
        for _ = 1, 2 do
          local ev = events:receive()
          seen[ev.from == caller and "caller" or "slow"] = ev.result.error:kind()
        end
        return seen
    """)
    assert out == {"caller": "Canceled", "slow": "Canceled"}


# ------------------------------------------------------------------------------------------
# process.upgrade
# ------------------------------------------------------------------------------------------
def test_upgrade_keeps_pid_inbox_and_links(procs: Procs) -> None:
    procs.body("v1", """
        local driver = ...
        process.send(driver, "v1 up", process.pid())
        local msg = process.inbox():receive()  -- "upgrade"; "after" is already queued behind it
        process.upgrade("app:v2", driver, { count = 41 })
        error("not reached")
    """)
    procs.body("v2", """
        local driver, state = ...
        local msg = process.inbox():receive()
        process.send(driver, "v2 up", { pid = process.pid(), got = msg:topic(), count = state.count + 1 })
        process.inbox():receive()
        error(errors.new({ kind = "Conflict", message = "v2 crashed" }))
    """)
    out = procs.run("""
        process.set_options({ trap_links = true })
        local inbox, events = process.inbox(), process.events()
        local pid = process.spawn_linked("app:v1", "app:host", process.pid())
        assert(inbox:receive():topic() == "v1 up")
        process.send(pid, "upgrade")
        process.send(pid, "after")  -- sent before the upgrade happens
        local up = inbox:receive()
        local d = up:payload():data()
        process.send(pid, "crash")
        local ev = events:receive()
        return { same_pid = d.pid == pid and up:from() == pid, got = d.got, count = d.count,
                 link = ev.kind, link_from = ev.from == pid, msg = ev.result.error:message() }
    """)
    assert out == {"same_pid": True, "got": "after", "count": 42,
                   "link": "pid.link.down", "link_from": True, "msg": "v2 crashed"}


def test_upgrade_nil_reruns_the_same_definition(procs: Procs) -> None:
    procs.body("counter", """
        local n = ...
        if n < 3 then process.upgrade(nil, n + 1) end
        return { n = n, pid = process.pid() }
    """)
    out = procs.run("""
        local pid = process.spawn_monitored("app:counter", "app:host", 0)
        local ev = process.events():receive()
        return { value = ev.result.value, pid = pid }
    """)
    assert out["value"] == {"n": 3, "pid": out["pid"]}


def test_upgrade_errors(procs: Procs) -> None:
    procs.function("fn", "return 1")
    out = procs.run("""
        local _, e1 = pcall(process.upgrade, "app:nope")
        local _, e2 = pcall(process.upgrade, "app:fn")
        local _, e3 = pcall(process.upgrade, 42)
        return { e1:kind(), e2:kind(), e3:kind() }
    """)
    assert out == ["NotFound", "Invalid", "Invalid"]


def test_upgrade_to_broken_code_crashes_the_process(procs: Procs) -> None:
    procs.body("v1", 'process.upgrade("app:broken")')
    procs.body("broken", 'error("v2 does not work")')
    out = procs.run("""
        local pid = process.spawn_monitored("app:v1", "app:host")
        local ev = process.events():receive()
        return ev.result.error:message()
    """)
    assert "v2 does not work" in out


# ------------------------------------------------------------------------------------------
# Channels and coroutines inside processes
# ------------------------------------------------------------------------------------------
def test_channels_unbuffered_buffered_and_select(procs: Procs) -> None:
    out = procs.run("""
        local out = {}
        -- unbuffered: a send waits for a receiver
        local ch = channel.new()
        local order = {}
        coroutine.spawn(function()
          order[#order + 1] = "sending"
          ch:send("hello")
          order[#order + 1] = "sent"
        end)
        order[#order + 1] = "receiving"
        local v, ok = ch:receive()
        order[#order + 1] = "got " .. v
        out.unbuffered = order
        -- buffered: sends up to the capacity do not block
        local b = channel.new(2)
        b:send(1) b:send(2)
        local r = channel.select({ b:case_send(3), default = true })
        out.full = r.default == true
        out.b = { (b:receive()), (b:receive()) }
        -- select: receive case, send case, default
        local c1, c2 = channel.new(1), channel.new(1)
        c2:send("x")
        r = channel.select({ c1:case_receive(), c2:case_receive() })
        out.sel_recv = { r.channel == c2, r.value, r.ok }
        r = channel.select({ c1:case_send("y") })
        out.sel_send = r.channel == c1 and c1:receive()
        r = channel.select({ c1:case_receive(), default = true })
        out.sel_default = r.default
        -- closed channel: receive gives nil, false
        c1:close()
        local cv, cok = c1:receive()
        out.closed = { cv == nil, cok }
        r = channel.select({ c1:case_receive() })
        out.sel_closed = { r.channel == c1, r.value == nil, r.ok }
        return out
    """)
    assert out == {
        "unbuffered": out["unbuffered"],
        "full": True, "b": [1, 2],
        "sel_recv": [True, "x", True], "sel_send": "y", "sel_default": True,
        "closed": [True, False], "sel_closed": [True, True, False],
    }
    order = out["unbuffered"]
    assert order[0] == "receiving" and "got hello" in order
    assert order.index("sending") < order.index("got hello")


def test_coroutines_block_independently(procs: Procs) -> None:
    procs.body("child", 'local parent = ... process.send(parent, "ping", 1) process.send(parent, "ping", 2)')
    procs.function("double", "return (...) * 2")
    out = procs.run("""
        local funcs, time = require("funcs"), require("time")
        local results = channel.new(10)
        -- an inbox receive in a spawned coroutine
        coroutine.spawn(function()
          local m = process.inbox():receive()
          results:send("inbox " .. m:payload():data())
        end)
        -- a function call (future) in another
        coroutine.spawn(function()
          local v = funcs.call("app:double", 21)
          results:send("call " .. v)
        end)
        coroutine.spawn(function()
          local fut = funcs.async("app:double", 5)
          local p = fut:response():receive()
          results:send("future " .. p:data())
        end)
        -- timers: time.after and time.sleep in coroutines
        coroutine.spawn(function()
          local t = time.after("1ms"):receive()
          results:send("after " .. type(t))
        end)
        coroutine.spawn(function()
          time.sleep("1ms")
          results:send("slept")
        end)
        -- the main coroutine also blocks, on an unbuffered channel fed by another coroutine
        local relay = channel.new()
        coroutine.spawn(function() relay:send("relay") end)
        local got = { (relay:receive()) }
        process.spawn("app:child", "app:host", process.pid())
        for _ = 1, 5 do got[#got + 1] = (results:receive()) end
        got[#got + 1] = "main inbox " .. process.inbox():receive():payload():data()
        table.sort(got)
        return got
    """, modules=["funcs", "time"])
    assert out == ["after userdata", "call 42", "future 10", "inbox 1", "main inbox 2", "relay", "slept"]


def test_a_failing_coroutine_takes_the_process_down(procs: Procs) -> None:
    procs.body("child", """
        coroutine.spawn(function() error(errors.new({ kind = "Conflict", message = "coroutine broke" })) end)
        process.inbox():receive()
    """)
    out = procs.run("""
        process.spawn_monitored("app:child", "app:host")
        local ev = process.events():receive()
        return ev.result.error:kind() .. ": " .. ev.result.error:message()
    """)
    assert out == "Conflict: coroutine broke"


def test_one_select_over_inbox_events_listener_and_future(procs: Procs) -> None:
    procs.body("child", 'local parent, topic = ... process.send(parent, topic, topic)')
    procs.body("quit", "return 'quit'")
    procs.function("slow_value", "return 'future value'")
    out = procs.run("""
        local funcs, time = require("funcs"), require("time")
        local me = process.pid()
        local inbox, events, topic = process.inbox(), process.events(), process.listen("special")
        local timer = time.after("5ms")
        local fut = funcs.async("app:slow_value")
        process.spawn("app:child", "app:host", me, "plain")
        process.spawn("app:child", "app:host", me, "special")
        process.spawn_monitored("app:quit", "app:host")
        local seen, pending = {}, 5
        local future_ch = fut:response()
        while pending > 0 do
          local r = channel.select({
            inbox:case_receive(), events:case_receive(), topic:case_receive(), future_ch:case_receive(),
            timer:case_receive(),
          })
          assert(r.ok)
          if r.channel == inbox then seen[#seen + 1] = "inbox:" .. r.value:topic()
          elseif r.channel == events then seen[#seen + 1] = "events:" .. r.value.kind
          elseif r.channel == topic then seen[#seen + 1] = "listen:" .. r.value
          elseif r.channel == future_ch then seen[#seen + 1] = "future:" .. r.value:data()
          elseif r.channel == timer then seen[#seen + 1] = "timer"
          end
          pending = pending - 1
        end
        table.sort(seen)
        return seen
    """, modules=["funcs", "time"])
    assert out == ["events:pid.exit", "future:future value", "inbox:plain", "listen:special", "timer"]


# ------------------------------------------------------------------------------------------
# Misuse errors
# ------------------------------------------------------------------------------------------
def test_spawn_misuse_errors(procs: Procs) -> None:
    procs.function("fn", "return 1")
    procs.project.entries.append("  - name: idle_host\n    kind: process.host")
    procs.project.entries.append("  - name: settings\n    kind: registry.entry\n    value: 1")
    out = procs.run("""
        local out = {}
        local function e(pid, err) return { pid = pid, kind = err:kind(), message = err:message() } end
        out.fn = e(process.spawn("app:fn", "app:host"))
        out.unknown_entry = e(process.spawn("app:nope", "app:host"))
        out.unknown_host = e(process.spawn("app:driver", "app:no_host"))
        out.not_started = e(process.spawn("app:driver", "app:idle_host"))
        out.not_a_host = e(process.spawn("app:driver", "app:settings"))
        out.bad_id = e(process.spawn(nil, "app:host"))
        out.bad_arg = e(process.spawn("app:driver", "app:host", function() end))
        out.exec_fn = e(process.exec("app:fn", "app:host"))
        return out
    """)
    assert out["fn"]["kind"] == "Invalid" and "app:fn is a function.lua entry" in out["fn"]["message"]
    assert out["unknown_entry"]["kind"] == "NotFound" and "app:nope" in out["unknown_entry"]["message"]
    assert out["unknown_host"]["kind"] == "NotFound" and "app:no_host" in out["unknown_host"]["message"]
    assert out["not_started"]["kind"] == "Unavailable" and "not started" in out["not_started"]["message"]
    assert out["not_a_host"]["kind"] == "Invalid" and "not a host" in out["not_a_host"]["message"]
    assert out["bad_id"]["kind"] == "Invalid"
    assert out["bad_arg"]["kind"] == "Invalid" and "a function at argument #1" in out["bad_arg"]["message"]
    assert out["exec_fn"]["kind"] == "Invalid"
    assert all("pid" not in v for v in out.values())


def test_a_function_call_is_a_process_frame(procs: Procs) -> None:
    """Upstream gives every call a PID: it can spawn_monitored, monitor, link, receive on
    its inbox and events, and its own monitors and links fire when it returns."""
    procs.function("f", """
        local out, events = {}, process.events()
        local child = process.spawn_monitored("app:driver", "app:host", process.pid())
        out.hello = process.inbox():receive():payload():data()
        local ev = events:receive()
        out.exit = ev.kind == process.event.EXIT and ev.from == child and ev.result.value
        return out
    """)
    procs.body("driver", 'process.send((...), "hi", "from child") return 7')
    procs.project.write()

    async def main() -> object:
        async with Runtime(load_project(procs.project.root)) as rt:
            return await rt.call("app:f", timeout=TIMEOUT)

    out = asyncio.run(main())
    assert out == {"hello": "from child", "exit": 7}


def test_a_frames_monitors_and_links_hear_when_it_returns(procs: Procs) -> None:
    procs.function("frame", """
        local watcher, fail = ...
        process.send(watcher, "pid", process.pid())
        process.inbox():receive()  -- wait until watched
        if fail then error("frame failed") end
        return "frame done"
    """)
    procs.body("linked", "process.inbox():receive()")
    out = procs.run("""
        local funcs = require("funcs")
        process.set_options({ trap_links = true })
        local events, inbox, out = process.events(), process.inbox(), {}
        for _, fail in ipairs({ false, true }) do
          local f = funcs.async("app:frame", process.pid(), fail)
          local frame = inbox:receive():payload():data()
          process.monitor(frame)
          process.link(frame)
          process.send(frame, "go")
          local seen = {}
          for _ = 1, fail and 2 or 1 do
            local ev = events:receive()
            assert(ev.from == frame)
            seen[#seen + 1] = ev.kind .. ":" .. tostring(ev.result.value or ev.result.error:kind())
          end
          out[#out + 1] = table.concat(seen, " ")
          f:response():receive()
          local ok, err = process.send(frame, "late")
          out[#out + 1] = err:kind()
        end
        return out
    """, modules=["funcs"])
    assert out == ["pid.exit:frame done", "NotFound", "pid.exit:Internal pid.link.down:Internal", "NotFound"]


def test_select_misuse(procs: Procs) -> None:
    out = procs.run("""
        local out = {}
        local ch = channel.new()
        local _, e = pcall(channel.select, { ch })
        out.bad_case = e:kind() .. ": " .. e:message()
        _, e = pcall(channel.select, {})
        out.empty = e:message()
        _, e = pcall(channel.select, "x")
        out.not_table = e:kind()
        _, e = pcall(channel.new, -1)
        out.bad_size = e:kind()
        ch:close()
        _, e = pcall(ch.send, ch, 1)
        out.send_closed = e:kind() .. ": " .. e:message()
        return out
    """)
    assert out["bad_case"] == ("Invalid: channel.select: case #1 is not a channel case "
                               "(use ch:case_receive() or ch:case_send(v))")
    assert "block forever" in out["empty"]
    assert out["not_table"] == "Invalid" and out["bad_size"] == "Invalid"
    assert out["send_closed"] == "Invalid: send on closed channel"


def test_driver_error_reaches_the_caller(procs: Procs) -> None:
    err = run_error(procs, 'error(errors.new({ kind = "Conflict", message = "driver failed" }))')
    assert err.kind == "Conflict" and err.message == "driver failed"


# ------------------------------------------------------------------------------------------
# The Lua suite, through `wippy test`
# ------------------------------------------------------------------------------------------
def test_lua_suite_runs_under_wippy_test() -> None:
    entries = yaml.safe_load((LUA_SUITE / "_index.yaml").read_text())["entries"]
    tests = sum(1 for e in entries if (e.get("meta") or {}).get("type") == "test")
    assert tests >= 5
    proc = subprocess.run(
        [sys.executable, "-m", "wippy.cli", "test", str(LUA_SUITE)],
        capture_output=True, text=True, timeout=60,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines[-1] == f"{tests} passed, 0 failed", proc.stdout + proc.stderr


def test_lua_suite_reports_a_failure(tmp_path: Path) -> None:
    (tmp_path / "_index.yaml").write_text(
        "namespace: t\nentries:\n"
        "  - name: host\n    kind: process.host\n    lifecycle:\n      auto_start: true\n"
        "  - name: crash\n    kind: process.lua\n    source: file://crash.lua\n    method: main\n"
        "  - name: fails\n    kind: function.lua\n    source: file://fails.lua\n    method: main\n"
        "    meta:\n      type: test\n"
    )
    (tmp_path / "crash.lua").write_text('return { main = function() error("child crashed") end }\n')
    (tmp_path / "fails.lua").write_text(
        'return { main = function() local v, err = process.exec("t:crash", "t:host") assert(err == nil, tostring(err)) return true end }\n'
    )
    proc = subprocess.run([sys.executable, "-m", "wippy.cli", "test", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"
    assert "child crashed" in proc.stdout


def test_upgrade_gives_listened_topics_back_to_the_new_code(procs: Procs) -> None:
    # The new code cannot reach the old code's listener channels: their topics (and any
    # messages buffered in them) go back to the inbox, and the new code may listen again.
    procs.body("v1", """
        local driver = ...
        local ch = process.listen("cfg")
        process.send(driver, "listening")
        process.inbox():receive()  -- "upgrade"; "cfg" 1 is buffered in the listener by now
        process.upgrade("app:v2", driver)
    """)
    procs.body("v2", """
        local driver = ...
        local inbox = process.inbox()
        local first = inbox:receive()  -- the message buffered in v1's listener
        local ch = process.listen("cfg")  -- not "already listening"
        process.send(driver, "v2 listening")
        local second = ch:receive()
        return { first = first:topic() .. " " .. first:payload():data(), second = second }
    """)
    out = procs.run("""
        local inbox, events = process.inbox(), process.events()
        local pid = process.spawn_monitored("app:v1", "app:host", process.pid())
        assert(inbox:receive():topic() == "listening")
        process.send(pid, "cfg", 1)
        process.send(pid, "upgrade")
        assert(inbox:receive():topic() == "v2 listening")
        process.send(pid, "cfg", 2)
        local ev = events:receive()
        return ev.result.value or tostring(ev.result.error)
    """)
    assert out == {"first": "cfg 1", "second": 2}
