"""python.host: Python actors and Lua processes exchanging messages, monitors, links,
cancels and names; handler errors; the YAML fields; the demo; public imports only."""

from __future__ import annotations

import ast
import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import wippy.providers
from wippy import LoadError, Runtime, WippyError, load_project
from wippy.testing import WippyProject

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "wippy_python_host"
DEMO = Path(__file__).resolve().parents[1] / "demo"


@pytest.fixture
def project(wippy_project: WippyProject) -> WippyProject:
    """A project with a started python.host ``app:py`` and the handlers of pyhost_handlers."""
    wippy_project.add("py", {"kind": "python.host", "lifecycle": {"auto_start": True, "stop_timeout": "1s"}})
    for name in ("counter", "args", "spawner", "linked", "selective", "boom", "named", "canceler",
                 "waits_for_cancel", "sleeps"):
        wippy_project.add(name, {"kind": "python.actor", "handler": f"pyhost_handlers:{name}"})
    return wippy_project


def lua_process(project: WippyProject, name: str, body: str) -> None:
    project.lua_process(name, f"local function main(...)\n{body}\nend\nreturn {{ main = main }}\n")


# Spawn a Python actor monitored, wait for its EXIT, return {value=..., error=...}.
EXIT_OF = """
local function exit_of(pid)
  local ev = process.events():receive()
  assert(ev.kind == process.event.EXIT and ev.from == pid, "EXIT of " .. pid)
  local e = ev.result.error
  return { value = ev.result.value, kind = e and e:kind(), error = e and e:message() }
end
"""


def test_lua_and_python_exchange_messages(project: WippyProject) -> None:
    out = project.lua("""
        local pid = process.spawn_monitored("app:counter", "app:py", 10)
        local inbox, totals = process.inbox(), {}
        for i = 1, 3 do
          process.send(pid, "add", i)
          local msg = inbox:receive()
          assert(msg:from() == pid, "the reply comes from the Python actor")
          totals[i] = msg:payload():data()
        end
        process.send(pid, "stop")
        local ev = process.events():receive()
        return { totals = totals, exit = ev.result.value, kind = ev.kind, host = pid:match("^{(.-)|") }
    """)
    assert out == {"totals": [11, 13, 16], "exit": 16, "kind": "pid.exit", "host": "app:py"}


def test_arguments_context_and_pid(project: WippyProject) -> None:
    out = project.lua(EXIT_OF + """
        local pid = process.with_context({ user = "ann" }):spawn_monitored("app:args", "app:py", 1, "two", { three = 3 })
        local got = exit_of(pid)
        got.same_pid = got.value.pid == pid
        return got
    """)
    assert out["value"]["args"] == [1, "two", {"three": 3}]
    assert out["value"]["entry"] == "app:args" and out["value"]["context"]["user"] == "ann"
    assert out["same_pid"] is True


def test_a_python_actor_spawns_and_monitors_a_lua_process(project: WippyProject) -> None:
    lua_process(project, "double", "local x = ...\nreturn x * 2")
    lua_process(project, "crash", 'error(errors.new({ kind = errors.CONFLICT, message = "crashed" }))')
    out = project.lua(EXIT_OF + """
        local ok_run = exit_of(process.spawn_monitored("app:spawner", "app:py", "app:double", "app:lua_driver_host", 21))
        local bad_run = exit_of(process.spawn_monitored("app:spawner", "app:py", "app:crash", "app:lua_driver_host", 0))
        return { ok_run = ok_run.value, bad_run = bad_run.value }
    """)
    assert out["ok_run"] == {"kind": "EXIT", "same": True, "value": 42}
    assert out["bad_run"] == {"kind": "EXIT", "same": True, "error": "crashed"}


@pytest.mark.parametrize("trap", [True, False])
def test_links_between_python_and_lua(project: WippyProject, trap: bool) -> None:
    lua_process(project, "crash", 'error(errors.new({ kind = errors.CONFLICT, message = "crashed" }))')
    out = project.lua(EXIT_OF + """
        local trap = ...
        return exit_of(process.spawn_monitored("app:linked", "app:py", "app:crash", "app:lua_driver_host", trap))
    """, trap)
    if trap:  # LINK_DOWN arrives as an event and the actor goes on
        assert out == {"value": {"kind": "LINK_DOWN", "error": "crashed"}}
    else:  # the link takes the actor down with the Lua process's error kind
        assert out["kind"] == "Conflict"
        assert re.fullmatch(r"linked process \{app:lua_driver_host\|\w+\} failed: crashed", out["error"])


def test_selective_receive_and_timeout(project: WippyProject) -> None:
    out = project.lua(EXIT_OF + """
        local pid = process.spawn_monitored("app:selective", "app:py")
        process.send(pid, "a", "a1")
        process.send(pid, "b", "b1")
        process.send(pid, "b", "b2")
        return exit_of(pid).value
    """)
    assert out == ["b1", "b2", "a1", "timeout"]


@pytest.mark.parametrize(("how", "kind", "message"), [
    ("wippy", "Conflict", "wippy error from Python"),
    ("python", "Internal", "ValueError: plain Python error"),
    ("not data", "Invalid", "result: a Python object cannot cross into Lua (only data can)"),
])
def test_how_a_handler_fails(project: WippyProject, how: str, kind: str, message: str) -> None:
    out = project.lua(EXIT_OF + "return exit_of(process.spawn_monitored('app:boom', 'app:py', ...))", how)
    assert out == {"kind": kind, "error": message}


def test_names(project: WippyProject) -> None:
    out = project.lua(EXIT_OF + """
        local pid = process.spawn_monitored("app:named", "app:py", "svc", process.pid())
        local inbox = process.inbox()
        assert(inbox:receive():topic() == "registered")
        local found = process.registry.lookup("svc")
        process.send("svc", "who")
        local me = inbox:receive():payload():data()
        local exit = exit_of(pid)
        local after, err = process.registry.lookup("svc")
        return { found = found == pid, me = me == pid, exit = exit.value, after = after, err = err:kind() }
    """)
    assert out == {"found": True, "me": True, "exit": "svc", "err": "NotFound"}


def test_cancel_and_terminate_from_python(project: WippyProject) -> None:
    lua_process(project, "cancel_reporter", """
        local mode = ...
        if mode == "ignore" then process.inbox():receive() end
        local ev = process.events():receive()
        return { kind = ev.kind, reason = ev.reason }
    """)
    out = project.lua(EXIT_OF + """
        return exit_of(process.spawn_monitored("app:canceler", "app:py", "app:cancel_reporter", "app:lua_driver_host"))
    """)
    assert out == {"value": {"canceled": {"kind": "pid.cancel", "reason": "enough"}, "terminated": True,
                             "send_after": "NotFound"}}


def test_a_python_actor_gets_cancel(project: WippyProject) -> None:
    out = project.lua(EXIT_OF + """
        local pid = process.spawn_monitored("app:waits_for_cancel", "app:py")
        process.cancel(pid, "2s", "bye")
        local got = exit_of(pid)
        got.value.from_me = got.value.from == process.pid()
        return got
    """)
    assert out["value"]["reason"] == "bye" and out["value"]["deadline"] == 2.0 and out["value"]["from_me"]


def test_terminate_from_lua_and_stop_end_python_actors(project: WippyProject) -> None:
    out = project.lua(EXIT_OF + """
        local pid = process.spawn_monitored("app:sleeps", "app:py")
        process.spawn("app:sleeps", "app:py")  -- left running: the host's stop ends it
        process.terminate(pid)
        return exit_of(pid)
    """)
    assert out["kind"] == "Canceled"


@pytest.mark.parametrize(("handler", "problem"), [
    ("no_colon_here", "must look like 'package.module:function'"),
])
def test_check_reports_a_malformed_handler(wippy_project: WippyProject, handler: str, problem: str) -> None:
    wippy_project.add("bad", {"kind": "python.actor", "handler": handler})
    wippy_project.add("py", {"kind": "python.host", "paths": "not a list", "typo": 1})
    wippy_project.write()
    with pytest.raises(LoadError) as info:
        load_project(wippy_project.root)
    text = str(info.value)
    assert problem in text and "paths" in text and "typo" in text


@pytest.mark.parametrize(("handler", "message"), [
    ("pyhost_handlers:not_async", "must be an async function"),
    ("no_such_module_anywhere:main", "cannot import 'no_such_module_anywhere'"),
    ("pyhost_handlers:missing", "pyhost_handlers has no 'missing'"),
])
def test_a_bad_handler_stops_the_host_from_starting(wippy_project: WippyProject, handler: str,
                                                    message: str) -> None:
    wippy_project.add("py", {"kind": "python.host", "lifecycle": {"auto_start": True}})
    wippy_project.add("bad", {"kind": "python.actor", "handler": handler})

    async def main() -> None:
        async with wippy_project.started():
            pass

    with pytest.raises(WippyError) as info:
        asyncio.run(main())
    assert message in str(info.value) and "app:bad" in str(info.value)


def test_paths_put_project_modules_on_sys_path(wippy_project: WippyProject) -> None:
    module = f"local_actors_{uuid.uuid4().hex[:8]}"
    wippy_project.file(f"lib/{module}.py", """
        async def hello(actor, name):
            return "hello " + name
    """)
    wippy_project.add("py", {"kind": "python.host", "paths": ["lib"], "lifecycle": {"auto_start": True}})
    wippy_project.add("hello", {"kind": "python.actor", "handler": f"{module}:hello"})
    out = wippy_project.lua("""
        local pid = process.spawn_monitored("app:hello", "app:py", "lua")
        return process.events():receive().result.value
    """)
    assert out == "hello lua"


def test_the_demo(tmp_path: Path) -> None:
    async def main() -> Any:
        async with Runtime(load_project(DEMO)) as rt:
            return await rt.call("app:demo", timeout=10)

    out = asyncio.run(main())
    assert out["count"] == 5 and out["mean"] == 14 and out["median"] == 13 and out["stopped_with"] == 5


PUBLIC_MODULES = {"wippy", "wippy.providers", "wippy.errors", "wippy.testing"}


def _wippy_imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "wippy":
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "wippy"]
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_the_package_uses_only_public_wippy_names(path: Path) -> None:
    for module, names in _wippy_imports(path):
        assert module in PUBLIC_MODULES, f"{path.name} imports {module}, which is not public"
        if module == "wippy.providers":
            private = sorted(set(names) - set(wippy.providers.__all__))
            assert not private, f"{path.name} imports {private} from wippy.providers (not in __all__)"


def test_the_kinds_come_from_the_installed_package() -> None:
    from importlib.metadata import distribution, entry_points

    assert distribution("wippy-python-host").version == "0.1.0"
    published = {ep.name: ep.value for ep in entry_points(group="wippy.providers")}
    assert published["python-host"] == "wippy_python_host:SPECS"


def test_process_exec_waits_for_a_python_actor(project: WippyProject) -> None:
    out = project.lua("""
        local value, err = process.exec("app:args", "app:py", "x", 2)
        return { args = value.args, err = err }
    """)
    assert out == {"args": ["x", 2]}
