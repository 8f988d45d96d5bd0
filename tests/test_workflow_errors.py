"""Bad input to workflow.host: unusable stores, oversized and unserialisable values, bad
spawns. Each must give a clear error while the other workflows keep running."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wippy import Runtime, load_project
from wippy.errors import WippyError
from wippy.providers.workflow.execution import MAX_RECORD_BYTES
from wippy.providers.workflow.journal import JournalReader

BIG = MAX_RECORD_BYTES + 1024  # bytes: just over the limit of one history record

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: STORE, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: guarded, kind: workflow.lua, source: file://wf.lua, method: guarded, modules: [funcs]}
  - {name: other, kind: workflow.lua, source: file://wf.lua, method: other, modules: [funcs]}
  - {name: marker, kind: workflow.lua, source: file://wf.lua, method: marker, modules: [funcs]}
  - {name: huge_result, kind: workflow.lua, source: file://wf.lua, method: huge_result, modules: [funcs]}
  - {name: big, kind: function.lua, source: file://fn.lua, method: big}
  - {name: echo, kind: function.lua, source: file://fn.lua, method: echo}
  - {name: driver, kind: process.lua, source: file://driver.lua, method: main}
  - {name: spawner, kind: process.lua, source: file://driver.lua, method: spawn_one}
  - {name: sender, kind: process.lua, source: file://driver.lua, method: send_one}
"""

FN = """\
local function big() return string.rep("b", BIG) end
local function echo(...) return ... end
return {big = big, echo = echo}
"""

WF = """\
local funcs = require("funcs")

local function kind_text(e) return e and (e:kind() .. ": " .. tostring(e)) end

local function text(ok, v, e)  -- the error of a call that may raise or return nil, err
  if not ok then return kind_text(v) end
  return kind_text(e)
end

-- Hits every size and value check, then carries on and finishes normally.
local function guarded()
  local out = {}
  out.result_err = text(pcall(funcs.call, "app:big"))
  out.args_err = text(pcall(funcs.call, "app:echo", string.rep("a", BIG)))
  out.fn_err = text(pcall(funcs.call, "app:echo", {f = print}))
  out.spawn_err = text(pcall(process.spawn, "app:other", "app:wfs", string.rep("c", BIG)))
  local msg = process.inbox():receive()
  out.msg = msg:payload():data()
  out.after = funcs.call("app:echo", "still working")
  return out
end

local function other()
  local msg = process.inbox():receive()
  return {other = msg:payload():data()}
end

-- Leaves too-large markers in its history, then waits: replay must pass them.
local function marker()
  local errs = {}
  errs[1] = text(pcall(funcs.call, "app:echo", string.rep("a", BIG)))
  errs[2] = text(pcall(process.spawn, "app:other", "app:wfs", string.rep("c", BIG)))
  local msg = process.inbox():receive()
  return {errs = errs, msg = msg:payload():data()}
end

local function huge_result() return string.rep("r", BIG) end

return {guarded = guarded, other = other, marker = marker, huge_result = huge_result}
"""

DRIVER = """\
local function kind_text(e) return e and (e:kind() .. ": " .. tostring(e)) end

local function exits(pids)  -- {pid = result} once every pid in `pids` has exited
  local events, got, left = process.events(), {}, #pids
  while left > 0 do
    local ev = events:receive()
    if ev.kind == process.event.EXIT and got[ev.from] == nil then got[ev.from] = ev.result; left = left - 1 end
  end
  return got
end

local function main()
  local out = {}
  local g = process.with_options({["temporal.workflow.id"] = "g1"}):spawn_monitored("app:guarded", "app:wfs")
  local o = process.with_options({["temporal.workflow.id"] = "o1"}):spawn_monitored("app:other", "app:wfs")
  local _, err = process.send(g, "big", string.rep("m", BIG))
  out.big_send = kind_text(err)
  _, err = process.send(g, "fn", {f = print})
  out.fn_send = kind_text(err)
  _, err = process.spawn("app:nope", "app:wfs")
  out.unknown_entry = kind_text(err)
  _, err = process.spawn("app:echo", "app:wfs")
  out.function_entry = kind_text(err)
  _, err = process.with_message("hello", string.rep("h", BIG)):spawn("app:other", "app:wfs")
  out.big_start_message = kind_text(err)
  process.send(g, "go", "small")
  process.send(o, "go", 7)
  local got = exits({g, o})
  out.guarded, out.other = got[g], got[o]
  return out
end

local function spawn_one(entry, id)
  local pid, err = process.with_options({["temporal.workflow.id"] = id}):spawn(entry, "app:wfs")
  return {pid = pid, err = err and (err:kind() .. ": " .. tostring(err))}
end

local function send_one(pid, topic, payload)
  local ok, err = process.send(pid, topic, payload)
  return {ok = ok, err = err and (err:kind() .. ": " .. tostring(err))}
end

return {main = main, spawn_one = spawn_one, send_one = send_one}
"""


def write_project(root: Path, store: str = "data/wf.db") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(INDEX.replace("STORE", store))
    (root / "fn.lua").write_text(FN.replace("BIG", str(BIG)))
    (root / "wf.lua").write_text(WF.replace("BIG", str(BIG)))
    (root / "driver.lua").write_text(DRIVER.replace("BIG", str(BIG)))
    return root


async def wait_status(store: Path, workflow_id: str, status: str, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reader = JournalReader(str(store))
        try:
            run = reader.run(workflow_id)
        finally:
            reader.close()
        if run is not None and run.status == status:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} is {run and run.status}, not {status}")
        await asyncio.sleep(0.02)


# Values: too large, not data, bad spawns ----------------------------------------------------
def test_oversized_and_unserialisable_values_fail_clearly_and_everything_keeps_running(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")

    async def main() -> Any:
        async with Runtime(load_project(root)) as rt:
            return await asyncio.wait_for(rt.run("app:driver"), 15)

    out = asyncio.run(main())
    limit = f"over the limit of {MAX_RECORD_BYTES} bytes"
    # sent to a workflow: the sender gets the error
    assert out["big_send"].startswith("Invalid:") and "message 'big'" in out["big_send"] and limit in out["big_send"]
    assert "function" in out["fn_send"] and "payload.f" in out["fn_send"] and out["fn_send"].startswith("Invalid")
    assert out["big_start_message"].startswith("Invalid") and "start message 'hello'" in out["big_start_message"]
    # spawning what is not a workflow
    assert out["unknown_entry"].startswith("NotFound") and "app:nope" in out["unknown_entry"]
    assert out["function_entry"].startswith("Invalid") and "function.lua" in out["function_entry"]
    # inside the workflow: each too-large record is an INVALID error naming size and limit
    g = out["guarded"]
    assert g.get("error") is None, g
    value = g["value"]
    for key, what in [("result_err", "the result of history event"), ("args_err", "command funcs.call"),
                      ("spawn_err", "command process.spawn")]:
        assert value[key].startswith("Invalid:") and what in value[key] and limit in value[key], (key, value[key])
        assert "bytes packed" in value[key]
    assert "function" in value["fn_err"] and value["fn_err"].startswith("Invalid")
    assert value["msg"] == "small" and value["after"] == "still working"
    assert out["other"] == {"value": {"other": 7}}  # the other workflow never noticed

    reader = JournalReader(str(root / "data/wf.db"))
    try:
        g1, o1 = reader.run("g1"), reader.run("o1")
    finally:
        reader.close()
    assert g1.status == "completed" and o1.status == "completed"
    assert g1.history_size < MAX_RECORD_BYTES  # nothing oversized got in
    markers = [r for r in g1.history if "too_large" in r]
    assert [m["op"] for m in markers] == ["funcs.call", "process.spawn"]


def test_too_large_markers_replay_after_a_restart(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    store = root / "data/wf.db"

    async def first() -> None:
        async with Runtime(load_project(root)) as rt:
            assert "err" not in await rt.run("app:spawner", "app:marker", "m1")
            run = await wait_status(store, "m1", "running")
            for _ in range(250):  # the workflow reaches its receive: two markers recorded
                reader = JournalReader(str(store))
                run = reader.run("m1")
                reader.close()
                if len(run.history) >= 2:
                    break
                await asyncio.sleep(0.02)

    async def second() -> Any:
        async with Runtime(load_project(root)) as rt:
            host = rt.router.hosts["app:wfs"]
            assert host.recovered == 1
            sent = await rt.run("app:sender", "{app:wfs|m1}", "go", "after restart")
            assert sent == {"ok": True}, sent
            return await wait_status(store, "m1", "completed")

    asyncio.run(first())
    run = asyncio.run(second())
    assert run.result["msg"] == "after restart"
    assert all(e.startswith("Invalid:") and "over the limit" in e for e in run.result["errs"])


def test_result_too_large_fails_the_workflow(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")

    async def main() -> Any:
        async with Runtime(load_project(root)) as rt:
            await rt.run("app:spawner", "app:huge_result", "h1")
            return await wait_status(root / "data/wf.db", "h1", "failed")

    run = asyncio.run(main())
    assert run.error.kind == "Invalid" and "the result of workflow h1" in run.error.message
    assert str(MAX_RECORD_BYTES) in run.error.message


# Stores that cannot be used ------------------------------------------------------------------
def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", *args], capture_output=True, text=True,
                          timeout=30, cwd=cwd)


def _start_error(root: Path) -> str:
    async def main() -> None:
        async with Runtime(load_project(root)):
            pass

    with pytest.raises(WippyError) as info:
        asyncio.run(main())
    return str(info.value)


@pytest.mark.parametrize("kind", ["random bytes", "foreign sqlite"])
def test_unusable_store_file_fails_start_and_cli_naming_the_file(tmp_path: Path, kind: str) -> None:
    root = write_project(tmp_path / "p")
    db = root / "data/wf.db"
    db.parent.mkdir()
    if kind == "random bytes":
        db.write_bytes(os.urandom(8192))
        expected = "is not a usable SQLite database"
    else:
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        conn.commit()
        conn.close()
        expected = "does not belong to wippy (it has tables customers)"
    before = db.read_bytes()
    message = _start_error(root)
    assert str(db) in message and expected in message
    listed = _cli("workflows", "list", str(root))
    assert listed.returncode == 1 and str(db) in listed.stderr and expected in listed.stderr
    assert db.read_bytes() == before  # nothing was written to somebody else's file
    if kind == "foreign sqlite":
        ran = _cli("run", str(root))  # starts nothing: the host fails, everything started stops
        assert ran.returncode == 1 and str(db) in ran.stderr and expected in ran.stderr


def test_store_under_a_regular_file_fails_naming_the_directory(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", store="blocker/sub/wf.db")
    (root / "blocker").write_text("a file where a directory should be")
    message = _start_error(root)
    assert "Unavailable" in message and str(root / "blocker/sub") in message and "cannot be created" in message


def test_store_directory_not_writable(tmp_path: Path) -> None:
    """The store's directory exists but no file can be created in it: the start fails with
    an error naming the file (and saying what to check), and ``wippy run`` reports it in
    one line, without a traceback.

    Permission bits do not stop root (CI runs as root), so the directory is /proc, where
    the kernel refuses to create files for everyone; without a /proc (macOS, say) a
    directory without write permission stands in, which only works for a non-root user."""
    if Path("/proc/self").is_dir():
        store = Path("/proc/wippy-test-store.db")
        root = write_project(tmp_path / "p", store=str(store))
        locked = None
    elif hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("no /proc, and permission bits do not stop root from writing")
    else:
        root = write_project(tmp_path / "p", store="locked/wf.db")
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        store = locked / "wf.db"
    try:
        message = _start_error(root)
        ran = _cli("run", str(root))
    finally:
        if locked is not None:
            locked.chmod(0o700)
    assert "Unavailable" in message and str(store) in message and "writable" in message, message
    assert str(store.parent) in message  # the directory to check, too
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(store) in errors[0] and "writable" in errors[0], ran.stderr
    assert "Traceback" not in ran.stderr and "Traceback" not in ran.stdout, ran.stderr
    # the state line of the host that could not start says so, with the reason
    assert any(" failed - " in line and str(store) in line for line in ran.stdout.splitlines()), ran.stdout
    assert not store.exists()

