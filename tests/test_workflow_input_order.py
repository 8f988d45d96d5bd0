"""Inputs reach a workflow in the order they were sent, also when several wait at once.

A workflow applies its inputs one at a time at quiescent points; while it cannot take them
they queue up, and the queue must be first-in-first-out. Three places where several queue
up together: messages sent while the start is delayed (``start_delay``), messages sent
while an activity waits out its retry back-off, and signals queued with
``wippy workflows signal`` while no runtime runs the host (the next runtime drains the
store's mailbox at once). Each test sends five distinct messages, so any reordering
(newest first, or part of a batch reversed) changes what the workflow returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import read_run, until
from wippy import Runtime, load_project
from wippy.cli import main as wippy_main
from wippy.providers import SpawnRequest
from wippy.providers.workflow.journal import RunRecord

T = TypeVar("T")
HOST = "app:wfs"
DEADLINE = 5.0  # seconds any single wait may take
TOPICS = ["first", "second", "third", "fourth", "fifth"]

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: collect, kind: workflow.lua, source: file://wf.lua, method: collect, modules: [funcs, time]}
  - {name: flaky, kind: function.lua, source: file://fn.lua, method: flaky}
  - {name: retry_driver, kind: process.lua, source: file://driver.lua, method: retry_driver}
"""

WF = """\
local funcs = require("funcs")
local time = require("time")

-- Notes when its code started; calls app:flaky first if given a driver PID (retried with a
-- 300 ms back-off); then returns the first `n` messages of its inbox, in the order received.
local function collect(n, driver)
  local started = time.now():unix_nano()
  local activity
  if driver then
    local result, err = funcs.new()
      :with_options({["activity.retry_policy"] = {initial_interval = 300, maximum_attempts = 3}})
      :call("app:flaky", driver)
    activity = result or ("error: " .. tostring(err))
  end
  local inbox = process.inbox()
  local got = {}
  for i = 1, n do
    local msg = inbox:receive()
    got[i] = {topic = msg:topic(), v = msg:payload():data()}
  end
  return {started = started, activity = activity, got = got}
end

return {collect = collect}
"""

FN = """\
-- Fails (retryably) until the test has registered "input-order.retried"; tells the driver
-- about each failing attempt, right before it fails.
local function flaky(driver)
  if process.registry.lookup("input-order.retried") then
    return "succeeded after a retry"
  end
  assert(process.send(driver, "attempt", "failing"))
  return nil, errors.new({kind = "Unavailable", message = "first attempt fails", retryable = true})
end

return {flaky = flaky}
"""

DRIVER = """\
-- Starts app:collect with an activity that fails once; returns the workflow's PID once the
-- failing attempt has reported (its back-off runs from then on).
local function retry_driver(n)
  local pid, err = process.spawn("app:collect", "app:wfs", n, process.pid())
  if err then error(err) end
  local attempt = process.inbox():receive()
  assert(attempt:topic() == "attempt", attempt:topic())
  return pid
end

return {retry_driver = retry_driver}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "_index.yaml").write_text(INDEX)
    (tmp_path / "wf.lua").write_text(WF)
    (tmp_path / "fn.lua").write_text(FN)
    (tmp_path / "driver.lua").write_text(DRIVER)
    return tmp_path


def expected_messages() -> list[dict[str, Any]]:
    return [{"topic": topic, "v": {"i": i}} for i, topic in enumerate(TOPICS, 1)]


def closed(root: Path, workflow_id: str) -> RunRecord | None:
    run = read_run(root, workflow_id)
    return run if run is not None and run.status != "running" else None


def wid(pid: str) -> str:
    return pid.split("|", 1)[1].rstrip("}")


def history_messages(run: RunRecord) -> list[dict[str, Any]]:
    assert run.history is not None
    return [{"topic": r["topic"], "v": r["v"]} for r in run.history if r.get("in") == "msg"]


def exit_future(rt: Runtime) -> tuple[asyncio.Future[dict[str, Any]], Callable[[dict[str, Any]], None]]:
    """A future for an EXIT event (value and error as Python data), and the callback to
    give a callback PID that resolves it."""
    exited: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def on_exit(event: dict[str, Any]) -> None:
        if event["kind"] == "EXIT" and not exited.done():
            exited.set_result({"value": rt.vm.to_python(event["result"]["value"]),
                               "error": rt.vm.to_python(event["result"]["error"])})

    return exited, on_exit


async def start(rt: Runtime, entry: str, *args: Any, options: dict[str, Any] | None = None,
                on_exit: Callable[[dict[str, Any]], None] | None = None) -> str:
    """process.spawn of a workflow from Python (``on_exit`` gets its EXIT event); returns
    once the start is durable."""
    provider = rt.router.hosts[HOST]
    parent = rt.router.callback_pid(on_exit) if on_exit else None
    pid = provider.spawn(SpawnRequest(entry, rt.kernel.lua_args(list(args)), parent=parent,
                                      options=options or {}, monitor=on_exit is not None))
    await provider.barrier()
    return pid


# (a) start delay ---------------------------------------------------------------------------------
def test_messages_sent_during_the_start_delay_arrive_in_send_order(root: Path) -> None:
    async def main() -> tuple[float, list[str], dict[str, Any]]:
        async with Runtime(load_project(root)) as rt:
            exited, on_exit = exit_future(rt)
            pid = await start(rt, "app:collect", len(TOPICS), options={"temporal.workflow.start_delay": "300ms"},
                              on_exit=on_exit)
            host = rt.router.hosts[HOST]
            for i, topic in enumerate(TOPICS, 1):  # each one durable before the next is sent
                assert rt.router.send(pid, topic, rt.vm.to_lua({"i": i}), None)
                await host.barrier()
            sent = time.time()
            statuses = [s["status"] for s in host.snapshot()]
            outcome = await asyncio.wait_for(exited, DEADLINE)
            return sent, statuses, outcome

    sent, statuses, outcome = asyncio.run(main())
    assert statuses == ["waiting to start"]  # all five queued before the code ran
    assert outcome["error"] is None, outcome
    assert outcome["value"]["started"] / 1e9 > sent
    assert outcome["value"]["got"] == expected_messages()


# (b) activity retry back-off -----------------------------------------------------------------------
def test_messages_sent_during_an_activity_back_off_arrive_in_send_order(root: Path) -> None:
    async def main() -> tuple[str, dict[str, Any]]:
        async with Runtime(load_project(root)) as rt:
            exited, on_exit = exit_future(rt)
            pid = await asyncio.wait_for(rt.run("app:retry_driver", len(TOPICS)), DEADLINE)
            # the first attempt has failed: the 300 ms back-off runs now
            assert rt.router.watch(pid, rt.router.callback_pid(on_exit), False)
            host = rt.router.hosts[HOST]
            for i, topic in enumerate(TOPICS, 1):  # in one go: they queue up together
                assert rt.router.send(pid, topic, rt.vm.to_lua({"i": i}), None)
            await host.barrier()
            rt.router.register("input-order.retried", pid)  # the next attempt succeeds
            return pid, await asyncio.wait_for(exited, DEADLINE)

    pid, outcome = asyncio.run(main())
    assert outcome["error"] is None, outcome
    assert outcome["value"]["activity"] == "succeeded after a retry"
    assert outcome["value"]["got"] == expected_messages()
    # they were recorded while the activity was outstanding: between its command and its result
    run = read_run(root, wid(pid))
    assert run is not None and run.history is not None
    kinds = [r.get("op") or r.get("in") for r in run.history]
    call = kinds.index("funcs.call")
    done = kinds.index("done")
    assert kinds[call + 1:done] == ["msg"] * len(TOPICS), kinds
    assert history_messages(run) == expected_messages()


# (c) the CLI mailbox -----------------------------------------------------------------------------
def test_signals_queued_with_the_cli_arrive_in_send_order(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def first() -> str:
        async with Runtime(load_project(root)) as rt:
            pid = await start(rt, "app:collect", len(TOPICS))
            # the code has started (it is waiting in its inbox) before the host stops
            await until(lambda: (run := read_run(root, wid(pid))) is not None and run.history, "the workflow", DEADLINE)
            return wid(pid)

    workflow_id = asyncio.run(first())
    for i, topic in enumerate(TOPICS, 1):  # no runtime: each signal waits in the store's mailbox
        code = wippy_main(["workflows", "signal", str(root), workflow_id, topic, f'{{"i": {i}}}', "--wait", "0"])
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "queued" in out.out
    run = read_run(root, workflow_id)
    assert run is not None and run.status == "running" and history_messages(run) == []

    async def second() -> RunRecord:
        async with Runtime(load_project(root)):
            return await until(lambda: closed(root, workflow_id), "the workflow to complete", DEADLINE)

    run = asyncio.run(second())
    assert run.status == "completed", run.error
    assert run.result["got"] == expected_messages()
    assert history_messages(run) == expected_messages()
