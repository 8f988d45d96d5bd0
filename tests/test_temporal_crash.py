"""Crash safety of temporal.worker: SIGKILL the runtime while 100 Lua workflows (activities,
a timer, a signal) are in flight on a real Temporal dev server, restart it, and check that
every workflow completes exactly once with the right result, and that each result carries
exactly the activity executions Temporal's history recorded.

A Lua service inside the runtime starts the workflows (``process.with_options(...):spawn``
on the ``temporal.worker`` host) and signals each (``process.send``); after the restart it
runs again: running workflows are reused (use_existing, the default conflict policy) and
finished ones are refused (reject_duplicate), so no ID gets a second run. The test reads
everything back with the temporalio client.

Runs on the session's dev server (``tests/temporal_server.py``), with a task queue and
workflow IDs of its own. A workflow or activity task the killed worker had taken comes back
only after Temporal's timeouts (10 s for a workflow task, 10 s for the dead worker's sticky
queue, the 3 s the workflow gives its activities), so recovery takes 10-20 s. Loopback only.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.temporal_server import TemporalServer, unique_queue

pytest_plugins = ["tests.temporal_server"]

COUNT = 100
STARTERS = 10  # Lua coroutines starting workflows at once: each start is a round trip


# The project ---------------------------------------------------------------------------------
PROJECT = """
namespace: app
entries:
  - name: procs
    kind: process.host
    lifecycle: {{auto_start: true}}
  - name: temporal
    kind: temporal.client
    address: {address}
    lifecycle: {{auto_start: true}}
  - name: worker
    kind: temporal.worker
    client: app:temporal
    task_queue: {task_queue}
    lifecycle: {{auto_start: true, depends_on: [app:temporal]}}
  - name: job
    kind: workflow.lua
    source: file://job.lua
    method: main
    modules: [funcs, time]
    meta: {{temporal: {{workflow: {{worker: app:worker}}}}}}
  - name: double
    kind: function.lua
    source: file://acts.lua
    method: double
    modules: [uuid]
    meta: {{temporal: {{activity: {{worker: app:worker}}}}}}
  - name: add
    kind: function.lua
    source: file://acts.lua
    method: add
    modules: [uuid]
    meta: {{temporal: {{activity: {{worker: app:worker}}}}}}
  - name: loadgen
    kind: process.lua
    source: file://loadgen.lua
    method: main
  - name: loadgen_service
    kind: process.service
    process: app:loadgen
    host: app:procs
    lifecycle:
      auto_start: true
      depends_on: [app:worker]
      restart: {{max_attempts: 1}}
"""

# An activity polled by the killed worker is retried only after its start-to-close timeout
# (10 minutes by default), so the workflow sets a short one.
JOB = """
local funcs = require("funcs")
local time = require("time")
local acts = funcs.new():with_options({ ["activity.start_to_close_timeout"] = "3s" })
local function main(n)
  local a, err = acts:call("app:double", n)
  if err then error(err) end
  time.sleep((n % 10) * 150 .. "ms")
  local msg = process.inbox():receive()
  local b, err2 = acts:call("app:add", a.value, msg:payload():data().bonus)
  if err2 then error(err2) end
  return { n = n, value = b.value, runs = { a.run, b.run } }
end
return { main = main }
"""

ACTS = """
local uuid = require("uuid")
return {
  -- Each execution gets a fresh id, so a result must name the execution history recorded.
  double = function(n) return { value = n * 2, run = uuid.v4() } end,
  add = function(a, b) return { value = a + b, run = uuid.v4() } end,
}
"""

LOADGEN = f"""
local function start(n)
  local spawner = process.with_options({{
    ["temporal.workflow.id"] = "{{prefix}}-" .. n,
    ["temporal.workflow.id_reuse_policy"] = "reject_duplicate",
  }})
  local pid, err = spawner:spawn("app:job", "app:worker", n)
  if not err then process.send(pid, "bonus", {{bonus = 1000}}) end
end
local function main()
  for w = 1, {STARTERS} do
    coroutine.spawn(function()
      for n = w, {COUNT}, {STARTERS} do start(n) end
    end)
  end
  local events = process.events()  -- stay up until the service is stopped
  repeat local ev = events:receive() until ev.kind == process.event.CANCEL
end
return {{ main = main }}
"""


def _write_project(root: Path, address: str, queue: str) -> None:
    """The project; the workflow IDs are ``<queue>-1`` ... ``<queue>-100``."""
    (root / "_index.yaml").write_text(textwrap.dedent(PROJECT.format(address=address, task_queue=queue)))
    (root / "job.lua").write_text(JOB)
    (root / "acts.lua").write_text(ACTS)
    (root / "loadgen.lua").write_text(LOADGEN.replace("{prefix}", queue))


def _start(root: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "wippy.cli", "run", str(root)], stdout=out, stderr=out,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# Reading back ---------------------------------------------------------------------------------
async def _completed(address: str, queue: str) -> int:
    from temporalio.client import Client

    client = await Client.connect(address)
    return (await client.count_workflows(
        f"TaskQueue = '{queue}' AND ExecutionStatus = 'Completed'")).count


async def _await_all(address: str, queue: str, timeout: float) -> dict[str, Any]:
    """Every job's result (by workflow ID), its runs, and the activity results in its history."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import Client, WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode

    from wippy.providers.temporal.converter import DATA_CONVERTER

    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    ids = [f"{queue}-{n}" for n in range(1, COUNT + 1)]

    async def result(workflow_id: str) -> Any:
        while True:  # a job the killed runtime had not started yet is started after the restart
            try:
                return await client.get_workflow_handle(workflow_id).result()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.1)

    results = await asyncio.wait_for(asyncio.gather(*(result(i) for i in ids)), timeout)
    completed = WorkflowExecutionStatus.COMPLETED
    deadline = time.monotonic() + 10
    while True:  # visibility (what list_workflows reads) may trail the results by a moment
        runs: dict[str, list[bool]] = {i: [] for i in ids}
        async for execution in client.list_workflows(f"TaskQueue = '{queue}'"):
            runs.setdefault(execution.id, []).append(execution.status == completed)
        if all(v == [True] for v in runs.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    conv = DATA_CONVERTER.payload_converter
    activities: dict[str, list[Any]] = {}
    for i in ids:
        history = await client.get_workflow_handle(i).fetch_history()
        activities[i] = [
            conv.from_payloads(e.activity_task_completed_event_attributes.result.payloads)[0]
            for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        ]
    return {"results": dict(zip(ids, results, strict=True)), "activities": activities, "runs": runs}


def test_sigkill_worker_mid_flight_every_workflow_completes_once(tmp_path: Path, temporal_server: TemporalServer) -> None:
    address = temporal_server.address
    queue = unique_queue("crash")
    _write_project(tmp_path, address, queue)
    log = tmp_path / "runtime.log"
    rng = random.Random(20261123)
    proc = _start(tmp_path, log)
    try:
        # Kill once a random number of workflows have completed: the others are being
        # started, in activities, in timers or waiting for their signal.
        target = rng.randint(5, 40)
        deadline = time.monotonic() + 30
        while asyncio.run(_completed(address, queue)) < target:
            if proc.poll() is not None:
                raise AssertionError("runtime exited by itself:\n" + log.read_text()[-3000:])
            assert time.monotonic() < deadline, f"not {target} workflows completed:\n" + log.read_text()[-3000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = asyncio.run(_completed(address, queue))
        assert before < COUNT, "every workflow finished before the kill: nothing was mid-flight"
        t0 = time.monotonic()
        print(f"killed with {before}/{COUNT} completed")
        proc = _start(tmp_path, log)
        seen = asyncio.run(_await_all(address, queue, 40))
        print(f"all {COUNT} completed {time.monotonic() - t0:.1f}s after the restart")
    finally:
        _stop(proc)

    assert 0 < before < COUNT
    for workflow_id, result in seen["results"].items():
        n = int(workflow_id.rsplit("-", 1)[1])
        assert result["n"] == n and result["value"] == n * 2 + 1000, (workflow_id, result)
        # Exactly one run per ID, and it completed.
        assert seen["runs"][workflow_id] == [True], (workflow_id, seen["runs"][workflow_id])
        # Each activity completed once in the history, and the result names those executions.
        done = seen["activities"][workflow_id]
        assert len(done) == 2, (workflow_id, done)
        assert result["runs"] == [d["run"] for d in done], (workflow_id, result, done)
    assert len(seen["runs"]) == COUNT, sorted(seen["runs"])
