"""Reading a ``temporal.worker``'s workflows from outside a runtime (``wippy workflows``).

Nothing here starts a worker or changes a workflow: it finds the worker's client settings
and task queue in the registry, connects a plain client with wippy's data converter, and
turns visibility rows, descriptions and histories into plain Python values (payloads
decoded, failures as ``{"kind", "message", ...}`` the way a Lua caller would see them).
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from wippy.errors import INVALID, NOT_FOUND, UNAVAILABLE, WippyError
from wippy.providers.temporal.client import ClientSettings
from wippy.providers.temporal.converter import DATA_CONVERTER

if TYPE_CHECKING:
    from wippy.registry import Entry, Registry

# Temporal's execution status -> the status names of ``workflow.host`` (and back, for queries)
STATUS_NAMES = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "canceled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued_as_new",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
QUERY_STATUS = {
    "running": "Running", "completed": "Completed", "failed": "Failed", "canceled": "Canceled",
    "terminated": "Terminated", "continued_as_new": "ContinuedAsNew", "timed_out": "TimedOut",
}
_ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SYSTEM_ATTRS = ("BuildIds", "BinaryChecksums", "BatcherNamespace", "BatcherUser")


@dataclass
class WorkerTarget:
    """Where a ``temporal.worker``'s workflows live: its client's server and its task queue."""

    host: str  # the temporal.worker entry ID
    client: str  # its temporal.client entry ID
    settings: ClientSettings
    task_queue: str  # with the client's tq_prefix
    types: dict[str, str]  # workflow type -> workflow.lua entry ID

    @property
    def address(self) -> str:
        return self.settings.address

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def where(self) -> str:
        return f"namespace {self.namespace} at {self.address}"


def worker_target(registry: Registry, entry: Entry) -> WorkerTarget:
    """The client settings and task queue of the ``temporal.worker`` ``entry``; INVALID when
    its client entry is missing or misconfigured (the message names entry and field)."""
    ref = str(entry.data.get("client") or "")
    if not ref:
        raise WippyError(INVALID, f"{entry.id}: client: a temporal.worker needs its temporal.client entry")
    client_id = entry.resolve(ref)
    client = registry.get(client_id)
    if client is None or client.kind != "temporal.client":
        what = "does not exist" if client is None else f"is a {client.kind}, not a temporal.client"
        raise WippyError(INVALID, f"{entry.id}: client: {client_id} {what}")
    settings = ClientSettings(client, Path(registry.root))
    types: dict[str, str] = {}
    for wf in registry.of_kind("workflow.lua"):
        meta = (wf.meta.get("temporal") or {}).get("workflow") or {}
        worker = meta.get("worker")
        if worker is None or wf.resolve(str(worker)) == entry.id:
            types[str(meta.get("name") or wf.id)] = wf.id
    queue = settings.tq_prefix + str(entry.data.get("task_queue", "default"))
    return WorkerTarget(entry.id, client_id, settings, queue, types)


async def connect(target: WorkerTarget) -> Client:
    """A client for ``target`` (UNAVAILABLE naming the address when the server does not answer
    within the client's ``connection_timeout``)."""
    s = target.settings
    try:
        return await asyncio.wait_for(Client.connect(
            s.address, namespace=s.namespace, api_key=s.api_key, tls=s.tls, keep_alive_config=s.keep_alive,
            data_converter=DATA_CONVERTER, identity=f"wippy-cli@{os.getpid()}",
        ), s.connection_timeout)
    except TimeoutError:
        why = f"no answer within connection_timeout {s.connection_timeout:g}s"
    except Exception as exc:  # the SDK raises RuntimeError("Failed client connect: ...")
        why = str(exc) or type(exc).__name__
    raise WippyError(UNAVAILABLE, f"cannot reach the Temporal server at {s.address} ({target.client}): {why}",
                     retryable=True)


def rpc_timeout(target: WorkerTarget) -> timedelta:
    return timedelta(seconds=max(target.settings.connection_timeout, 5.0))


# Visibility queries ----------------------------------------------------------------------------
async def search_attribute_types(client: Client, target: WorkerTarget) -> dict[str, int] | None:
    """Custom search attribute name -> IndexedValueType, or None when the server will not
    say (Temporal Cloud API keys may not list them)."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=target.namespace), timeout=rpc_timeout(target))
    except Exception:
        return None
    return {**dict(resp.system_attributes), **dict(resp.custom_attributes)}


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def attr_condition(key: str, value: str, kind: int | None) -> str:
    """``key = value`` for a visibility query: numbers and booleans as such for Int, Double and
    Bool attributes, everything else (Keyword, Text, unknown) as a quoted string."""
    if not _ATTR_NAME.match(key):
        raise WippyError(INVALID, f"--attr {key}={value}: {key!r} is not a search attribute name "
                                  "(letters, digits and _)")
    if kind in (IndexedValueType.INDEXED_VALUE_TYPE_INT, IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE):
        try:
            number = int(value) if kind == IndexedValueType.INDEXED_VALUE_TYPE_INT else float(value)
        except ValueError:
            kind_name = "Int" if kind == IndexedValueType.INDEXED_VALUE_TYPE_INT else "Double"
            raise WippyError(INVALID, f"--attr {key}={value}: {key} is a {kind_name} search attribute; "
                                      f"{value!r} is not a number") from None
        return f"{key} = {number!r}"
    if kind == IndexedValueType.INDEXED_VALUE_TYPE_BOOL:
        if value.lower() not in ("true", "false"):
            raise WippyError(INVALID, f"--attr {key}={value}: {key} is a Bool search attribute; use true or false")
        return f"{key} = {value.lower()}"
    return f"{key} = {_literal(value)}"


def visibility_query(target: WorkerTarget, status: str | None, attrs: dict[str, str],
                     types: dict[str, int] | None) -> str:
    parts = [f"TaskQueue = {_literal(target.task_queue)}"]
    if status is not None:
        parts.append(f"ExecutionStatus = {_literal(QUERY_STATUS[status])}")
    for key, value in attrs.items():
        parts.append(attr_condition(key, value, None if types is None else types.get(key)))
    return " AND ".join(parts)


# Values -------------------------------------------------------------------------------------------
def decode(payload: Payload) -> Any:
    """One payload as a value; one wippy cannot read shows as ``<encoding, N bytes>``."""
    try:
        return DATA_CONVERTER.payload_converter.from_payload(payload)
    except Exception:
        encoding = payload.metadata.get("encoding", b"?").decode("utf-8", "replace")
        return f"<{encoding}, {len(payload.data)} bytes>"


def decode_all(payloads: Payloads) -> list[Any]:
    return [decode(p) for p in payloads.payloads]


def failure_value(failure: Failure) -> dict[str, Any]:
    """A Temporal failure as a Lua caller sees it (kind, message, retryable, details)."""
    info = failure.WhichOneof("failure_info")
    out: dict[str, Any] = {"kind": "UNKNOWN", "message": failure.message}
    if info == "application_failure_info":
        app = failure.application_failure_info
        out["kind"] = app.type or "UNKNOWN"
        out["retryable"] = not app.non_retryable
        if app.details.payloads:
            out["details"] = decode(app.details.payloads[0])
    elif info == "timeout_failure_info":
        out["kind"] = "TIMEOUT"
    elif info in ("canceled_failure_info", "terminated_failure_info"):
        out["kind"] = "CANCELED"
    elif info in ("activity_failure_info", "child_workflow_execution_failure_info") and failure.HasField("cause"):
        return failure_value(failure.cause)
    return out


def search_values(fields: Any) -> dict[str, Any]:
    """Search attributes (or memo fields) as plain values."""
    return {key: decode(payload) for key, payload in fields.items()}


def visible_search(values: dict[str, Any]) -> dict[str, Any]:
    """Leave out the server's own attributes (build IDs and the like)."""
    return {k: v for k, v in values.items() if k not in _SYSTEM_ATTRS and not k.startswith("Temporal")}


def when(stamp: datetime | None) -> float | None:
    return None if stamp is None else stamp.timestamp()


# Runs ---------------------------------------------------------------------------------------------
async def list_runs(client: Client, target: WorkerTarget, query: str) -> list[dict[str, Any]]:
    runs = []
    async for w in client.list_workflows(query, rpc_timeout=rpc_timeout(target)):
        search = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in w.search_attributes.items()}
        runs.append({
            "workflow_id": w.id, "run_id": w.run_id, "type": w.workflow_type,
            "entry": target.types.get(w.workflow_type), "host": target.host, "task_queue": w.task_queue,
            "status": STATUS_NAMES.get(w.status, str(w.status)) if w.status is not None else "unknown",
            "search": visible_search(search), "memo": search_values(w.raw_info.memo.fields),
            "created": when(w.start_time), "closed": when(w.close_time), "history_length": w.history_length,
        })
    return runs


async def describe_run(client: Client, target: WorkerTarget, workflow_id: str) -> dict[str, Any]:
    """One workflow (its latest run): description, outcome, pending work and decoded history.
    NOT_FOUND when the namespace has no workflow with that ID."""
    from temporalio.service import RPCError, RPCStatusCode

    handle = client.get_workflow_handle(workflow_id)
    try:
        desc = await handle.describe(rpc_timeout=rpc_timeout(target))
        history = await handle.fetch_history(rpc_timeout=rpc_timeout(target))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and "namespace" not in exc.message.lower():
            raise WippyError(NOT_FOUND, f"no workflow {workflow_id!r} in {target.where}") from None
        raise
    raw = desc.raw_description
    status = STATUS_NAMES.get(desc.status, str(desc.status)) if desc.status is not None else "unknown"
    search = {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in desc.search_attributes.items()}
    events = [event_row(e) for e in history.events]
    out: dict[str, Any] = {
        "workflow_id": desc.id, "run_id": desc.run_id, "type": desc.workflow_type,
        "entry": target.types.get(desc.workflow_type), "host": target.host, "task_queue": desc.task_queue,
        "namespace": target.namespace, "address": target.address, "status": status,
        "input": None, "search": visible_search(search),
        "memo": search_values(raw.workflow_execution_info.memo.fields),
        "result": None, "error": None, "parent": desc.parent_id,
        "created": when(desc.start_time), "closed": when(desc.close_time),
        "history_length": len(history.events), "history_size": raw.workflow_execution_info.history_size_bytes,
    }
    out.update(outcome(history))
    pending = []
    if raw.HasField("pending_workflow_task"):
        task = raw.pending_workflow_task
        pending.append({"kind": "workflow task", "state": _enum_name(task.state, "PENDING_WORKFLOW_TASK_STATE_"),
                        "attempt": task.attempt})
    for act in raw.pending_activities:
        item = {"kind": "activity", "activity": act.activity_type.name, "id": act.activity_id,
                "state": _enum_name(act.state, "PENDING_ACTIVITY_STATE_"), "attempt": act.attempt}
        if act.HasField("last_failure"):
            item["last_failure"] = failure_value(act.last_failure)
        pending.append(item)
    for child in raw.pending_children:
        pending.append({"kind": "child", "workflow_id": child.workflow_id, "type": child.workflow_type_name})
    out["pending"] = pending
    out["history"] = events
    return out


def outcome(history: History) -> dict[str, Any]:
    """``input``, then ``result`` or ``error`` (and ``reason`` for a termination) of a history."""
    out: dict[str, Any] = {}
    for event in history.events:
        which = event.WhichOneof("attributes")
        if which == "workflow_execution_started_event_attributes":
            out["input"] = decode_all(event.workflow_execution_started_event_attributes.input)
        elif which == "workflow_execution_completed_event_attributes":
            values = decode_all(event.workflow_execution_completed_event_attributes.result)
            out["result"] = values[0] if len(values) == 1 else (values or None)
        elif which == "workflow_execution_failed_event_attributes":
            out["error"] = failure_value(event.workflow_execution_failed_event_attributes.failure)
        elif which == "workflow_execution_timed_out_event_attributes":
            out["error"] = {"kind": "TIMEOUT", "message": "workflow execution timed out"}
        elif which == "workflow_execution_terminated_event_attributes":
            reason = event.workflow_execution_terminated_event_attributes.reason
            out["error"] = {"kind": "CANCELED", "message": f"terminated: {reason}" if reason else "terminated"}
        elif which == "workflow_execution_canceled_event_attributes":
            out["error"] = {"kind": "CANCELED", "message": "canceled through Temporal"}
    return out


def _enum_name(value: int, prefix: str) -> str:
    from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState

    enum = PendingActivityState if prefix.startswith("PENDING_ACTIVITY") else PendingWorkflowTaskState
    try:
        return enum.Name(value).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


# History events -------------------------------------------------------------------------------------
_PAYLOAD_FIELDS = ("input", "result", "details", "heartbeat_details", "last_completion_result")
_TEXT_FIELDS = {"signal_name": "signal", "timer_id": "timer", "marker_name": "marker", "reason": "reason",
                "activity_id": "activity_id", "change_id": "change"}


def event_type_name(event: HistoryEvent) -> str:
    """``EVENT_TYPE_WORKFLOW_EXECUTION_STARTED`` -> ``WorkflowExecutionStarted`` (as the UI shows it)."""
    try:
        name = EventType.Name(event.event_type)
    except ValueError:
        return str(event.event_type)
    return "".join(w.capitalize() for w in name.removeprefix("EVENT_TYPE_").split("_"))


def event_data(event: HistoryEvent) -> dict[str, Any]:
    """The parts of one event worth showing, decoded: names (type, activity, signal, timer,
    marker, workflow), payloads (input, result, details), failure, reason, search attributes,
    memo, timer duration."""
    which = event.WhichOneof("attributes")
    if which is None:
        return {}
    attrs = getattr(event, which)
    out: dict[str, Any] = {}
    for field, value in attrs.ListFields():
        name = field.name
        if name == "workflow_type" and which != "workflow_task_completed_event_attributes":
            out["type"] = value.name
        elif name == "activity_type":
            out["activity"] = value.name
        elif name in ("workflow_execution", "external_workflow_execution") and value.workflow_id:
            out["workflow"] = value.workflow_id
        elif name == "workflow_id" and isinstance(value, str):
            out["workflow"] = value
        elif isinstance(value, Payloads) and name in _PAYLOAD_FIELDS:
            out[name] = decode_all(value)
        elif name == "details" and which == "marker_recorded_event_attributes":
            out["details"] = {k: decode_all(v) for k, v in value.items()}
        elif name in ("failure", "last_failure") and isinstance(value, Failure):
            out["failure"] = failure_value(value)
        elif name in _TEXT_FIELDS and isinstance(value, str) and value:
            out[_TEXT_FIELDS[name]] = value
        elif name == "start_to_fire_timeout":
            out["after"] = value.ToTimedelta().total_seconds()
        elif name == "search_attributes" and value.indexed_fields:
            out["search"] = search_values(value.indexed_fields)
        elif name in ("memo", "upserted_memo") and value.fields:
            out["memo"] = search_values(value.fields)
    return out


def event_row(event: HistoryEvent) -> dict[str, Any]:
    stamp = event.event_time.ToNanoseconds() / 1e9 if event.HasField("event_time") else None
    return {"event_id": event.event_id, "time": stamp, "type": event_type_name(event), "data": event_data(event)}
