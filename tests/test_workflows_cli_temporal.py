"""``wippy workflows list|show|signal|cancel|terminate`` on a ``temporal.worker``: the
commands talk to the real Temporal dev server (the ``temporal_server`` fixture) while a
wippy runtime in this process runs the worker; the CLI runs as a subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.temporal_server import TemporalServer, free_port, temporal_project_yaml
from wippy import Runtime, load_project
from wippy.cli_workflows import open_admin
from wippy.errors import CANCELED, INVALID, NOT_FOUND, UNAVAILABLE, WippyError
from wippy.providers.temporal.admin import (
    TemporalAdmin,
    WorkerTarget,
    attr_condition,
    visibility_query,
)

pytest_plugins = ["tests.temporal_server"]

T = TypeVar("T")

WF = """\
local workflow = require("workflow")
local funcs = require("funcs")

local function waiter(customer, tier)
  workflow.attrs({search = {customer_id = customer, tier = tier}, memo = {note = "for " .. customer}})
  local hello = funcs.call("app:greet", customer)
  local msg = process.inbox():receive()
  local data = msg:payload():data()
  if type(data) == "table" and data.fail then
    return nil, errors.new({kind = errors.INVALID, message = "rejected: " .. data.fail, retryable = false})
  end
  return {customer = customer, hello = hello, topic = msg:topic(), payload = data}
end

return {waiter = waiter}
"""

CANCELLABLE = """\
return {main = function()
  local ev = process.events():receive()
  local kind = ev.kind == process.event.CANCEL and "CANCEL" or ev.kind
  return {event = kind, reason = ev.reason, deadline = ev.deadline}
end}
"""

START = """\
local function start(specs)
  for _, s in ipairs(specs) do
    local _, err = process.with_options({["temporal.workflow.id"] = s.id}):spawn(s.entry, "app:worker",
                                                                                  table.unpack(s.args))
    if err then error(err) end
  end
  return true
end
return {start = start}
"""

ENTRIES = """\
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: waiter, kind: workflow.lua, source: file://wf.lua, method: waiter, modules: [workflow, funcs]}
  - {name: cancellable, kind: workflow.lua, source: file://cancellable.lua, method: main}
  - {name: greet, kind: function.lua, source: file://greet.lua, method: greet}
  - {name: start, kind: process.lua, source: file://start.lua, method: start}
"""


def make_project(root: Path, server: TemporalServer | str, **kwargs: Any) -> str:
    root.mkdir(parents=True, exist_ok=True)
    (root / "wf.lua").write_text(WF)
    (root / "cancellable.lua").write_text(CANCELLABLE)
    (root / "greet.lua").write_text('return {greet = function(name) return "hello " .. name end}\n')
    (root / "start.lua").write_text(START)
    return temporal_project_yaml(root, server, namespace="app", entries=ENTRIES, **kwargs)


def wippy(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", "workflows", args[0], str(root), *args[1:]],
                          capture_output=True, text=True, input=stdin, timeout=30)


def ok(root: Path, *args: str, stdin: str | None = None) -> str:
    proc = wippy(root, *args, stdin=stdin)
    assert proc.returncode == 0, f"wippy workflows {' '.join(args)}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
    assert "Fatal Python error" not in proc.stderr
    return proc.stdout


def ok_json(root: Path, *args: str) -> Any:
    return json.loads(ok(root, *args, "--json"))


def until(check: Callable[[], T], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def with_worker(root: Path, specs: list[dict[str, Any]], body: Callable[[], T]) -> T:
    """Start ``specs`` from a wippy runtime whose ``temporal.worker`` polls the server, then
    run ``body()`` (blocking CLI calls, in a thread) while the worker keeps running."""

    async def main() -> T:
        async with Runtime(load_project(root)) as rt:
            await rt.run("app:start", specs)
            return await asyncio.wait_for(asyncio.to_thread(body), 50)

    return asyncio.run(main())


def test_list_signal_show_cancel_terminate(tmp_path: Path, temporal_server: TemporalServer) -> None:
    root = tmp_path / "p"
    queue = make_project(root, temporal_server)
    specs = [
        {"entry": "app:waiter", "id": "t-alice", "args": ["alice", "gold"]},
        {"entry": "app:waiter", "id": "t-bob", "args": ["bob", "silver"]},
        {"entry": "app:waiter", "id": "t-carol", "args": ["carol", "gold"]},
        {"entry": "app:waiter", "id": "t-dave", "args": ["dave", "bronze"]},
        {"entry": "app:cancellable", "id": "t-cancel", "args": []},
    ]

    def body() -> None:
        # list: every workflow of the worker's task queue, with the search attributes they set
        def all_running() -> list[dict[str, Any]] | None:
            runs = ok_json(root, "list")
            waiting = [r for r in runs if r["status"] == "running" and (r["entry"] == "app:cancellable" or r["search"])]
            return runs if len(waiting) == len(specs) else None

        runs = until(all_running, "the workflows to start and set their search attributes")
        alice = next(r for r in runs if r["workflow_id"] == "t-alice")
        assert alice["entry"] == "app:waiter" and alice["host"] == "app:worker" and alice["task_queue"] == queue
        assert alice["search"] == {"customer_id": "alice", "tier": "gold"} and alice["memo"] == {"note": "for alice"}
        table = ok(root, "list")
        assert table.splitlines()[0].split()[:4] == ["WORKFLOW", "ID", "STATUS", "ENTRY"]
        row = next(line for line in table.splitlines() if line.startswith("t-alice"))
        assert "running" in row and "app:waiter" in row and "customer_id=alice tier=gold" in row
        assert f"5 workflows (5 running) on task queue {queue} (namespace default at {temporal_server.address})" \
            in table

        # --attr: a visibility query on the search attributes (keywords compared as strings)
        def ids(*extra: str) -> list[str]:
            return sorted(r["workflow_id"] for r in ok_json(root, "list", *extra))

        assert ids("--attr", "tier=gold") == ["t-alice", "t-carol"]
        assert ids("--attr", "tier=gold", "--attr", "customer_id=carol") == ["t-carol"]
        assert ids("--attr", "tier=it's") == []  # quoted properly
        none = ok(root, "list", "--attr", "customer_id=zed", "--status", "running")
        assert "no workflows with status running and customer_id=zed on task queue" in none
        bad_number = wippy(root, "list", "--attr", "order_total=lots")
        assert bad_number.returncode == 2 and "order_total is a Double search attribute" in bad_number.stderr
        unknown_attr = wippy(root, "list", "--attr", "no_such_attr=1")
        assert unknown_attr.returncode == 2 and "no_such_attr" in unknown_attr.stderr

        # signal completes a waiting workflow; show has the result and the decoded history
        sent = ok(root, "signal", "t-alice", "go", '{"n": 1}')
        assert "signal 'go' for workflow t-alice: delivered; a worker on task queue" in sent
        shown = until(lambda: (d := ok_json(root, "show", "t-alice"))["status"] == "completed" and d,
                      "t-alice to complete")
        assert shown["result"] == {"customer": "alice", "hello": "hello alice", "topic": "go", "payload": {"n": 1}}
        assert shown["input"] == ["alice", "gold"] and shown["error"] is None
        assert shown["search"] == {"customer_id": "alice", "tier": "gold"} and shown["memo"] == {"note": "for alice"}
        types = [e["type"] for e in shown["history"]]
        assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionCompleted"
        signaled = next(e for e in shown["history"] if e["type"] == "WorkflowExecutionSignaled")
        assert signaled["data"] == {"signal": "go", "input": [{"n": 1}, None]}  # [payload, sender]
        text = ok(root, "show", "t-alice")
        assert "status    completed" in text and "entry     app:waiter" in text
        assert 'result    {"customer": "alice", "hello": "hello alice", "payload": {"n": 1}, "topic": "go"}' in text
        history = text[text.index("\nID "):].strip().splitlines()
        assert history[0].split() == ["ID", "TIME", "TYPE", "DETAILS"]
        assert history[1].split()[:1] + history[1].split()[2:] == ["1", "WorkflowExecutionStarted", "app:waiter",
                                                                    '["alice",', '"gold"]']
        assert any(line.split()[2:] == ["ActivityTaskScheduled", "app:greet", '["alice"]'] for line in history)
        assert any(line.split()[2:] == ["ActivityTaskCompleted", '"hello', 'alice"'] for line in history)
        assert any(line.split()[2:] == ["WorkflowExecutionSignaled", "go", '{"n":', "1}"] for line in history)

        # a Lua error shows as the failure's kind and message; the payload comes from stdin
        ok(root, "signal", "t-bob", "go", "-", stdin='{"fail": "no stock"}')
        bob = until(lambda: (d := ok_json(root, "show", "t-bob"))["status"] == "failed" and d, "t-bob to fail")
        assert bob["error"] == {"kind": INVALID, "message": "rejected: no stock", "retryable": False}
        assert f"error     {INVALID}: rejected: no stock" in ok(root, "show", "t-bob")

        # terminate; a second terminate, a signal to a closed workflow and unknown IDs are errors
        assert "terminated workflow t-carol" in ok(root, "terminate", "t-carol")
        carol = ok_json(root, "show", "t-carol")
        assert carol["status"] == "terminated" and carol["error"]["kind"] == CANCELED
        again = wippy(root, "terminate", "t-carol")
        assert again.returncode == 1 and "t-carol is terminated" in again.stderr
        closed = wippy(root, "signal", "t-alice", "go")
        assert closed.returncode == 1 and "t-alice is completed" in closed.stderr
        closed = wippy(root, "cancel", "t-alice")
        assert closed.returncode == 1 and "t-alice is completed" in closed.stderr
        for args in (("show", "nope"), ("signal", "nope", "go", "1"), ("terminate", "nope"), ("cancel", "nope")):
            missing = wippy(root, *args)
            assert missing.returncode == 1, args
            assert f"{NOT_FOUND}: no workflow 'nope' in namespace default at {temporal_server.address}" in missing.stderr

        # cancel: the Lua code gets a CANCEL event with the reason and deadline
        done = ok(root, "cancel", "t-cancel", "--reason", "cli says stop", "--deadline", "3")
        assert "cancel for workflow t-cancel: it finished as completed" in done
        assert ok_json(root, "show", "t-cancel")["result"] == {"event": "CANCEL", "reason": "cli says stop",
                                                               "deadline": 3000}
        # ... a workflow that ignores it keeps running: the deadline is enforced only while the
        # command waits for it
        ignored = ok(root, "cancel", "t-dave", "--wait", "0")
        assert "still running" in ignored and "deadline is not enforced from the command line" in ignored
        assert ok_json(root, "show", "t-dave")["status"] == "running"
        enforced = ok(root, "cancel", "t-dave", "--deadline", "0.5", "--wait", "1")
        assert "still running after the 0.5s deadline; terminated" in enforced
        dave = ok_json(root, "show", "t-dave")
        assert dave["status"] == "terminated" and "cancel deadline passed" in dave["error"]["message"]

        assert ids("--status", "running") == []
        assert ids("--status", "terminated") == ["t-carol", "t-dave"]

    with_worker(root, specs, body)


def test_unreachable_server_and_bad_arguments(tmp_path: Path) -> None:
    root = tmp_path / "p"
    address = f"127.0.0.1:{free_port()}"
    make_project(root, address)
    for args in (("list",), ("show", "w-1"), ("signal", "w-1", "go", "1"), ("terminate", "w-1")):
        down = wippy(root, *args)
        assert down.returncode == 1, args
        assert f"{UNAVAILABLE}: cannot reach the Temporal server at {address} (app:temporal)" in down.stderr
        assert f"Start a local development server with `wippy temporal dev --port {address.split(':')[1]}`" \
            in down.stderr
        assert "Traceback" not in down.stderr and len(down.stderr.splitlines()) == 1
    bad_json = wippy(root, "signal", "w-1", "go", "{oops")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    reserved = wippy(root, "signal", "w-1", "__wippy_cancel", "{}")
    assert reserved.returncode == 2 and "belong to the runtime" in reserved.stderr
    bad_attr = wippy(root, "list", "--attr", "tier")
    assert bad_attr.returncode == 2 and "KEY=VALUE" in bad_attr.stderr


def test_choosing_a_temporal_worker(tmp_path: Path) -> None:
    root = tmp_path / "p"
    make_project(root, "127.0.0.1:7233", task_queue="orders", client_fields="tq_prefix: prod-\nnamespace: shop")
    admin = open_admin(str(root), None)
    assert isinstance(admin, TemporalAdmin)
    target = admin.target
    assert (target.host, target.client, target.task_queue) == ("app:worker", "app:temporal", "prod-orders")
    assert (target.address, target.namespace) == ("127.0.0.1:7233", "shop")
    assert target.types["app:waiter"] == "app:waiter"

    index = root / "_index.yaml"
    text = index.read_text()
    index.write_text(text + "  - {name: wfs, kind: workflow.host, store: wf.db}\n")
    with pytest.raises(WippyError, match="several workflow hosts: .*app:wfs \\(workflow.host: .*wf.db\\), "
                                         "app:worker \\(temporal.worker: task queue prod-orders \\(namespace shop "
                                         "at 127.0.0.1:7233\\)\\); pick one with --host"):
        open_admin(str(root), None)
    worker = open_admin(str(root), "worker")
    assert isinstance(worker, TemporalAdmin) and worker.target.task_queue == "prod-orders"
    assert open_admin(str(root), "wfs").location == str(root / "wf.db")
    with pytest.raises(WippyError, match="no workflow host 'nope'.*app:wfs, app:worker"):
        open_admin(str(root), "nope")

    index.write_text(text.replace("client: app:temporal", "client: app:missing"))
    with pytest.raises(WippyError, match="app:worker: field client: refers to app:missing"):
        open_admin(str(root), None)
    index.write_text(text.replace("namespace: shop", "namespace: ${env:WIPPY_NO_SUCH_VARIABLE}"))
    with pytest.raises(WippyError, match="app:temporal: namespace: environment variable WIPPY_NO_SUCH_VARIABLE"):
        open_admin(str(root), None)


def test_visibility_queries() -> None:
    target = WorkerTarget("app:worker", "app:temporal", None, "q'1", {})  # type: ignore[arg-type]
    assert visibility_query(target, "running", {"tier": "it's", "customer_id": "a\\b"}, None) == (
        "TaskQueue = 'q\\'1' AND ExecutionStatus = 'Running' AND tier = 'it\\'s' AND customer_id = 'a\\\\b'")
    assert attr_condition("order_total", "42.5", 4) == "order_total = 42.5"
    assert attr_condition("count", "7", 3) == "count = 7"
    assert attr_condition("vip", "TRUE", 5) == "vip = true"
    with pytest.raises(Exception, match="not a search attribute name"):
        attr_condition("a b", "1", None)
    with pytest.raises(Exception, match="Int search attribute"):
        attr_condition("count", "many", 3)
