"""Every value a workflow reads that differs from run to run is recorded, and a replay
answers it from the record: time.now, uuid v1/v4/v7, crypto random bytes and strings,
crypto encryption (its random nonce), the clock JWT verification reads (crypto.now) and
process.lookup.

The workflow reads them all, hands them to an activity (so the first run's values are in
the history, as the activity's arguments), then waits. The runtime stops; the next one
replays the run from the journal -- after the JWTs' exp/nbf times have passed, and without
the registered name -- and the workflow returns what it read on replay: it must equal what
it read the first time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

from tests.conftest import read_run, until
from wippy import Runtime, load_project
from wippy.providers import SpawnRequest
from wippy.providers.workflow.history import RECORDED_VALUES
from wippy.providers.workflow.host import WorkflowHost
from wippy.providers.workflow.journal import RunRecord

HOST = "app:wfs"
DEADLINE = 5.0  # seconds any single wait may take
JWT_WINDOW = 0.25  # seconds: the exp / nbf of the workflow's tokens, from its time.now
PEER = "recorded.peer"  # a name registered in the first runtime only

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: reader, kind: workflow.lua, source: file://wf.lua, method: reader, modules: [time, uuid, crypto, funcs]}
  - {name: observe, kind: function.lua, source: file://fn.lua, method: observe}
"""

WF = f"""\
local time = require("time")
local uuid = require("uuid")
local crypto = require("crypto")
local funcs = require("funcs")

local KEY = "0123456789abcdef0123456789abcdef"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function verdict(claims, err)
  if claims then return "valid" end
  return "rejected: " .. err:message()
end

local function reader()
  local now = time.now()
  local now_s = now:unix_nano() / 1e9
  -- Whether these verify depends on the clock crypto.jwt.verify reads (crypto.now): the
  -- first run verifies them at once; a replay comes after both times have passed.
  local fresh = assert(crypto.jwt.encode({{sub = "wf", iat = now_s, exp = now_s + {JWT_WINDOW}}}, KEY))
  local early = assert(crypto.jwt.encode({{sub = "wf", nbf = now_s + {JWT_WINDOW}}}, KEY))
  local peer, lookup_err = process.registry.lookup("{PEER}")
  local values = {{
    now = now:unix_nano(),
    uuid1 = uuid.v1(), uuid4 = uuid.v4(), uuid7 = uuid.v7(),
    bytes = hex(crypto.random.bytes(16)),
    text = crypto.random.string(24),
    sealed = hex(crypto.encrypt.aes("a secret", KEY)),
    jwt_fresh = verdict(crypto.jwt.verify(fresh, KEY)),
    jwt_early = verdict(crypto.jwt.verify(early, KEY, "HS256", false)),
    peer = peer or ("error: " .. tostring(lookup_err)),
  }}
  funcs.call("app:observe", values)  -- the first run's values, into the history
  process.inbox():receive()  -- the runtime stops here; the next one replays the run
  return values
end

return {{reader = reader}}
"""

FN = """\
return {observe = function(values) return true end}
"""


def test_recorded_values_are_replayed_from_the_journal(tmp_path: Path) -> None:
    root = tmp_path
    (root / "_index.yaml").write_text(INDEX)
    (root / "wf.lua").write_text(WF)
    (root / "fn.lua").write_text(FN)

    def observed(workflow_id: str) -> RunRecord | None:
        """The run once it has recorded the observe activity's result (or has closed)."""
        run = read_run(root, workflow_id)
        if run is None or run.history is None:
            return None
        done = any(r.get("in") == "done" for r in run.history)
        return run if done or run.status != "running" else None

    def closed(workflow_id: str) -> RunRecord | None:
        run = read_run(root, workflow_id)
        return run if run is not None and run.status != "running" else None

    async def first() -> tuple[str, str, RunRecord]:
        async with Runtime(load_project(root)) as rt:
            peer = rt.router.callback_pid(lambda event: None)
            rt.router.register(PEER, peer)
            host = rt.router.hosts[HOST]
            pid = host.spawn(SpawnRequest("app:reader", rt.kernel.lua_args([])))
            await host.barrier()
            workflow_id = pid.split("|", 1)[1].rstrip("}")
            return workflow_id, peer, await until(lambda: observed(workflow_id), "the values to be recorded", DEADLINE)

    workflow_id, peer, run = asyncio.run(first())
    assert run.status == "running", run.error
    assert run.history is not None
    (call,) = [r for r in run.history if r.get("op") == "funcs.call"]
    seen = call["args"][0]  # what the code read in the first run
    # every recorded command was used, each answer is in the history
    ops = Counter(r["op"] for r in run.history if r.get("op") in RECORDED_VALUES)
    assert ops == {"time.now": 1, "uuid.v1": 1, "uuid.v4": 1, "uuid.v7": 1, "crypto.random_bytes": 2,
                   "crypto.encrypt": 1, "crypto.now": 2, "process.lookup": 1}, ops
    # the first run: tokens verified right after they were made, the name registered
    assert seen["jwt_fresh"] == "valid", seen
    assert seen["jwt_early"].startswith("rejected: ") and "not valid yet" in seen["jwt_early"], seen
    assert seen["peer"] == peer

    # Down until both JWT times have passed: a clock read live on replay would now find
    # the fresh token expired and the early one valid.
    time.sleep(max(0.0, seen["now"] / 1e9 + JWT_WINDOW + 0.05 - time.time()))

    async def second() -> tuple[int, RunRecord]:
        async with Runtime(load_project(root)) as rt:
            assert PEER not in rt.router.names
            host = rt.router.hosts[HOST]
            assert isinstance(host, WorkflowHost)
            recovered = host.recovered
            assert rt.router.send(f"{{{HOST}|{workflow_id}}}", "go", rt.vm.to_lua(True), None)
            await host.barrier()
            done = await until(lambda: closed(workflow_id), "the workflow to complete", DEADLINE)
            return recovered, done

    recovered, done = asyncio.run(second())
    assert recovered == 1  # the run was resumed, i.e. replayed from its history
    assert done.status == "completed", done.error
    replayed = done.result
    for key in seen:  # one by one, for a readable failure
        assert replayed[key] == seen[key], (key, replayed[key], seen[key])
    assert replayed == seen
    # and nothing was computed again: the history holds the same recorded commands
    assert done.history is not None
    assert Counter(r["op"] for r in done.history if r.get("op") in RECORDED_VALUES) == ops
