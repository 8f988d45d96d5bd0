"""The on-disk history format of workflow.host (wippy/providers/workflow/history.py).

Every record is built by one constructor there; these tests pin the bytes: each
constructor packs exactly as the dict literals the code wrote before the format had a
module, and a journal written with those literal dicts replays through today's code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from wippy import Runtime, load_project
from wippy.errors import INVALID, WippyError
from wippy.lua.codec import pack, unpack
from wippy.providers.workflow import history
from wippy.providers.workflow.journal import Journal, JournalReader, RunRecord

ERR = WippyError(INVALID, "bad", retryable=False)

# (record built by the constructor, the literal dict older code wrote for it)
SHAPES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (history.value("time.now", [1, 2]), {"op": "time.now", "v": [1, 2]}),
    (history.activity("funcs.call", "app:f", [1, "x"], {"t": 1}, None),
     {"op": "funcs.call", "key": "app:f", "args": [1, "x"], "ctx": {"t": 1}, "opts": None}),
    (history.future_cancel(4), {"op": "future.cancel", "key": 4}),
    (history.sleep(10**18), {"op": "time.sleep", "at": 10**18}),
    (history.timer("time.ticker", 5, 7), {"op": "time.ticker", "at": 5, "every": 7}),
    (history.timer_stop(3), {"op": "time.stop", "key": 3}),
    (history.timer_reset(3, 9), {"op": "time.reset", "key": 3, "at": 9}),
    (history.child_spawn("app:c", "app:wfs", "w/1", "{app:wfs|w/1}", 3, [1], {"a": 1}, {"o": 2}, [("t", 1)]),
     {"op": "process.spawn", "key": "app:c", "host": "app:wfs", "child": "w/1", "pid": "{app:wfs|w/1}",
      "mode": 3, "args": [1], "ctx": {"a": 1}, "opts": {"o": 2}, "msgs": [("t", 1)]}),
    (history.spawned("app:p", "{app:procs|x}"), {"op": "process.spawn", "key": "app:p", "pid": "{app:procs|x}"}),
    (history.child_exec("app:c", "app:wfs", "w/2", [2], {"o": 1}, {"c": 1}, []),
     {"op": "process.exec", "key": "app:c", "host": "app:wfs", "child": "w/2", "args": [2], "opts": {"o": 1},
      "ctx": {"c": 1}, "msgs": []}),
    (history.effect("process.send", ["{a|b}", "t"]), {"op": "process.send", "key": ["{a|b}", "t"]}),
    (history.failed("process.spawn", "app:p", ERR), {"op": "process.spawn", "key": "app:p", "e": ERR}),
    (history.version("change", 2), {"op": "workflow.version", "key": "change", "v": 2}),
    (history.attrs(), {"op": "workflow.attrs"}),
    (history.too_large("funcs.call", "app:f", "too big"), {"op": "funcs.call", "key": "app:f", "too_large": "too big"}),
    (history.done(5), {"in": "done", "ref": 5}),
    (history.done(5, 42), {"in": "done", "ref": 5, "v": 42}),
    (history.done(5, error=ERR), {"in": "done", "ref": 5, "e": ERR}),
    (history.done(5, None, None), {"in": "done", "ref": 5, "v": None, "e": None}),
    (history.message("go", None, {"n": 1}), {"in": "msg", "topic": "go", "from": None, "v": {"n": 1}}),
    (history.event({"kind": "EXIT", "from": "{a|b}", "result": {"value": 1, "error": None}}),
     {"in": "event", "event": {"kind": "EXIT", "from": "{a|b}", "result": {"value": 1, "error": None}}}),
]


@pytest.mark.parametrize(("built", "literal"), SHAPES, ids=[repr(s[1])[:40] for s in SHAPES])
def test_each_record_packs_exactly_as_the_old_literal_dict(built: dict[str, Any], literal: dict[str, Any]) -> None:
    assert pack(built) == pack(literal)
    assert history.is_input(unpack(pack(literal))) == ("in" in literal)


INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: flow, kind: workflow.lua, source: file://wf.lua, method: main, modules: [funcs, time, uuid, workflow]}
  - {name: double, kind: function.lua, source: file://fn.lua, method: double}
"""

WF = """\
local funcs = require("funcs")
local time = require("time")
local uuid = require("uuid")
local workflow = require("workflow")
return { main = function(n)
  local id = uuid.v4()
  local doubled = funcs.call("app:double", n)
  local v = workflow.version("change", 1, 2)
  time.sleep("10ms")
  local msg = process.inbox():receive()
  local after = funcs.call("app:double", 100)  -- live: the history ends before it
  return { id = id, doubled = doubled, version = v, topic = msg:topic(), msg = msg:payload():data(), after = after }
end }
"""

FN = "return { double = function(n) return n * 2 end }\n"

# A history as the code before history.py wrote it (plain literal dicts): the workflow got
# a uuid, called an activity (recorded result 99, not 3 * 2: replay must not re-run it),
# took version 1, slept, and received a message; then the host stopped.
OLD_HISTORY: list[dict[str, Any]] = [
    {"op": "uuid.v4", "v": ["recorded-uuid"]},
    {"op": "funcs.call", "key": "app:double", "args": [3], "ctx": None, "opts": None},
    {"in": "done", "ref": 1, "v": 99},
    {"op": "workflow.version", "key": "change", "v": 1},
    {"op": "time.sleep", "at": 1_000_000_000},
    {"in": "done", "ref": 4},
    {"in": "msg", "topic": "go", "from": None, "v": {"n": 1}},
]


def test_a_journal_written_with_the_old_literal_dicts_replays(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "_index.yaml").write_text(INDEX)
    (root / "wf.lua").write_text(WF)
    (root / "fn.lua").write_text(FN)
    store = root / "data" / "wf.db"

    async def write_old_store() -> None:
        journal = Journal(str(store))
        await journal.start()
        journal.create_run(RunRecord(
            run_id="r1", workflow_id="w1", host="app:wfs", entry="app:flow", status="running", input=[3],
            watchers={"monitors": [], "links": [], "exec": []}))
        for seq, record in enumerate(OLD_HISTORY):
            journal.append("r1", seq, pack(record))
        await journal.flush()
        await journal.close()

    async def resume() -> RunRecord:
        async with Runtime(load_project(root)) as rt:
            assert rt.router.hosts["app:wfs"].recovered == 1
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                reader = JournalReader(str(store))
                try:
                    run = reader.run("w1")
                finally:
                    reader.close()
                assert run is not None
                if run.status != "running":
                    return run
                assert asyncio.get_running_loop().time() < deadline, "the resumed run did not finish"
                await asyncio.sleep(0.02)

    asyncio.run(write_old_store())
    run = asyncio.run(resume())
    assert run.status == "completed", run.error
    assert run.result == {"id": "recorded-uuid", "doubled": 99, "version": 1, "topic": "go", "msg": {"n": 1},
                          "after": 200}
    assert run.history is not None
    assert run.history[:len(OLD_HISTORY)] == OLD_HISTORY
    # what the resumed run wrote has the same shapes
    assert run.history[len(OLD_HISTORY):] == [
        {"op": "funcs.call", "key": "app:double", "args": [100], "ctx": None, "opts": None},
        {"in": "done", "ref": 7, "v": 200},
    ]
