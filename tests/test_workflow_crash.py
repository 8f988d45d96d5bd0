"""Crash safety of workflow.host: SIGKILL the runtime at random moments while 200 workflows
with activities, sleeps and signals are in flight; restart each time; every workflow must
complete exactly once with the right result, and no recorded activity result may be lost
or re-executed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from wippy.providers.workflow.journal import JournalReader

COUNT = 200

PROJECT = """
namespace: app
entries:
  - name: procs
    kind: process.host
    lifecycle: {auto_start: true}
  - name: workflows
    kind: workflow.host
    store: store/workflows.db
    lifecycle: {auto_start: true}
  - name: job
    kind: workflow.lua
    source: file://job.lua
    method: main
    modules: [funcs, time]
  - name: double
    kind: function.lua
    source: file://acts.lua
    method: double
    modules: [uuid]
  - name: add
    kind: function.lua
    source: file://acts.lua
    method: add
    modules: [uuid]
  - name: loadgen
    kind: process.lua
    source: file://loadgen.lua
    method: main
    modules: [time]
  - name: loadgen_service
    kind: process.service
    process: app:loadgen
    host: app:procs
    lifecycle:
      auto_start: true
      depends_on: [app:workflows]
      restart: {max_attempts: 1}
"""

JOB = """
local funcs = require("funcs")
local time = require("time")
local function main(n)
  local a = funcs.call("app:double", n)
  time.sleep((n % 7) * 15 .. "ms")
  local msg = process.inbox():receive()
  local b = funcs.call("app:add", a.value, msg:payload():data().bonus)
  return { n = n, value = b.value, runs = { a.run, b.run } }
end
return { main = main }
"""

ACTS = """
local uuid = require("uuid")
return {
  -- Each execution gets a fresh id, so a re-executed activity would change the result.
  double = function(n) return { value = n * 2, run = uuid.v4() } end,
  add = function(a, b) return { value = a + b, run = uuid.v4() } end,
}
"""

LOADGEN = f"""
local time = require("time")
local function main()
  for n = 1, {COUNT} do
    -- After a crash this runs again: running workflows are reused (use_existing, the
    -- default) and finished ones are refused, so each ID completes exactly once.
    local spawner = process.with_options({{
      ["temporal.workflow.id"] = "job-" .. n,
      ["temporal.workflow.id_reuse_policy"] = "reject_duplicate",
    }})
    local pid, err = spawner:spawn("app:job", "app:workflows", n)
    if not err then process.send(pid, "bonus", {{bonus = 1000}}) end
  end
  process.inbox():receive()  -- stay up
end
return {{ main = main }}
"""


def _write_project(root: Path) -> None:
    (root / "_index.yaml").write_text(textwrap.dedent(PROJECT))
    (root / "job.lua").write_text(JOB)
    (root / "acts.lua").write_text(ACTS)
    (root / "loadgen.lua").write_text(LOADGEN)


def _start(root: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "wippy.cli", "run", str(root)], stdout=out, stderr=out,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _status(store: Path) -> dict[str, int]:
    if not store.exists():
        return {}
    try:
        reader = JournalReader(str(store))
    except Exception:
        return {}
    try:
        counts: dict[str, int] = {}
        for run in reader.runs():
            counts[run.status] = counts.get(run.status, 0) + 1
        return counts
    finally:
        reader.close()


def test_sigkill_three_times_every_workflow_completes_once(tmp_path: Path) -> None:
    _write_project(tmp_path)
    store = tmp_path / "store" / "workflows.db"
    log = tmp_path / "runtime.log"
    rng = random.Random(20261122)
    kills = 0
    proc = _start(tmp_path, log)
    try:
        while kills < 3:
            time.sleep(rng.uniform(0.3, 1.2))  # a random moment: this is the point of the test
            if proc.poll() is not None:
                raise AssertionError("runtime exited by itself:\n" + log.read_text()[-3000:])
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            proc = _start(tmp_path, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _status(store).get("completed", 0) >= COUNT:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    reader = JournalReader(str(store))
    try:
        runs = reader.runs()
        by_workflow: dict[str, list] = {}
        for run in runs:
            by_workflow.setdefault(run.workflow_id, []).append(run)
        assert len(by_workflow) == COUNT, log.read_text()[-3000:]
        for workflow_id, group in by_workflow.items():
            assert [r.status for r in group] == ["completed"], (workflow_id, [r.status for r in group], group[0].error)
            run = reader.run(workflow_id)
            assert run is not None and run.history is not None
            n = int(workflow_id.split("-")[1])
            assert run.result["n"] == n and run.result["value"] == n * 2 + 1000
            # Each activity completed exactly once in the history, and the result carries
            # exactly the executions that history recorded.
            done = [e for e in run.history if e.get("in") == "done" and "v" in e and isinstance(e["v"], dict)
                    and "run" in e["v"]]
            assert len(done) == 2, run.history
            assert run.result["runs"] == [d["v"]["run"] for d in done]
    finally:
        reader.close()
