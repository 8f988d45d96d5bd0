"""``wippy workflows`` on a ``temporal.worker``: the :class:`~wippy.providers.WorkflowAdmin`
of the worker's task queue on its Temporal server.

It finds the worker's client settings and task queue in the registry and connects a plain
client with wippy's data converter (no worker is started): ``list`` is a visibility query on
the task queue, ``show`` describes the workflow and decodes its history (payloads decoded,
failures as ``{"kind", "message", ...}`` the way a Lua caller sees them), and ``signal``,
``cancel`` and ``terminate`` are Temporal signals and terminations, durable as soon as the
server accepts them. Every server error comes out as a :class:`~wippy.errors.WippyError`
naming the server (an unreachable one with a hint to start ``wippy temporal dev``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from wippy.errors import (
    CANCELED,
    INVALID,
    NOT_FOUND,
    TIMEOUT,
    UNAVAILABLE,
    UNKNOWN,
    WippyError,
)
from wippy.providers._admin import (
    CancelInput,
    CommandResult,
    InvalidRequest,
    ListInput,
    PendingWork,
    SignalInput,
    TerminateInput,
    Text,
    Value,
    WorkflowAdmin,
    WorkflowDetails,
    WorkflowHistory,
    WorkflowRun,
)
from wippy.providers._admin import HistoryEvent as AdminEvent
from wippy.providers.temporal.client import ClientSettings, connect_error_text, server_hint
from wippy.providers.temporal.converter import DATA_CONVERTER
from wippy.providers.temporal.failures import rpc_kind

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
    except Exception as exc:  # the SDK raises RuntimeError("Failed client connect: ...")
        why = connect_error_text(exc, s.connection_timeout)
    raise WippyError(UNAVAILABLE, f"cannot reach the Temporal server at {s.address} ({target.client}): {why}; "
                                  f"{server_hint(s.address)}", retryable=True)


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
        raise InvalidRequest(f"--attr {key}={value}: {key!r} is not a search attribute name "
                             "(letters, digits and _)")
    if kind in (IndexedValueType.INDEXED_VALUE_TYPE_INT, IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE):
        try:
            number = int(value) if kind == IndexedValueType.INDEXED_VALUE_TYPE_INT else float(value)
        except ValueError:
            kind_name = "Int" if kind == IndexedValueType.INDEXED_VALUE_TYPE_INT else "Double"
            raise InvalidRequest(f"--attr {key}={value}: {key} is a {kind_name} search attribute; "
                                 f"{value!r} is not a number") from None
        return f"{key} = {number!r}"
    if kind == IndexedValueType.INDEXED_VALUE_TYPE_BOOL:
        if value.lower() not in ("true", "false"):
            raise InvalidRequest(f"--attr {key}={value}: {key} is a Bool search attribute; "
                                 "use true or false")
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
    out: dict[str, Any] = {"kind": UNKNOWN, "message": failure.message}
    if info == "application_failure_info":
        app = failure.application_failure_info
        out["kind"] = app.type or UNKNOWN
        out["retryable"] = not app.non_retryable
        if app.details.payloads:
            out["details"] = decode(app.details.payloads[0])
    elif info == "timeout_failure_info":
        out["kind"] = TIMEOUT
    elif info in ("canceled_failure_info", "terminated_failure_info"):
        out["kind"] = CANCELED
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
def outcome(events: Iterable[HistoryEvent]) -> dict[str, Any]:
    """``input``, then ``result`` or ``error`` (and ``reason`` for a termination) of a history."""
    out: dict[str, Any] = {}
    for event in events:
        which = event.WhichOneof("attributes")
        if which == "workflow_execution_started_event_attributes":
            out["input"] = decode_all(event.workflow_execution_started_event_attributes.input)
        elif which == "workflow_execution_completed_event_attributes":
            values = decode_all(event.workflow_execution_completed_event_attributes.result)
            out["result"] = values[0] if len(values) == 1 else (values or None)
        elif which == "workflow_execution_failed_event_attributes":
            out["error"] = failure_value(event.workflow_execution_failed_event_attributes.failure)
        elif which == "workflow_execution_timed_out_event_attributes":
            out["error"] = {"kind": TIMEOUT, "message": "workflow execution timed out"}
        elif which == "workflow_execution_terminated_event_attributes":
            reason = event.workflow_execution_terminated_event_attributes.reason
            out["error"] = {"kind": CANCELED, "message": f"terminated: {reason}" if reason else "terminated"}
        elif which == "workflow_execution_canceled_event_attributes":
            out["error"] = {"kind": CANCELED, "message": "canceled through Temporal"}
    return out


def _enum_name(value: int, prefix: str) -> str:
    from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState

    enum: Any = PendingActivityState if prefix.startswith("PENDING_ACTIVITY") else PendingWorkflowTaskState
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()
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


def _search(raw: Any) -> dict[str, Any]:
    """Search attributes of a listing or description: one-value lists as the value."""
    return visible_search({k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in raw.items()})


def _status(status: WorkflowExecutionStatus | None) -> str:
    return STATUS_NAMES.get(status, str(status)) if status is not None else "unknown"


def _error(value: dict[str, Any] | None) -> WippyError | None:
    if value is None:
        return None
    return WippyError(str(value.get("kind") or UNKNOWN), str(value.get("message", "")),
                      retryable=value.get("retryable"), details=value.get("details"))


HISTORY_COLUMNS = ("ID", "TIME", "TYPE", "DETAILS")
DETAILS_WIDTH = 90
RESERVED_SIGNALS = "__wippy"  # signal names the runtime uses (__wippy_cancel, __wippy_event)


class TemporalAdmin(WorkflowAdmin):
    """The workflows on the task queue of one ``temporal.worker`` entry."""

    def __init__(self, entry: Entry, registry: Registry) -> None:
        super().__init__(entry, registry)
        self.target = worker_target(registry, entry)
        self._client: Client | None = None

    @property
    def location(self) -> str:
        return f"task queue {self.target.task_queue} ({self.target.where})"

    @property
    def where(self) -> str:
        return f"on {self.location}"

    async def _connect(self) -> Client:
        if self._client is None:
            self._client = await connect(self.target)
        return self._client

    async def close(self) -> None:
        # The SDK's client has nothing to close; dropping it lets a collection free it.
        self._client = None

    @contextlib.contextmanager
    def _rpc(self, *, request: bool = False) -> Iterator[None]:
        """Server refusals as WippyErrors naming the server; with ``request``, an invalid
        argument is the request's fault (:class:`InvalidRequest`)."""
        try:
            yield
        except RPCError as exc:
            raise self._refusal(exc, request=request) from None

    def _refusal(self, exc: RPCError, *, request: bool = False) -> WippyError:
        status, address = exc.status, self.target.address
        if status == RPCStatusCode.INVALID_ARGUMENT and request:
            return InvalidRequest(exc.message)
        if status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return WippyError(UNAVAILABLE, f"the Temporal server at {address} did not answer: {exc.message}; "
                                           f"{server_hint(address)}", retryable=True)
        kind = rpc_kind(exc)
        name = status.name if status is not None else "ERROR"
        prefix = "" if name == kind else f"{name}: "
        return WippyError(kind, f"{prefix}{exc.message} (Temporal at {address}, namespace {self.target.namespace})")

    # Reading ----------------------------------------------------------------------------------
    async def list(self, query: ListInput) -> list[WorkflowRun]:
        target, attrs = self.target, dict(query.attrs)
        visibility_query(target, query.status, attrs, None)  # bad names: before connecting
        client = await self._connect()
        with self._rpc(request=True):
            types = await search_attribute_types(client, target) if attrs else {}
            text = visibility_query(target, query.status, attrs, types)
            return [WorkflowRun(
                workflow_id=w.id, run_id=w.run_id, status=_status(w.status), host=target.host,
                type=w.workflow_type, entry=target.types.get(w.workflow_type), created=when(w.start_time),
                closed=when(w.close_time), search=_search(w.search_attributes),
                memo=search_values(w.raw_info.memo.fields),
                extra={"task_queue": w.task_queue, "history_length": w.history_length},
            ) async for w in client.list_workflows(text, rpc_timeout=rpc_timeout(target))]

    async def show(self, workflow_id: str) -> WorkflowDetails:
        target = self.target
        client = await self._connect()
        handle = client.get_workflow_handle(workflow_id)
        with self._rpc():
            try:
                desc = await handle.describe(rpc_timeout=rpc_timeout(target))
                history = await handle.fetch_history(rpc_timeout=rpc_timeout(target))
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND and "namespace" not in exc.message.lower():
                    raise WippyError(NOT_FOUND, f"no workflow {workflow_id!r} in {target.where}") from None
                raise
        info = desc.raw_description.workflow_execution_info
        run = WorkflowRun(
            workflow_id=desc.id, run_id=desc.run_id, status=_status(desc.status), host=target.host,
            type=desc.workflow_type, entry=target.types.get(desc.workflow_type), created=when(desc.start_time),
            closed=when(desc.close_time), search=_search(desc.search_attributes),
            memo=search_values(info.memo.fields),
            extra={"task_queue": desc.task_queue, "namespace": target.namespace, "address": target.address,
                   "history_length": len(history.events)},
        )
        end = outcome(history.events)
        rows = [event_row(e) for e in history.events]
        first = next((r["time"] for r in rows if r["time"] is not None), 0.0)
        events = [AdminEvent((str(r["event_id"]), "-" if r["time"] is None else f"+{r['time'] - first:.3f}s",
                              r["type"], event_text(r)), r) for r in rows]
        return WorkflowDetails(
            run=run, input=end.get("input") or [], result=end.get("result"), error=_error(end.get("error")),
            parent=desc.parent_id, pending=_pending(desc.raw_description), location=self.location,
            history=WorkflowHistory(HISTORY_COLUMNS, events, info.history_size_bytes, "event"),
        )

    # Commands ---------------------------------------------------------------------------------
    async def _guarded(self, client: Client, call: Awaitable[Any], workflow_id: str, doing: str) -> Any:
        """``await call``; a NOT_FOUND from the server means a closed or unknown workflow."""
        try:
            return await call
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise await self._not_running(client, workflow_id, exc, doing) from None
            raise

    async def _not_running(self, client: Client, workflow_id: str, exc: RPCError, doing: str) -> WippyError:
        try:
            desc = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout(self.target))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return WippyError(NOT_FOUND, f"no workflow {workflow_id!r} in {self.target.where}")
        status = STATUS_NAMES.get(desc.status, "closed") if desc.status is not None else "closed"
        return WippyError(INVALID, f"workflow {workflow_id} is {status}; only a running workflow can {doing} "
                                   f"({exc.message})")

    async def _state(self, handle: WorkflowHandle[Any, Any]) -> tuple[str, bool]:
        """``(status, settled)``: settled when no workflow task is waiting for a worker."""
        desc = await handle.describe(rpc_timeout=rpc_timeout(self.target))
        return _status(desc.status), not desc.raw_description.HasField("pending_workflow_task")

    async def _wait_until(self, handle: WorkflowHandle[Any, Any], seconds: float,
                          check: Callable[[str, bool], bool]) -> tuple[str, bool]:
        """Look at the workflow every 0.1 s for up to ``seconds`` until ``check(status, settled)``."""
        deadline = time.monotonic() + seconds
        state = await self._state(handle)
        while not check(*state) and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
            state = await self._state(handle)
        return state

    async def signal(self, request: SignalInput) -> CommandResult:
        topic, workflow_id, wait = request.topic, request.workflow_id, request.wait
        if topic.startswith(RESERVED_SIGNALS):
            raise InvalidRequest(f"topic {topic!r} must not start with {RESERVED_SIGNALS!r} (those signals "
                                 "belong to the runtime; use `wippy workflows cancel`)")
        what, queue = f"signal {topic!r}", self.location
        client = await self._connect()
        handle = client.get_workflow_handle(workflow_id)
        with self._rpc():
            await self._guarded(client, handle.signal(topic, args=[request.payload, None]), workflow_id,
                                "take signals")
            if wait <= 0:
                return CommandResult(workflow_id, f"{what} sent to workflow {workflow_id} on {queue}", False)
            status, settled = await self._wait_until(handle, wait, lambda s, done: done or s != "running")
        if settled or status != "running":
            now = "" if status == "running" else f" (the workflow is now {status})"
            return CommandResult(workflow_id, f"{what} for workflow {workflow_id}: delivered; a worker on "
                                              f"{queue} took it{now}", True, status)
        return CommandResult(workflow_id, f"{what} for workflow {workflow_id}: in its history on {queue}; no "
                                          f"worker took it within {wait:g}s, the workflow gets it when a "
                                          "worker for the task queue runs", False, status)

    async def terminate(self, request: TerminateInput) -> CommandResult:
        workflow_id = request.workflow_id
        client = await self._connect()
        handle = client.get_workflow_handle(workflow_id)
        reason = f"{request.reason} (wippy workflows terminate)"
        with self._rpc():
            await self._guarded(client, handle.terminate(reason=reason), workflow_id, "be terminated")
        return CommandResult(workflow_id, f"terminated workflow {workflow_id} on {self.location}", True,
                             "terminated")

    async def cancel(self, request: CancelInput) -> CommandResult:
        """A CANCEL event for the open run; when ``wait`` covers the deadline, this call
        terminates the run if it is still running then (nothing else enforces it)."""
        from wippy.providers.temporal.workflow import CANCEL_SIGNAL

        workflow_id, reason, deadline, wait = request.workflow_id, request.reason, request.deadline, request.wait
        client = await self._connect()
        with self._rpc():
            # the run that is open now: the deadline's termination must not hit a later run
            desc = await self._guarded(client, client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=rpc_timeout(self.target)), workflow_id, "be canceled")
            handle = client.get_workflow_handle(workflow_id, run_id=desc.run_id)
            event = {"from": None, "reason": reason, "deadline": int(deadline * 1000)}
            await self._guarded(client, handle.signal(CANCEL_SIGNAL, args=[event]), workflow_id, "be canceled")
            enforce = wait >= deadline
            started = time.monotonic()
            status, _ = await self._wait_until(handle, deadline if enforce else wait,
                                               lambda s, _settled: s != "running")
            if status != "running":
                return CommandResult(workflow_id, f"cancel for workflow {workflow_id}: it finished as {status} "
                                                  f"after {time.monotonic() - started:.1f}s", True, status)
            if enforce:
                with contextlib.suppress(RPCError):  # it finished just now
                    await handle.terminate(reason=f"cancel deadline passed ({reason})")
                return CommandResult(workflow_id, f"cancel for workflow {workflow_id}: still running after the "
                                                  f"{deadline:g}s deadline; terminated", True, "terminated")
        return CommandResult(workflow_id, (
            f"cancel for workflow {workflow_id}: sent (a CANCEL event, reason {reason!r}); it is still running "
            f"after {wait:g}s.\n"
            f"  The {deadline:g}s deadline is not enforced from the command line: nothing terminates it when "
            f"the deadline passes. Use --wait {deadline:g} (or more) to have this command do it, or "
            f"`wippy workflows terminate {workflow_id}` later."), True, "running")


def _pending(raw: Any) -> list[PendingWork]:
    """What a described run waits for: a workflow task, activities, child workflows."""
    out = []
    if raw.HasField("pending_workflow_task"):
        task = raw.pending_workflow_task
        data: dict[str, Any] = {"kind": "workflow task", "attempt": task.attempt,
                                "state": _enum_name(task.state, "PENDING_WORKFLOW_TASK_STATE_")}
        out.append(PendingWork(f"workflow task ({data['state']}, attempt {task.attempt}): no worker has "
                               "finished it yet", data))
    for act in raw.pending_activities:
        data = {"kind": "activity", "activity": act.activity_type.name, "id": act.activity_id,
                "state": _enum_name(act.state, "PENDING_ACTIVITY_STATE_"), "attempt": act.attempt}
        text = f"activity {data['activity']} ({data['state']}, attempt {act.attempt})"
        if act.HasField("last_failure"):
            data["last_failure"] = failure = failure_value(act.last_failure)
            text += f"; last failure {failure['kind']}: {failure['message']}"
        out.append(PendingWork(text, data))
    for child in raw.pending_children:
        data = {"kind": "child", "workflow_id": child.workflow_id, "type": child.workflow_type_name}
        out.append(PendingWork(f"child workflow {child.workflow_id} ({child.workflow_type_name})", data))
    return out


def _signal_text(values: list[Any]) -> tuple[str | Value, ...]:
    """A signal's arguments as wippy sends them (``[payload, sender]``): the payload, and
    who sent it when known."""
    if 1 <= len(values) <= 2 and (len(values) == 1 or values[1] is None or isinstance(values[1], str)):
        return (Value(values[0]), f"from {values[1]}") if len(values) == 2 and values[1] else (Value(values[0]),)
    return (Value(values),)


def _one(values: list[Any]) -> Value:
    return Value(values[0] if len(values) == 1 else values)


def _marker_parts(details: dict[str, Any]) -> list[str | Value]:
    """A marker's details: local activity (type and result), patch (its ID), other."""
    meta = (details.get("data") or [None])[0]
    patch = (details.get("patch-data") or [None])[0]
    parts: list[str | Value] = []
    if isinstance(meta, dict) and meta.get("activity_type"):
        parts.append(str(meta["activity_type"]))
    if isinstance(patch, dict) and patch.get("id"):
        parts.append(str(patch["id"]))
    elif "result" in details:
        parts += ["->", _one(details["result"])]
    elif not isinstance(meta, dict):
        parts.append(Value(details))
    return parts


def event_text(row: dict[str, Any]) -> Text:
    """One history event (an :func:`event_row`) as a short line: names first, then the
    decoded values."""
    data, kind = row["data"], row["type"]
    parts: list[str | Value] = []
    markers = {"core_local_activity": "local activity", "core_patch": "patch"}
    for key in ("type", "activity", "signal", "marker", "change"):
        if key in data:
            parts.append(markers.get(data[key], data[key]) if key == "marker" else str(data[key]))
    if "workflow" in data and kind != "WorkflowExecutionStarted":
        parts.append(f"workflow {data['workflow']}")
    if "timer" in data:
        parts.append(f"timer {data['timer']}" + (f" ({data['after']:g}s)" if "after" in data else ""))
    if "input" in data:
        parts += _signal_text(data["input"]) if "signal" in data else (Value(data["input"]),)
    if "result" in data:
        parts.append(_one(data["result"]))
    if "details" in data:
        parts += _marker_parts(data["details"])
    if "failure" in data:
        parts.append(f"{data['failure']['kind']}: {data['failure']['message']}")
    if "reason" in data:
        parts.append(str(data["reason"]))
    if "search" in data:
        parts.append(Value(data["search"]))
    if "memo" in data:
        parts += ["memo", Value(data["memo"])]
    return Text(tuple(parts), DETAILS_WIDTH)
