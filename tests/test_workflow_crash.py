"""Crash safety of workflow.host: SIGKILL the runtime three times while 200 workflows with
activities, sleeps and signals are in flight; restart each time; every workflow must
complete exactly once with the right result, and no recorded activity result may be lost
or re-executed.

The kills are placed by progress, not by the clock: each comes once a given number of
workflows has completed (read from the journal), and the journal must show workflows
still open at every kill -- so the restarts have open runs to resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from wippy.providers.workflow.journal import JournalReader

COUNT = 200
FIRST_KILL, KILL_STEP = 25, 50  # killed at 25 completed workflows, then each time 50 more have completed
PHASE_DEADLINE = 30.0  # seconds the runtime may take to reach the next kill point (or the end)

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
  -- stay up until the runtime stops (a CANCEL: ignoring it would hold the stop up)
  local events = process.events()
  while events:receive().kind ~= process.event.CANCEL do end
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
        return dict(reader.conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
    except Exception:
        return {}
    finally:
        reader.close()


def _wait_completed(store: Path, proc: subprocess.Popen[bytes], log: Path, count: int) -> None:
    """Return once ``count`` workflows have completed (polling the journal, read-only)."""
    deadline = time.monotonic() + PHASE_DEADLINE
    while _status(store).get("completed", 0) < count:
        if proc.poll() is not None:
            raise AssertionError("runtime exited by itself:\n" + log.read_text()[-3000:])
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} workflows completed after {PHASE_DEADLINE}s: "
                                 f"{_status(store)}\n" + log.read_text()[-3000:])
        time.sleep(0.005)  # a poll interval: the journal is the only view of the progress


def test_sigkill_three_times_every_workflow_completes_once(tmp_path: Path) -> None:
    _write_project(tmp_path)
    store = tmp_path / "store" / "workflows.db"
    log = tmp_path / "runtime.log"
    at_kills: list[dict[str, int]] = []
    proc = _start(tmp_path, log)
    try:
        threshold = FIRST_KILL
        for _ in range(3):
            _wait_completed(store, proc, log, threshold)  # this runtime has made progress
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            at_kills.append(_status(store))  # what the killed runtime left in the journal
            threshold = at_kills[-1].get("completed", 0) + KILL_STEP
            proc = _start(tmp_path, log)
        deadline = time.monotonic() + PHASE_DEADLINE
        while time.monotonic() < deadline:
            if _status(store).get("completed", 0) >= COUNT:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    # Every kill came mid-flight: runs were open (started, not completed) when it came, so
    # the next runtime had to resume them for the checks below to pass.
    assert len(at_kills) == 3
    for counts in at_kills:
        assert counts.get("completed", 0) < COUNT, at_kills
        assert counts.get("running", 0) > 0, at_kills

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
