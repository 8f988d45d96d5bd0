"""Interop with the rest of the Temporal world: the ``temporal`` CLI (a different SDK and
client) starts, signals and reads Lua workflows running on a wippy ``temporal.worker``.

The history must carry readable JSON (``json/plain``) for JSON values and
``binary/wippy-msgpack`` only for what JSON cannot hold (here: non-UTF-8 bytes); a Lua
error must show as an ApplicationError whose type is the error's kind; context values go
in the ``wippy-context`` header, which other clients can set too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.temporal_server import TemporalServer, temporal_project_yaml
from wippy import Runtime, load_project
from wippy.lua import codec

pytest_plugins = ["tests.temporal_server"]

T = TypeVar("T")
JSON, MSGPACK = "json/plain", "binary/wippy-msgpack"

ORDER = """
local funcs = require("funcs")
local ctx = require("ctx")

local function main(order, extra)
  local pay, err = funcs.call("app:charge", {amount = order.total, customer = order.customer})
  if err then return nil, err end
  local msg = process.inbox():receive()
  local approval = msg:payload():data()
  if order.fail == "invalid" then
    return nil, errors.new({kind = "Invalid", message = "order " .. order.id .. " rejected by " .. approval.by,
                            retryable = false})
  elseif order.fail == "retryable" then
    return nil, errors.new({kind = "Unavailable", message = "stock service down", retryable = true})
  elseif order.fail == "raise" then
    error("boom in " .. order.id)
  end
  local result = {
    order_id = order.id,
    status = "completed",
    charged = pay.charged,
    receipt = pay.receipt,
    approved_by = approval.by,
    topic = msg:topic(),
    items = order.items,
    extra = extra,
    user = ctx.get("user"),
  }
  if order.binary then result.blob = "\\0\\1\\2\\255" end
  return result
end

return { main = main }
"""

CHARGE = """
local ctx = require("ctx")
return { charge = function(req)
  return { charged = req.amount, receipt = "r-" .. req.customer, user = ctx.get("user") }
end }
"""

ENTRIES = """
  - name: order_workflow
    kind: workflow.lua
    source: file://order.lua
    method: main
    modules: [funcs, ctx]
    meta: {temporal: {workflow: {worker: app:worker}}}
  - name: charge
    kind: function.lua
    source: file://charge.lua
    method: charge
    modules: [ctx]
    meta: {temporal: {activity: {worker: app:worker}}}
  - name: echo
    kind: workflow.lua
    source: file://echo.lua
    method: main
    meta: {temporal: {workflow: {worker: app:worker}}}
"""


def with_worker(root: Path, server: TemporalServer, body: Callable[[str], T]) -> T:
    """Run ``body(task_queue)`` (blocking CLI calls, in a thread) while a wippy runtime with
    a ``temporal.worker`` on a fresh task queue polls the server."""
    (root / "order.lua").write_text(textwrap.dedent(ORDER))
    (root / "charge.lua").write_text(textwrap.dedent(CHARGE))
    (root / "echo.lua").write_text("return { main = function(value) return value end }\n")
    queue = temporal_project_yaml(root, server, entries=ENTRIES)

    async def main() -> T:
        async with Runtime(load_project(root)):
            return await asyncio.wait_for(asyncio.to_thread(body, queue), 40)

    return asyncio.run(main())


def start(server: TemporalServer, queue: str, workflow_id: str, *inputs: Any, headers: list[str] = ()) -> None:
    args = ["workflow", "start", "--type", "app:order_workflow", "--task-queue", queue, "--workflow-id", workflow_id]
    for value in inputs:
        args += ["--input", json.dumps(value)]
    for header in headers:
        args += ["--headers", header]
    server.cli(*args)


def signal(server: TemporalServer, workflow_id: str, name: str, value: Any) -> None:
    server.cli("workflow", "signal", "--workflow-id", workflow_id, "--name", name, "--input", json.dumps(value))


def result(server: TemporalServer, workflow_id: str) -> dict[str, Any]:
    """``temporal workflow result -o json`` (waits for the workflow to close)."""
    proc = server.cli("workflow", "result", "--workflow-id", workflow_id, "-o", "json", check=False)
    return json.loads(proc.stdout)


def history(server: TemporalServer, workflow_id: str) -> list[dict[str, Any]]:
    """The events, payloads as stored (no JSON shorthand: metadata and data in base64)."""
    shown = server.cli_json("workflow", "show", "--workflow-id", workflow_id, "--no-json-shorthand-payloads")
    return shown["events"]


def payloads(node: Any, path: str = "") -> Iterator[tuple[str, str, bytes]]:
    """Every payload under ``node``: (where, encoding, data)."""
    if isinstance(node, dict):
        meta = node.get("metadata")
        if isinstance(meta, dict) and "encoding" in meta:
            yield (path, base64.b64decode(meta["encoding"]).decode(), base64.b64decode(node.get("data", "")))
            return
        for key, value in node.items():
            yield from payloads(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from payloads(value, f"{path}[{i}]")


def event(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    for e in events:
        if e["eventType"] == f"EVENT_TYPE_{kind}":
            return e
    raise AssertionError(f"no {kind} event in {[e['eventType'] for e in events]}")


def test_cli_starts_signals_and_reads_a_json_result(tmp_path: Path, temporal_server: TemporalServer) -> None:
    order = {"id": "o-1", "total": 42.5, "customer": "c-7", "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}

    def body(queue: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        start(temporal_server, queue, "interop-json", order, {"note": "second argument"})
        signal(temporal_server, "interop-json", "approve", {"by": "ada"})
        return result(temporal_server, "interop-json"), history(temporal_server, "interop-json")

    out, events = with_worker(tmp_path, temporal_server, body)
    assert out["status"] == "COMPLETED", out
    assert out["result"] == {
        "order_id": "o-1", "status": "completed", "charged": 42.5, "receipt": "r-c-7", "approved_by": "ada",
        "topic": "approve", "items": order["items"], "extra": {"note": "second argument"},
    }
    # every value in the history is readable JSON, as any other SDK or the UI expects
    found = list(payloads(events))
    assert found, "no payloads in the history"
    assert {encoding for _, encoding, _ in found} == {JSON}, found
    started = event(events, "WORKFLOW_EXECUTION_STARTED")["workflowExecutionStartedEventAttributes"]
    assert [json.loads(d) for _, _, d in payloads(started["input"])] == [order, {"note": "second argument"}]
    scheduled = event(events, "ACTIVITY_TASK_SCHEDULED")["activityTaskScheduledEventAttributes"]
    assert scheduled["activityType"]["name"] == "app:charge"
    assert [json.loads(d) for _, _, d in payloads(scheduled["input"])] == [{"amount": 42.5, "customer": "c-7"}]
    done = event(events, "ACTIVITY_TASK_COMPLETED")["activityTaskCompletedEventAttributes"]
    assert [json.loads(d) for _, _, d in payloads(done["result"])] == [{"charged": 42.5, "receipt": "r-c-7"}]
    signaled = event(events, "WORKFLOW_EXECUTION_SIGNALED")["workflowExecutionSignaledEventAttributes"]
    assert signaled["signalName"] == "approve"
    completed = event(events, "WORKFLOW_EXECUTION_COMPLETED")["workflowExecutionCompletedEventAttributes"]
    assert [json.loads(d) for _, _, d in payloads(completed["result"])] == [out["result"]]


def test_binary_values_go_as_msgpack_and_the_rest_stays_json(tmp_path: Path,
                                                            temporal_server: TemporalServer) -> None:
    def body(queue: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        start(temporal_server, queue, "interop-binary", {"id": "o-2", "total": 3, "customer": "c-1", "binary": True})
        signal(temporal_server, "interop-binary", "approve", {"by": "bob"})
        return result(temporal_server, "interop-binary"), history(temporal_server, "interop-binary")

    out, events = with_worker(tmp_path, temporal_server, body)
    assert out["status"] == "COMPLETED", out
    completed = event(events, "WORKFLOW_EXECUTION_COMPLETED")["workflowExecutionCompletedEventAttributes"]
    [(_, encoding, data)] = list(payloads(completed["result"]))
    assert encoding == MSGPACK
    value = codec.unpack(data)
    assert value["blob"] == b"\x00\x01\x02\xff" and value["approved_by"] == "bob" and value["charged"] == 3
    others = [(where, enc) for e in events if e["eventType"] != "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
              for where, enc, _ in payloads(e)]
    assert others and all(enc == JSON for _, enc in others), others


def test_lua_errors_are_application_errors_typed_by_kind(tmp_path: Path, temporal_server: TemporalServer) -> None:
    cases = {"interop-invalid": "invalid", "interop-retryable": "retryable", "interop-raise": "raise"}

    def body(queue: str) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
        for workflow_id, fail in cases.items():
            start(temporal_server, queue, workflow_id, {"id": workflow_id, "total": 1, "customer": "c", "fail": fail})
            signal(temporal_server, workflow_id, "approve", {"by": "eve"})
        return {w: (result(temporal_server, w), history(temporal_server, w)) for w in cases}

    outcomes = with_worker(tmp_path, temporal_server, body)
    failures = {}
    for workflow_id, (out, events) in outcomes.items():
        assert out["status"] == "FAILED", out
        attrs = event(events, "WORKFLOW_EXECUTION_FAILED")["workflowExecutionFailedEventAttributes"]
        failures[workflow_id] = attrs["failure"]
    invalid = failures["interop-invalid"]
    assert invalid["message"] == "order interop-invalid rejected by eve"
    assert invalid["applicationFailureInfo"] == {"type": "Invalid", "nonRetryable": True}
    retryable = failures["interop-retryable"]
    assert retryable["message"] == "stock service down"
    assert retryable["applicationFailureInfo"]["type"] == "Unavailable"
    assert not retryable["applicationFailureInfo"].get("nonRetryable")
    raised = failures["interop-raise"]
    assert "boom in interop-raise" in raised["message"]
    assert raised["applicationFailureInfo"].get("type"), raised  # a kind, whatever a raw error() maps to


def test_context_travels_in_the_wippy_context_header(tmp_path: Path, temporal_server: TemporalServer) -> None:
    def body(queue: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        start(temporal_server, queue, "interop-ctx", {"id": "o-3", "total": 5, "customer": "c-3"},
              headers=['wippy-context={"user": "ada", "tenant": "t-1"}'])
        signal(temporal_server, "interop-ctx", "approve", {"by": "ada"})
        return result(temporal_server, "interop-ctx"), history(temporal_server, "interop-ctx")

    out, events = with_worker(tmp_path, temporal_server, body)
    assert out["status"] == "COMPLETED", out
    assert out["result"]["user"] == "ada"  # ctx.get in the workflow
    scheduled = event(events, "ACTIVITY_TASK_SCHEDULED")["activityTaskScheduledEventAttributes"]
    [(_, encoding, data)] = list(payloads(scheduled["header"]["fields"]["wippy-context"]))
    assert encoding == JSON and json.loads(data) == {"user": "ada", "tenant": "t-1"}  # forwarded to the activity
    done = event(events, "ACTIVITY_TASK_COMPLETED")["activityTaskCompletedEventAttributes"]
    assert [json.loads(d)["user"] for _, _, d in payloads(done["result"])] == ["ada"]  # ctx.get in the activity


def test_binary_plain_from_other_sdks_round_trips(tmp_path: Path, temporal_server: TemporalServer) -> None:
    """A byte array from another SDK (``binary/plain``, e.g. Go ``[]byte``) reaches Lua as a
    string; a workflow result that is only bytes goes back as ``binary/plain``."""
    data = b"\x00\xffraw bytes"

    def body(queue: str) -> list[dict[str, Any]]:
        temporal_server.cli("workflow", "execute", "--type", "app:echo", "--task-queue", queue,
                            "--workflow-id", "interop-bytes", "--input", base64.b64encode(data).decode(),
                            "--input-base64", "--input-meta", "encoding=binary/plain", "--execution-timeout", "20s")
        return history(temporal_server, "interop-bytes")

    events = with_worker(tmp_path, temporal_server, body)
    completed = event(events, "WORKFLOW_EXECUTION_COMPLETED")["workflowExecutionCompletedEventAttributes"]
    assert list(payloads(completed["result"]))[0][1:] == ("binary/plain", data)
