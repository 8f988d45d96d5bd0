"""``wippy workflows list|show|signal|cancel|terminate``, with and without a runtime
running the host (commands go through the store's mailbox)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_run, until
from tests.running import Running
from wippy import Runtime, load_project
from wippy.cli_workflows import open_admin
from wippy.errors import CANCELED, INVALID, NOT_FOUND, WippyError
from wippy.providers.workflow.execution import MAX_RECORD_BYTES

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: waiter, kind: workflow.lua, source: file://wf.lua, method: waiter, modules: [workflow]}
  - {name: cancellable, kind: workflow.lua, source: file://wf.lua, method: cancellable, modules: [workflow]}
  - {name: start, kind: process.lua, source: file://start.lua, method: start}
  - {name: send, kind: process.lua, source: file://start.lua, method: send}
  - {name: boot, kind: process.lua, source: file://start.lua, method: boot}
"""

LIVE = """\
  - {name: booter, kind: process.service, process: boot, host: procs, lifecycle: {auto_start: true}}
"""

WF = """\
local workflow = require("workflow")

local function waiter(customer, tier)
  workflow.attrs({search = {customer = customer, tier = tier}})
  local msg = process.inbox():receive()
  return {customer = customer, topic = msg:topic(), payload = msg:payload():data()}
end

local function cancellable()
  local ev = process.events():receive()
  return {event = ev.kind == process.event.CANCEL and "CANCEL" or ev.kind}
end

return {waiter = waiter, cancellable = cancellable}
"""

START = """\
local function start(specs)
  for _, s in ipairs(specs) do
    local _, err = process.with_options({["temporal.workflow.id"] = s.id}):spawn(s.entry, "app:wfs", table.unpack(s.args))
    if err then error(err) end
  end
  return true
end

local function send(pid, topic, payload)
  local ok, err = process.send(pid, topic, payload)
  if not ok then error(err) end
  return true
end

local function boot()  -- the live test: one workflow waiting for a signal
  return start({{entry = "app:waiter", id = "live-1", args = {"carol", "gold"}}})
end

return {start = start, send = send, boot = boot}
"""


def make_project(root: Path, *, live: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(INDEX + (LIVE if live else ""))
    (root / "wf.lua").write_text(WF)
    (root / "start.lua").write_text(START)
    return root


def wippy(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", *args], capture_output=True, text=True,
                          input=stdin, timeout=30)


def start_workflows(root: Path, specs: list[dict[str, Any]], messages: list[tuple[str, str, Any]] = ()) -> None:
    """Run the project in this process long enough to start ``specs`` and send ``messages``;
    the workflows that are left waiting stay open in the store."""

    async def main() -> None:
        async with Runtime(load_project(root)) as rt:
            await rt.run("app:start", specs)
            for workflow_id, topic, payload in messages:
                await rt.run("app:send", f"{{app:wfs|{workflow_id}}}", topic, payload)
            ids = [s["id"] for s in specs]
            done = {w for w, _, _ in messages}
            # every workflow has got as far as it goes before the host stops
            await until(lambda: all((r := read_run(root, i)) is not None and (
                r.status == "completed" if i in done else len(r.history) >= (1 if r.entry == "app:waiter" else 0))
                for i in ids), "every workflow as far as it goes", timeout=5.0)

    asyncio.run(main())


# Reading: list and show ------------------------------------------------------------------------
def test_list_and_show(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [
        {"entry": "app:waiter", "id": "w-a", "args": ["alice", "gold"]},
        {"entry": "app:waiter", "id": "w-b", "args": ["bob", "silver"]},
    ], messages=[("w-b", "go", {"n": 2})])

    table = wippy("workflows", "list", str(root))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["WORKFLOW", "ID", "STATUS", "ENTRY"]
    row_a = next(line for line in lines if line.startswith("w-a"))
    row_b = next(line for line in lines if line.startswith("w-b"))
    assert "running" in row_a and "app:waiter" in row_a and "customer=alice tier=gold" in row_a
    assert "completed" in row_b and "customer=bob" in row_b
    assert "2 workflows (1 running)" in table.stdout

    def ids(*extra: str) -> list[str]:
        out = wippy("workflows", "list", str(root), "--json", *extra)
        assert out.returncode == 0, out.stderr
        return [r["workflow_id"] for r in json.loads(out.stdout)]

    assert ids("--status", "running") == ["w-a"]
    assert ids("--attr", "customer=bob") == ["w-b"]
    assert ids("--attr", "tier=gold", "--attr", "customer=alice") == ["w-a"]
    none = wippy("workflows", "list", str(root), "--attr", "customer=zed")
    assert none.returncode == 0 and "no workflows with customer=zed" in none.stdout

    shown = wippy("workflows", "show", str(root), "w-b")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "status    completed" in out and '"payload": {"n": 2}' in out and "history   2 records" in out
    history = out[out.index("SEQ"):].splitlines()
    assert history[0].split() == ["SEQ", "KIND", "OP", "KEY/REF", "VALUE"]
    assert history[1].split()[:3] == ["0", "command", "workflow.attrs"]
    assert history[2].split()[:6] == ["1", "input", "msg", "go", '{"n":', "2}"] and "from {app:procs|" in history[2]

    missing = wippy("workflows", "show", str(root), "nope")
    assert missing.returncode == 1 and f"{NOT_FOUND}: no workflow 'nope'" in missing.stderr


# Commands without a runtime: queued, carried out on the next start -------------------------------
def test_commands_wait_in_the_store_until_the_host_starts(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [
        {"entry": "app:waiter", "id": "q-sig", "args": ["dora", "gold"]},
        {"entry": "app:cancellable", "id": "q-cancel", "args": []},
        {"entry": "app:waiter", "id": "q-term", "args": ["eve", "gold"]},
    ])

    sent = wippy("workflows", "signal", str(root), "q-sig", "go", '{"n": 1}', "--wait", "0")
    assert sent.returncode == 0, sent.stderr
    assert "queued" in sent.stdout and "app:wfs carries it out when it runs" in sent.stdout
    assert wippy("workflows", "cancel", str(root), "q-cancel", "--reason", "cli says stop", "--wait", "0").returncode == 0
    assert wippy("workflows", "terminate", str(root), "q-term", "--wait", "0").returncode == 0
    shown = wippy("workflows", "show", str(root), "q-sig")
    assert "pending   signal 'go' {\"n\": 1}" in shown.stdout

    # refused at insert time: unknown workflow, bad input
    unknown = wippy("workflows", "signal", str(root), "nope", "go", "--wait", "0")
    assert unknown.returncode == 1 and f"{NOT_FOUND}: no workflow 'nope'" in unknown.stderr
    big = wippy("workflows", "signal", str(root), "q-sig", "big", "-", "--wait", "0",
                stdin=json.dumps("x" * (MAX_RECORD_BYTES + 10)))
    assert big.returncode == 1 and f"{INVALID}: " in big.stderr and str(MAX_RECORD_BYTES) in big.stderr

    async def restart() -> int:
        async with Runtime(load_project(root)) as rt:
            await until(lambda: all(read_run(root, i).status != "running" for i in ("q-sig", "q-cancel", "q-term")),
                        "the three queued commands carried out", timeout=5.0)
            return rt.router.hosts["app:wfs"].recovered

    assert asyncio.run(restart()) == 3
    sig, cancel, term = (read_run(root, i) for i in ("q-sig", "q-cancel", "q-term"))
    assert sig.status == "completed" and sig.result == {"customer": "dora", "topic": "go", "payload": {"n": 1}}
    assert [r for r in sig.history if r.get("in") == "msg"] == [{"in": "msg", "topic": "go", "from": None, "v": {"n": 1}}]
    assert cancel.status == "completed" and cancel.result == {"event": "CANCEL"}
    event = next(r["event"] for r in cancel.history if r.get("in") == "event")
    assert event["kind"] == "CANCEL" and event["reason"] == "cli says stop"
    assert term.status == "terminated" and term.error.kind == CANCELED
    conn = sqlite3.connect(root / "data/wf.db")
    assert conn.execute("SELECT COUNT(*) FROM commands").fetchone() == (0,)  # each carried out once
    conn.close()

    closed = wippy("workflows", "signal", str(root), "q-sig", "go", "--wait", "0")
    assert closed.returncode == 1 and "is completed" in closed.stderr


def test_bad_arguments_exit_2_before_touching_the_store(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    bad_json = wippy("workflows", "signal", str(root), "w", "go", "{oops")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    reserved = wippy("workflows", "signal", str(root), "w", "@exit", "1")
    assert reserved.returncode == 2 and "'@exit'" in reserved.stderr
    bad_attr = wippy("workflows", "list", str(root), "--attr", "customer")
    assert bad_attr.returncode == 2 and "KEY=VALUE" in bad_attr.stderr
    assert not (root / "data").exists()


def test_choosing_the_store(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    index = root / "_index.yaml"
    index.write_text(index.read_text() + "  - {name: other, kind: workflow.host, store: other.db}\n")
    with pytest.raises(WippyError, match="several workflow hosts: app:other \\(workflow.host: .*other.db\\), "
                                         "app:wfs \\(workflow.host: .*wf.db\\); pick one with --host"):
        open_admin(str(root), None)
    assert open_admin(str(root), "other").location == str(root / "other.db")
    chosen = open_admin(str(root), "app:wfs")
    assert chosen.location == str(root / "data/wf.db") and chosen.hosts == {"app:wfs"}
    with pytest.raises(WippyError, match="no workflow host 'nope'.*app:other, app:wfs"):
        open_admin(str(root), "nope")
    index.write_text(index.read_text().replace("store: other.db", "store: data/wf.db"))
    shared = open_admin(str(root), None)  # one shared store: fine, every workflow in it
    assert shared.location == str(root / "data/wf.db") and shared.hosts is None
    index.write_text(INDEX.replace("store: data/wf.db", 'store: ":memory:"'))
    with pytest.raises(WippyError, match="in memory"):
        open_admin(str(root), None)
    index.write_text("namespace: app\nentries:\n  - {name: procs, kind: process.host}\n")
    with pytest.raises(WippyError, match="no workflow host entry \\(kinds .*temporal.worker, workflow.host"):
        open_admin(str(root), None)

    empty = wippy("workflows", "list", str(make_project(tmp_path / "fresh")))
    assert empty.returncode == 0 and "no workflows in" in empty.stdout  # the host never ran


# Live: `wippy run` in one process, `wippy workflows signal` from another ---------------------------
def test_signal_from_another_process_completes_a_workflow_of_a_running_host(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", live=True)

    first = Running(root)  # starts live-1, which waits for a signal
    try:
        first.wait_for("press Ctrl-C")
        deadline = time.monotonic() + 10
        while (run := read_run(root, "live-1") if (root / "data/wf.db").exists() else None) is None \
                or len(run.history) < 1:
            assert time.monotonic() < deadline, "live-1 did not start"
            time.sleep(0.05)
    finally:
        assert first.stop() == 0
    assert "wippy: app:wfs resumed 0 open workflows" in first.lines

    second = Running(root)
    try:
        second.wait_for("press Ctrl-C")
        assert "wippy: app:wfs resumed 1 open workflow" in second.lines
        sent = wippy("workflows", "signal", str(root), "live-1", "go", '{"from": "cli"}')
        assert sent.returncode == 0, sent.stderr
        assert "carried out by the running host app:wfs" in sent.stdout
        deadline = time.monotonic() + 10
        while True:
            shown = wippy("workflows", "show", str(root), "live-1", "--json")
            assert shown.returncode == 0, shown.stderr
            data = json.loads(shown.stdout)
            if data["status"] == "completed":
                break
            assert time.monotonic() < deadline, f"live-1 is still {data['status']}"
            time.sleep(0.1)
    finally:
        assert second.stop() == 0
    assert data["result"] == {"customer": "carol", "payload": {"from": "cli"}, "topic": "go"}
    assert data["pending"] == []
    assert [h for h in data["history"] if h.get("in") == "msg"] == [
        {"in": "msg", "topic": "go", "from": None, "v": {"from": "cli"}}]


# Faults: a damaged store, a reader that stops early, a provider the CLI does not know ---------------
def _damage(store: Path, how: str, pristine: bytes) -> None:
    if how == "pages":  # SQLite's header and schema page intact, the tables' pages garbage
        store.write_bytes(pristine[:4096] + bytes((i * 7 + 13) % 251 for i in range(len(pristine) - 4096)))
    elif how == "whole":
        store.write_bytes(b"this is not a database, it is garbage " * 200)
    else:
        store.write_bytes(b"")  # truncated


@pytest.mark.parametrize("how", ["pages", "whole", "truncated"])
def test_a_damaged_store_is_named_and_left_alone(tmp_path: Path, how: str) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [{"entry": "app:waiter", "id": "d-1", "args": ["fay", "gold"]}])
    store = root / "data/wf.db"
    _damage(store, how, store.read_bytes())
    damaged = store.read_bytes()
    expected = "is empty (0 bytes)" if how == "truncated" else "is damaged"
    for args in (("list",), ("list", "--json"), ("show", "d-1"), ("signal", "d-1", "go", "1"),
                 ("cancel", "d-1"), ("terminate", "d-1")):
        out = wippy("workflows", args[0], str(root), *args[1:], "--wait", "0") if args[0] not in ("list", "show") \
            else wippy("workflows", args[0], str(root), *args[1:])
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert out.stdout == "" and "queued" not in out.stderr, args
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert lines[0].startswith("error: ") and str(store) in lines[0] and expected in lines[0], lines[0]
        assert "move it aside" in lines[0]  # what to do
        assert store.read_bytes() == damaged, args  # nothing written into it


def test_list_piped_into_a_reader_that_stops_early(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [{"entry": "app:waiter", "id": f"pipe-{i:02d}", "args": [f"customer-{i}-" + "x" * 2000, "gold"]}
                           for i in range(40)])  # ~170 KB of JSON: more than a pipe holds
    piped = subprocess.run(f"'{sys.executable}' -m wippy.cli workflows list '{root}' --json | head -n 3", shell=True,
                           capture_output=True, text=True, timeout=30)
    assert piped.stdout.splitlines() == ["[", "  {", '    "workflow_id": "pipe-00",']
    assert piped.stderr == ""

    proc = subprocess.Popen([sys.executable, "-m", "wippy.cli", "workflows", "list", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(11) == b"WORKFLOW ID"
    proc.stdout.close()  # the reader goes away with most of the table unread
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141 and err == b""  # 128 + SIGPIPE, as a shell tool would end


def test_any_kind_with_an_admin_is_a_workflow_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI finds durable hosts through the kind table and talks only to the admin
    protocol: a plugin's kind works without the CLI knowing its name."""
    from wippy.cli import main
    from wippy.errors import UNAVAILABLE
    from wippy.providers import (
        CommandResult,
        HistoryEvent,
        ListInput,
        ProviderSpec,
        SignalInput,
        Text,
        Value,
        WorkflowAdmin,
        WorkflowDetails,
        WorkflowHistory,
        WorkflowRun,
    )
    from wippy.registry.kinds import KINDS

    closed: list[str] = []

    class QueueAdmin(WorkflowAdmin):
        @property
        def location(self) -> str:
            return f"queue {self.entry.data['queue']}"

        def _run(self) -> WorkflowRun:
            return WorkflowRun("job-1", "r-1", "running", self.entry.id, "acme.job", None, 1.0, None, {"tier": "gold"})

        async def list(self, query: ListInput) -> list[WorkflowRun]:
            return [r for r in [self._run()] if query.status in (None, r.status)]

        async def show(self, workflow_id: str) -> WorkflowDetails:
            if workflow_id != "job-1":
                raise WippyError(NOT_FOUND, f"no workflow {workflow_id!r} {self.where}")
            step = HistoryEvent(("1", Text(("started", Value({"a": 1})))), {"n": 1})
            return WorkflowDetails(self._run(), input=[7], history=WorkflowHistory(("N", "WHAT"), [step], 10, "step"))

        async def signal(self, request: SignalInput) -> CommandResult:
            return CommandResult(request.workflow_id, f"signal {request.topic!r} noted: {request.payload}", True)

        async def cancel(self, request: Any) -> CommandResult:
            raise WippyError(UNAVAILABLE, "the queue server at q.example is down")

        terminate = cancel

        async def close(self) -> None:
            closed.append(self.entry.id)

    monkeypatch.setitem(KINDS, "acme.queue", ProviderSpec("acme.queue", admin=QueueAdmin))
    root = tmp_path / "q"
    root.mkdir()
    (root / "_index.yaml").write_text("namespace: app\nentries:\n  - {name: jobs, kind: acme.queue, queue: q1}\n")

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["workflows", args[0], str(root), *args[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = cli("list")
    assert code == 0 and "job-1" in out and "acme.job" in out and "tier=gold" in out
    assert "1 workflow (1 running) in queue q1" in out
    assert cli("list", "--status", "completed")[1] == "no workflows with status completed in queue q1\n"
    code, out, _ = cli("show", "job-1")
    assert code == 0 and "type      acme.job (no workflow.lua entry of this project)" in out
    assert "history   1 step, 10 bytes" in out and out.rstrip().endswith('1  started {"a": 1}')
    assert json.loads(cli("show", "job-1", "--json")[1])["history"] == [{"n": 1}]
    assert cli("show", "nope")[2] == f"error: {NOT_FOUND}: no workflow 'nope' in queue q1\n"
    assert cli("signal", "job-1", "go", "[1]")[1] == "signal 'go' noted: [1]\n"
    assert cli("terminate", "job-1") == (1, "", f"error: {UNAVAILABLE}: the queue server at q.example is down\n")
    assert cli("signal", "job-1", "@exit")[0] == 2
    assert closed == ["app:jobs"] * 7  # every admin opened was closed
