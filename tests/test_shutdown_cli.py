"""Ending ``wippy run`` the hard way, and Lua code that misuses a runtime object: no Python
traceback reaches the user.

(A reader that stops early -- ``wippy workflows list | head`` -- is covered by
tests/test_workflows_cli.py::test_list_piped_into_a_reader_that_stops_early.)
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.running import Running

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")

INDEX = """\
namespace: app
entries:
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: waiter, kind: workflow.lua, source: file://wf.lua, method: waiter}
"""

SLOW = """\
  - {name: slow, kind: process.lua, source: file://svc.lua, method: slow, modules: [time]}
  - name: slow_service
    kind: process.service
    process: app:slow
    host: app:procs
    lifecycle: {auto_start: true, depends_on: [app:wfs], stop_timeout: 20s}
"""

FAKE = """\
  - {name: fake, kind: process.lua, source: file://fake.lua, method: fake}
  - name: fake_service
    kind: process.service
    process: app:fake
    host: app:procs
    lifecycle: {auto_start: true, restart: {max_attempts: 1}}
"""

WF = """\
local function waiter()
  return process.inbox():receive():payload():data()
end

return {waiter = waiter}
"""

SVC = """\
local time = require("time")

-- starts two workflows that wait (they stay open in the store), then takes its time to stop
local function slow()
  for i = 1, 2 do
    local _, err = process.with_options({["temporal.workflow.id"] = "open-" .. i}):spawn("app:waiter", "app:wfs")
    if err then error(err) end
  end
  print("slow service up")
  local events = process.events()
  while events:receive().kind ~= process.event.CANCEL do end
  print("slow service stopping")
  time.sleep("20s")
end

return {slow = slow}
"""

FAKE_LUA = """\
-- a channel whose handle is faked: the handle is private, so the field does nothing; a
-- table posing as a channel is refused with a Lua error
local function fake()
  local ch = channel.new(1)
  ch._h = "x"
  ch:send(1)
  print("fake: send on a channel with a _h field: " .. tostring(ch:receive()))
  local forged = {_h = "x"}
  ch.send(forged, 1)
end

return {fake = fake}
"""


def make_project(root: Path, *, fake: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(INDEX + (FAKE if fake else SLOW))
    (root / "svc.lua").write_text(SVC)
    (root / "wf.lua").write_text(WF)
    (root / "fake.lua").write_text(FAKE_LUA)
    return root


def test_a_second_ctrl_c_ends_run_at_once_without_a_traceback(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    run = Running(root)
    try:
        run.wait_for("press Ctrl-C")
        run.wait_for("slow service up")
        run.proc.send_signal(signal.SIGINT)  # the first: stop in order, the service takes its time
        run.wait_for("slow service stopping")
        sent = time.monotonic()
        run.proc.send_signal(signal.SIGINT)  # the second: do not wait for it
        code = run.wait()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    assert time.monotonic() - sent < 10  # not the service's 20 s
    # The second signal ends the process where it is (130), saying so, without a stack
    # dump from asyncio or Lua.
    assert code == 130, (code, run.output)
    assert "interrupted again; exiting without waiting for the stop" in run.output, run.output
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output, run.output
    assert "destroyed but it is pending" not in run.output, run.output

    # The workflow store was not closed: the next start resumes its workflows, and the
    # write-ahead log left beside it is no sign of a lost one.
    again = Running(root)
    try:
        again.wait_for("press Ctrl-C")
        again.wait_for("slow service up")
        again.proc.send_signal(signal.SIGINT)
        again.wait_for("slow service stopping")
        again.proc.send_signal(signal.SIGINT)
        again.wait()
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
            again.proc.wait()
    assert "wippy: app:wfs resumed 2 open workflows" in again.lines, again.output
    assert "WARN" not in again.output and "Traceback" not in again.output, again.output


def test_a_faked_channel_handle_is_a_lua_error_not_a_python_traceback(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", fake=True)
    run = Running(root)
    try:
        run.wait_for("press Ctrl-C")
        run.wait_for("wippy: app:fake_service failed")
    finally:
        run.proc.send_signal(signal.SIGINT)
        code = run.wait()
    out = run.output
    assert code == 0 and run.lines[-1] == "wippy: stopped", out
    assert "fake: send on a channel with a _h field: 1" in out, out
    failed = next(line for line in run.lines if line.startswith("wippy: app:fake_service failed"))
    assert "Invalid: channel:send must be called on a channel" in failed, failed
    assert "Traceback" not in out and 'File "' not in out, out


def test_sigint_stops_run_within_seconds_while_lua_spins(tmp_path: Path) -> None:
    """A service that spins in Lua without yielding (restarted each time its CPU budget stops
    it) does not keep SIGINT from stopping `wippy run` promptly, without a traceback."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "_index.yaml").write_text(
        "namespace: app\n"
        "entries:\n"
        "  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}\n"
        "  - {name: spin, kind: process.lua, source: file://spin.lua, method: main}\n"
        "  - {name: spinner, kind: process.service, process: app:spin, host: app:procs,\n"
        "     lifecycle: {auto_start: true, restart: {initial_delay: 1ms, max_attempts: 1000}}}\n")
    (root / "spin.lua").write_text('local function main() print("spinning") while true do end end\n'
                                   "return {main = main}\n")
    run = Running(root)
    try:
        run.wait_for("spinning")
        sent = time.monotonic()
        run.proc.send_signal(signal.SIGINT)
        code = run.wait(timeout=15)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    assert time.monotonic() - sent < 5, run.output
    assert code in (0, 130), (code, run.output)
    assert "Traceback" not in run.output, run.output
