"""The process API: PIDs, spawning, exec, messaging, inbox/listen, the name registry.

Each test runs a *driver* process (``app:driver``) through ``process.exec`` from a function
entry, so the driver's return value (or error) is what the test checks. The helpers here
are shared by the other ``test_process*`` files.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Project
from wippy import Runtime, WippyError, load_project

HOST = "app:host"
TIMEOUT = 5.0


class Procs:
    """A project with a started ``process.host`` (``app:host``) and process entries."""

    def __init__(self, project: Project) -> None:
        self.project = project
        # A short stop_timeout: a test that leaves a process blocked does not stall shutdown.
        project.entries.append(
            "  - name: host\n    kind: process.host\n    lifecycle:\n      auto_start: true\n      stop_timeout: 1s"
        )

    def process(self, name: str, source: str, *, modules: list[str] | None = None) -> None:
        """A ``process.lua`` entry whose file is ``source`` (a chunk returning {main = ...})."""
        self.project.function(name, source, kind="process.lua", modules=modules)

    def body(self, name: str, body: str, *, modules: list[str] | None = None) -> None:
        """A ``process.lua`` entry whose main(...) is ``body``."""
        self.process(name, _main(body), modules=modules)

    def function(self, name: str, body: str, *, modules: list[str] | None = None) -> None:
        self.project.function(name, _main(body), modules=modules)

    def run(self, driver: str, *args: Any, modules: list[str] | None = None, timeout: float = TIMEOUT) -> Any:
        """Run ``driver`` as the body of process ``app:driver`` and return its result."""
        return asyncio.run(self.arun(driver, *args, modules=modules, timeout=timeout))

    async def arun(self, driver: str, *args: Any, modules: list[str] | None = None,
                   timeout: float = TIMEOUT, then: Callable[[Runtime], Awaitable[Any]] | None = None) -> Any:
        self.body("driver", driver, modules=modules)
        self.function("run", 'return process.exec("app:driver", "app:host", ...)')
        self.project.write()
        async with Runtime(load_project(self.project.root)) as rt:
            result = await rt.call("app:run", *args, timeout=timeout)
            if then is not None:
                await then(rt)
            return result


def _main(body: str) -> str:
    return f"local function main(...)\n{textwrap.dedent(body)}\nend\nreturn {{ main = main }}\n"


@pytest.fixture
def procs(project: Project) -> Procs:
    return Procs(project)


def run_error(procs: Procs, driver: str, **kwargs: Any) -> WippyError:
    with pytest.raises(WippyError) as info:
        procs.run(driver, **kwargs)
    return info.value


# A child that reports its arguments to the PID given first, then exits with them.
REPORTER = """
local parent = ...
local args = table.pack(select(2, ...))
process.send(parent, "args", args)
return args
"""

# A child that waits for one inbox message, then acts on it: "crash", "return", "echo".
WAITER = """
local msg = process.inbox():receive()
local what = msg:topic()
if what == "crash" then error(errors.new({ kind = "Conflict", message = "asked to crash" })) end
if what == "echo" then process.send(msg:from(), "echo", msg:payload():data()) end
return "returned " .. what
"""

PID_RE = re.compile(r"^\{app:host\|[^|{}]+\}$")


# ------------------------------------------------------------------------------------------
# PIDs and identity
# ------------------------------------------------------------------------------------------
def test_pid_is_the_host_pid_and_id_the_entry_id(procs: Procs) -> None:
    procs.body("child", "return process.pid()")
    out = procs.run("""
        local child_pid, err = process.exec("app:child", "app:host")
        assert(err == nil, tostring(err))
        return { pid = process.pid(), id = process.id(), child = child_pid }
    """)
    assert PID_RE.match(out["pid"]), out
    assert PID_RE.match(out["child"]), out
    assert out["pid"] != out["child"]
    assert out["id"] == "app:driver"  # upstream: process.id() is the entry ID


def test_a_function_call_has_its_own_frame_pid(procs: Procs) -> None:
    procs.function("f", "return { pid = process.pid(), again = process.pid(), id = process.id() }")
    procs.project.write()

    async def main() -> Any:
        async with Runtime(load_project(procs.project.root)) as rt:
            return await rt.call("app:f", timeout=TIMEOUT)

    out = asyncio.run(main())
    assert out["pid"] == out["again"], out  # one PID per call, stable
    assert out["pid"].startswith("{app:f#fn|") and out["id"] == "app:f"


# ------------------------------------------------------------------------------------------
# Spawning
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["spawn", "spawn_monitored", "spawn_linked", "spawn_linked_monitored"])
def test_spawn_variants_pass_zero_one_and_several_arguments(procs: Procs, variant: str) -> None:
    procs.body("child", REPORTER)
    out = procs.run(f"""
        local me = process.pid()
        local inbox = process.inbox()
        local got = {{}}
        for i, extra in ipairs({{ {{}}, {{ "one" }}, {{ 1, "two", {{ three = 3 }}, true }} }}) do
          local pid, err = process.{variant}("app:child", "app:host", me, table.unpack(extra))
          assert(pid, tostring(err))
          local msg = inbox:receive()
          assert(msg:from() == pid, "message from the child")
          got[i] = msg:payload():data()
        end
        return got
    """)
    assert out == [{"n": 0}, {1: "one", "n": 1}, {1: 1, 2: "two", 3: {"three": 3}, 4: True, "n": 4}]


def test_spawn_monitored_and_linked_relationships(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        process.set_options({ trap_links = true })
        local events = process.events()
        local m = process.spawn_monitored("app:child", "app:host")
        local l = process.spawn_linked("app:child", "app:host")
        local lm = process.spawn_linked_monitored("app:child", "app:host")
        local got = {}
        for _, pid in ipairs({ m, l, lm }) do
          process.send(pid, "crash")
          local seen = {}
          -- spawn_monitored: EXIT only; spawn_linked: LINK_DOWN only; both: EXIT then LINK_DOWN
          local want = pid == lm and 2 or 1
          for _ = 1, want do
            local ev = events:receive()
            assert(ev.from == pid, "event from the crashed child")
            seen[#seen + 1] = ev.kind
          end
          got[#got + 1] = table.concat(seen, "+")
        end
        return got
    """)
    assert out == ["pid.exit", "pid.link.down", "pid.exit+pid.link.down"]


def test_exec_returns_the_result(procs: Procs) -> None:
    procs.body("child", "local a, b = ... return a * b")
    assert procs.run('return process.exec("app:child", "app:host", 6, 7)') == 42


def test_exec_returns_the_error_of_a_crashing_child(procs: Procs) -> None:
    procs.body("child", 'error(errors.new({ kind = "Conflict", message = "child broke" }))')
    out = procs.run("""
        local value, err = process.exec("app:child", "app:host")
        return { value = value, kind = err:kind(), message = err:message() }
    """)
    assert out == {"kind": "Conflict", "message": "child broke"}


def test_exec_returns_nil_err_of_child(procs: Procs) -> None:
    procs.body("child", 'return nil, errors.new({ kind = "NotFound", message = "nothing here" })')
    out = procs.run("""
        local value, err = process.exec("app:child", "app:host")
        return { value = value, kind = err:kind(), message = err:message() }
    """)
    assert out == {"kind": "NotFound", "message": "nothing here"}


# ------------------------------------------------------------------------------------------
# Sending
# ------------------------------------------------------------------------------------------
def test_send_to_pid_and_to_registered_name(procs: Procs) -> None:
    procs.body("child", """
        process.registry.register("echoer")
        process.send((...), "ready")
        local inbox = process.inbox()
        for _ = 1, 2 do
          local msg = inbox:receive()
          process.send(msg:from(), "echo", msg:topic(), msg:payload():data())
        end
    """)
    out = procs.run("""
        local inbox = process.inbox()
        local pid = process.spawn("app:child", "app:host", process.pid())
        assert(inbox:receive():topic() == "ready")
        assert(process.send(pid, "by_pid", 1) == true)
        assert(process.send("echoer", "by_name", 2) == true)
        local a = inbox:receive():payload():data()
        local b = inbox:receive():payload():data()
        return { a, b }
    """)
    assert out == [["by_pid", 1], ["by_name", 2]]


def test_reserved_topic_is_invalid(procs: Procs) -> None:
    out = procs.run("""
        local ok, err = process.send(process.pid(), "@inbox", 1)
        return { ok = ok, kind = err:kind(), message = err:message() }
    """)
    assert out["kind"] == "Invalid"
    assert "@inbox" in out["message"] and "reserved" in out["message"]
    assert "ok" not in out


def test_per_sender_order_with_ten_senders(procs: Procs) -> None:
    # Every 10 messages a sender blocks on a channel for a moment, so the ten senders'
    # streams really interleave at the receiver.
    procs.body("sender", """
        local receiver, me = ...
        for i = 1, 100 do
          process.send(receiver, "n", { s = me, i = i })
          if i % 10 == 0 then
            local ch = channel.new()
            coroutine.spawn(function() ch:send(true) end)
            ch:receive()
          end
        end
    """)
    out = procs.run("""
        local me = process.pid()
        for s = 1, 10 do process.spawn("app:sender", "app:host", me, s) end
        local inbox = process.inbox()
        local last, count, switches, prev = {}, 0, 0, nil
        for _ = 1, 1000 do
          local d = inbox:receive():payload():data()
          local expected = (last[d.s] or 0) + 1
          if d.i ~= expected then return "sender " .. d.s .. ": got " .. d.i .. " expected " .. expected end
          last[d.s] = d.i
          count = count + 1
          if prev ~= d.s then switches = switches + 1 end
          prev = d.s
        end
        for s = 1, 10 do assert(last[s] == 100, "sender " .. s .. " delivered " .. tostring(last[s])) end
        return { count = count, switches = switches }
    """)
    assert out["count"] == 1000
    assert out["switches"] > 10  # the streams interleaved


def test_send_to_a_dead_process_is_not_found(procs: Procs) -> None:
    procs.body("child", "return 1")
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host")
        local ev = process.events():receive()
        assert(ev.kind == process.event.EXIT and ev.from == pid)
        local ok, err = process.send(pid, "late", 1)
        return { ok = ok, kind = err:kind(), found = string.find(tostring(err), "not found") ~= nil }
    """)
    assert out == {"kind": "NotFound", "found": True}


def test_send_errors_malformed_pid_unknown_name_function_value(procs: Procs) -> None:
    out = procs.run("""
        local out = {}
        local function check(name, ok, err)
          out[name] = { ok = ok, kind = err and err:kind(), message = err and err:message() }
        end
        check("malformed", process.send("{app:host|", "t", 1))
        check("malformed2", process.send("{nohost}", "t", 1))
        check("unknown", process.send("nobody-by-this-name", "t", 1))
        check("func", process.send(process.pid(), "t", function() end))
        check("func_nested", process.send(process.pid(), "t", 1, { cb = print }))
        return out
    """)
    assert out["malformed"]["kind"] == "Invalid" and "malformed PID" in out["malformed"]["message"]
    assert out["malformed2"]["kind"] == "Invalid" and "{nohost}" in out["malformed2"]["message"]
    assert out["unknown"]["kind"] == "NotFound" and "nobody-by-this-name" in out["unknown"]["message"]
    assert out["func"]["kind"] == "Invalid"
    assert "a function at payload cannot cross" in out["func"]["message"]
    assert out["func_nested"]["kind"] == "Invalid"
    assert "a function at payload[2].cb" in out["func_nested"]["message"]
    assert all("ok" not in v for v in out.values())


# ------------------------------------------------------------------------------------------
# Inbox and topic listeners
# ------------------------------------------------------------------------------------------
def test_inbox_message_objects(procs: Procs) -> None:
    procs.body("child", 'local parent = ... process.send(parent, "greeting", { text = "hi" }) process.send(parent, "empty")')
    out = procs.run("""
        local child = process.spawn("app:child", "app:host", process.pid())
        local inbox = process.inbox()
        local m1, m2 = inbox:receive(), inbox:receive()
        assert(getmetatable(m1) == "wippy.message")
        return {
          topic = m1:topic(), from = m1:from(), data = m1:payload():data(), child = child,
          topic2 = m2:topic(), data2_is_nil = m2:payload():data() == nil,
        }
    """)
    assert out["topic"] == "greeting" and out["data"] == {"text": "hi"}
    assert out["from"] == out["child"]
    assert out["topic2"] == "empty" and out["data2_is_nil"] is True


def test_listen_with_message_objects_and_raw_payloads(procs: Procs) -> None:
    procs.body("child", """
        local parent = ...
        process.send(parent, "raw", 1)
        process.send(parent, "obj", 2)
        process.send(parent, "other", 3)
    """)
    out = procs.run("""
        local raw = process.listen("raw")
        local obj = process.listen("obj", { message = true })
        process.spawn("app:child", "app:host", process.pid())
        local r = raw:receive()
        local o = obj:receive()
        local other = process.inbox():receive()
        return { raw = r, obj_topic = o:topic(), obj_data = o:payload():data(), inbox_topic = other:topic() }
    """)
    assert out == {"raw": 1, "obj_topic": "obj", "obj_data": 2, "inbox_topic": "other"}


def test_unlisten_gives_buffered_messages_back_in_order(procs: Procs) -> None:
    procs.body("child", """
        local parent = ...
        for i = 1, 3 do process.send(parent, "t", i) end
        process.send(parent, "done")
    """)
    out = procs.run("""
        local me = process.pid()
        local ch = process.listen("t")
        process.spawn("app:child", "app:host", me)
        local inbox = process.inbox()
        assert(inbox:receive():topic() == "done")  -- the three "t" messages sit in the listener
        assert(process.unlisten(ch) == true)
        process.send(me, "t", 4)  -- after unlisten the topic goes to the inbox
        local got = {}
        for i = 1, 4 do
          local m = inbox:receive()
          assert(m:topic() == "t")
          got[i] = m:payload():data()
        end
        local v, ok = ch:receive()
        return { got = got, closed = not ok }
    """)
    assert out == {"got": [1, 2, 3, 4], "closed": True}


def test_listen_errors(procs: Procs) -> None:
    out = procs.run("""
        local out = {}
        local ok, err = pcall(process.listen, "@events")
        out.reserved = err:kind() .. ": " .. err:message()
        out.same = process.listen("dup") == process.listen("dup")
        ok, err = pcall(process.unlisten, {})
        out.bad = err:kind() .. ": " .. err:message()
        return out
    """)
    assert out["reserved"].startswith("Invalid") and "@events" in out["reserved"]
    assert out["same"] is True  # listening again on a topic gives the same channel
    assert out["bad"].startswith("Invalid") and "process.unlisten" in out["bad"]


# ------------------------------------------------------------------------------------------
# Name registry
# ------------------------------------------------------------------------------------------
def test_registry_register_lookup_unregister(procs: Procs) -> None:
    procs.body("child", WAITER)
    out = procs.run("""
        local R = process.registry
        local me = process.pid()
        local out = {}
        out.register = R.register("svc")
        out.lookup = R.lookup("svc")
        out.again = R.register("svc")  -- same name, same PID: idempotent
        local child = process.spawn("app:child", "app:host")
        local ok, err = R.register("svc", child)
        out.dup = err:kind() .. ": " .. err:message()
        out.other = R.register("svc2", child, R.LOCAL)
        out.other_lookup = R.lookup("svc2") == child
        out.unregister = R.unregister("svc")
        out.unregister_again = R.unregister("svc")
        local pid, err2 = R.lookup("svc")
        out.missing = err2:kind() .. ": " .. err2:message()
        out.pid_nil = pid == nil
        local _, err3 = R.register("x", nil, R.EVENTUAL)
        out.scope = err3:kind()
        out.me = me
        process.terminate(child)
        return out
    """)
    assert out["register"] is True and out["lookup"] == out["me"] and out["again"] is True
    assert out["dup"].startswith("AlreadyExists") and "svc" in out["dup"]
    assert out["other"] is True and out["other_lookup"] is True
    assert out["unregister"] is True and out["unregister_again"] is False
    assert out["missing"].startswith("NotFound") and "svc" in out["missing"]
    assert out["pid_nil"] is True
    assert out["scope"] == "Invalid"


def test_names_are_released_when_the_owner_exits(procs: Procs) -> None:
    procs.body("child", 'process.registry.register("temp") process.send((...), "registered") ' + WAITER)
    out = procs.run("""
        local pid = process.spawn_monitored("app:child", "app:host", process.pid())
        assert(process.inbox():receive():topic() == "registered")
        local seen = process.registry.lookup("temp")
        process.send(pid, "return")
        local ev = process.events():receive()
        assert(ev.kind == process.event.EXIT)
        local after, err = process.registry.lookup("temp")
        local ok, send_err = process.send("temp", "t")
        return { seen = seen == pid, after = after, err = err:kind(), send = send_err:kind(),
                 mine = process.registry.register("temp") }
    """)
    assert out == {"seen": True, "err": "NotFound", "send": "NotFound", "mine": True}


def test_name_released_after_crash_and_terminate(procs: Procs) -> None:
    procs.body("child", 'process.registry.register((...)) process.send((select(2, ...)), "ok") ' + WAITER)
    out = procs.run("""
        local me, events = process.pid(), process.events()
        local a = process.spawn_monitored("app:child", "app:host", "crasher", me)
        local b = process.spawn_monitored("app:child", "app:host", "victim", me)
        process.inbox():receive() process.inbox():receive()
        process.send("crasher", "crash")
        process.terminate("victim")
        events:receive() events:receive()
        return { process.registry.lookup("crasher") == nil, process.registry.lookup("victim") == nil }
    """)
    assert out == [True, True]


async def _no_leftovers(rt: Runtime) -> None:
    host = rt.router.hosts[HOST]
    assert list(rt.router.names) == []
    assert all(not p.closed for p in host.actors.values())


def test_router_state_is_clean_after_exec(procs: Procs) -> None:
    procs.body("child", 'process.registry.register("c") return 5')
    out = asyncio.run(procs.arun('return process.exec("app:child", "app:host")', then=_no_leftovers))
    assert out == 5


def test_register_another_pid_must_be_a_live_process(procs: Procs) -> None:
    procs.body("child", "return 1")
    out = procs.run("""
        local R = process.registry
        local pid = process.spawn_monitored("app:child", "app:host")
        process.events():receive()
        local _, dead = R.register("ghost", pid)
        local _, bad = R.register("garbage", "not a pid")
        local _, bad_name = R.register("{weird", process.pid())
        return { dead = dead:kind(), bad = bad:kind(), bad_name = bad_name:kind(),
                 ghost = R.lookup("ghost"), garbage = R.lookup("garbage") }
    """)
    assert out == {"dead": "NotFound", "bad": "Invalid", "bad_name": "Invalid"}
