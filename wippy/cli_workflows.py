"""``wippy workflows ...``: look at and steer the durable workflows of a project's
``workflow.host`` stores or ``temporal.worker`` task queues, whether or not a runtime is
running them right now.

On a ``workflow.host``, ``list`` and ``show`` read the store; ``signal``, ``cancel`` and
``terminate`` put a command into the store's mailbox (see
:mod:`wippy.providers.workflow.mailbox`); a running host carries it out within a fraction
of a second, a stopped one when it next starts. The command waits up to ``--wait``
seconds to say which of the two happened.

On a ``temporal.worker``, every command talks to the Temporal server of the worker's
``temporal.client`` entry (see :mod:`wippy.providers.temporal.admin`): ``list`` is a
visibility query on the worker's task queue, ``show`` describes the workflow and decodes
its history, and ``signal``, ``cancel`` and ``terminate`` are Temporal signals and
terminations, durable as soon as the server accepts them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wippy.cli_args import seconds_arg
from wippy.errors import LoadError, WippyError

STATUSES = ("running", "completed", "failed", "terminated", "canceled", "timed_out", "continued_as_new")
RESERVED_SIGNALS = "__wippy"  # Temporal signal names the runtime uses (__wippy_cancel, __wippy_event)
EXIT_ERROR, EXIT_USAGE = 1, 2
VALUE_WIDTH = 60


class _Fail(Exception):
    """Stop the command: print ``message`` and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Store:
    path: str
    hosts: list[str]  # the workflow.host entries using it
    host: str | None  # the one chosen with --host (runs of other hosts are left out)


# Finding the store ---------------------------------------------------------------------------
def find_store(project: str, host: str | None) -> Any:
    """Where the project's workflows are: the store file of its ``workflow.host`` (a
    :class:`Store`), or the server and task queue of its ``temporal.worker`` (a
    :class:`~wippy.providers.temporal.admin.WorkerTarget`). ``--host`` picks one of several."""
    from wippy.providers.workflow.host import store_path
    from wippy.registry import load_project

    try:
        registry = load_project(Path(project))
    except LoadError as exc:
        raise _Fail(str(exc)) from None
    every = sorted((e for e in registry if e.kind in ("workflow.host", "temporal.worker")), key=lambda e: e.id)
    if not every:
        raise _Fail(f"error: {registry.root} has no workflow.host entry (nor a temporal.worker), "
                    "so it keeps no workflows")
    if host is not None:
        chosen = [e for e in every if host in (e.id, e.name)]
        if not chosen:
            raise _Fail(f"error: no workflow host {host!r} (workflow.host or temporal.worker) in {registry.root}; "
                        f"its workflow hosts are {', '.join(e.id for e in every)}")
        every = chosen[:1]
    workers = [e for e in every if e.kind == "temporal.worker"]
    hosts = [e for e in every if e.kind == "workflow.host"]
    if workers and (hosts or len(workers) > 1):
        listing = ", ".join(f"{e.id} ({e.kind})" for e in every)
        raise _Fail(f"error: {registry.root} has several workflow hosts: {listing}; pick one with --host ID")
    if workers:
        from wippy.providers.temporal.admin import worker_target

        try:
            return worker_target(registry, workers[0])
        except WippyError as err:
            raise _Fail(f"error: {err}") from None
    stores: dict[str, list[str]] = {}
    for entry in hosts:
        stores.setdefault(store_path(entry, registry.root), []).append(entry.id)
    if len(stores) > 1:
        listing = "; ".join(f"{', '.join(ids)} ({path})" for path, ids in stores.items())
        raise _Fail(f"error: {registry.root} has several workflow hosts with their own stores: {listing}; "
                    "pick one with --host ID")
    (path, ids), = stores.items()
    if path == ":memory:":
        raise _Fail(f"error: {', '.join(ids)} keeps its workflows in memory (store: \":memory:\"); "
                    "they cannot be seen from outside the runtime that runs them")
    return Store(path, ids, hosts[0].id if host is not None else None)


def _is_temporal(target: Any) -> bool:
    return not isinstance(target, Store)


def _open(store: Store, *, missing_ok: bool = False) -> Any:
    from wippy.providers.workflow.journal import JournalReader

    if not Path(store.path).exists():
        if missing_ok:
            return None
        raise _Fail(f"error: NOT_FOUND: the workflow store {store.path} does not exist yet "
                    f"({', '.join(store.hosts)} has not run)")
    try:
        return JournalReader(store.path)
    except WippyError as err:
        raise _Fail(f"error: {err}") from None


# Formatting ----------------------------------------------------------------------------------
def _when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _json(value: Any) -> Any:
    from wippy.cli import _jsonable

    return _jsonable(value)


def _short(value: Any, width: int = VALUE_WIDTH) -> str:
    if isinstance(value, WippyError):
        text = f"{value.kind}: {value.message}"
    else:
        text = json.dumps(_json(value), ensure_ascii=False, separators=(", ", ": "), default=repr)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _attr_text(value: Any) -> str:
    """A search attribute as ``--attr k=v`` compares it: the way Lua or JSON would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nil"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.dumps(_json(value), ensure_ascii=False, separators=(",", ":"))


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _history_row(seq: int, record: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """``(seq, kind, op, key/ref, value)`` of one history record."""
    if "in" in record:
        kind = record["in"]
        if kind == "done":
            value = record["e"] if record.get("e") is not None else record.get("v")
            return str(seq), "input", "done", f"#{record.get('ref')}", _short(value)
        if kind == "msg":
            sender = f" from {record['from']}" if record.get("from") else ""
            return str(seq), "input", "msg", str(record.get("topic")), _short(record.get("v")) + sender
        event = dict(record.get("event") or {})
        what = str(event.pop("kind", "?"))
        return str(seq), "input", kind, what, _short(event)
    rest = {k: v for k, v in record.items() if k not in ("op", "key")}
    if "too_large" in rest:
        shown = "too large: " + str(rest["too_large"])
        shown = shown if len(shown) <= VALUE_WIDTH else shown[: VALUE_WIDTH - 3] + "..."
    elif set(rest) == {"at"} or set(rest) == {"at", "every"}:
        shown = "at " + _when(rest["at"] / 1e9) + (f" every {rest['every'] / 1e9:g}s" if rest.get("every") else "")
    elif len(rest) == 1:
        shown = _short(next(iter(rest.values())))
    else:
        shown = _short(rest) if rest else "-"
    key = record.get("key")
    key_text = "-" if key is None else (f"#{key}" if isinstance(key, int) else _short(key, 40))
    return str(seq), "command", str(record.get("op")), key_text, shown


def _run_json(run: Any) -> dict[str, Any]:
    out = {
        "workflow_id": run.workflow_id, "run_id": run.run_id, "entry": run.entry, "host": run.host,
        "status": run.status, "input": _json(run.input), "search": _json(run.search), "memo": _json(run.memo),
        "result": _json(run.result), "error": _json(run.error), "parent": run.parent,
        "created": run.created, "updated": run.updated, "closed": run.closed,
    }
    if run.history is not None:
        out["history"] = [_json(r) for r in run.history]
        out["history_size"] = run.history_size
    return out


# Commands ------------------------------------------------------------------------------------
def _parse_attrs(raw: list[str] | None) -> dict[str, str]:
    attrs = {}
    for item in raw or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _Fail(f"error: --attr expects KEY=VALUE, got {item!r}", EXIT_USAGE)
        attrs[key] = value
    return attrs


def cmd_list(args: argparse.Namespace, project: str) -> int:
    attrs = _parse_attrs(args.attr)
    store = find_store(project, args.host)
    if _is_temporal(store):
        return temporal_list(args, store, attrs)
    reader = _open(store, missing_ok=True)
    if reader is None:
        runs: list[Any] = []
    else:
        try:
            runs = reader.runs(args.status)
        finally:
            reader.close()
    if store.host is not None:
        runs = [r for r in runs if r.host == store.host]
    runs = [r for r in runs if all(k in r.search and _attr_text(r.search[k]) == v for k, v in attrs.items())]
    if args.json:
        print(json.dumps([_run_json(r) for r in runs], indent=2, ensure_ascii=False, default=repr))
        return 0
    if not runs:
        what = "workflows" + (f" with status {args.status}" if args.status else "")
        what += "".join(f" and {k}={v}" if i or args.status else f" with {k}={v}" for i, (k, v) in enumerate(attrs.items()))
        print(f"no {what} in {store.path}")
        return 0
    rows = [("WORKFLOW ID", "STATUS", "ENTRY", "HOST", "STARTED", "CLOSED", "SEARCH")]
    for r in runs:
        search = " ".join(f"{k}={_attr_text(v)}" for k, v in sorted(r.search.items(), key=lambda kv: str(kv[0])))
        rows.append((r.workflow_id, r.status, r.entry, r.host, _when(r.created), _when(r.closed), search or "-"))
    print(_table(rows))
    running = sum(r.status == "running" for r in runs)
    print(f"\n{len(runs)} workflow{'' if len(runs) == 1 else 's'} ({running} running) in {store.path}")
    return 0


def _find_run(reader: Any, store: Store, workflow_id: str) -> Any:
    run = reader.run(workflow_id)
    if run is None or (store.host is not None and run.host != store.host):
        where = f" on host {store.host}" if store.host else ""
        raise _Fail(f"error: NOT_FOUND: no workflow {workflow_id!r}{where} in {store.path}")
    return run


def cmd_show(args: argparse.Namespace, project: str, workflow_id: str) -> int:
    from wippy.providers.workflow.mailbox import pending

    store = find_store(project, args.host)
    if _is_temporal(store):
        return temporal_show(args, store, workflow_id)
    reader = _open(store)
    try:
        run = _find_run(reader, store, workflow_id)
        queued = pending(reader._conn, workflow_id=run.workflow_id)
    finally:
        reader.close()
    if args.json:
        out = _run_json(run)
        out["pending"] = [{"id": c.id, "kind": c.kind, "topic": c.topic, "payload": _json(c.payload),
                           "created": c.created} for c in queued]
        print(json.dumps(out, indent=2, ensure_ascii=False, default=repr))
        return 0
    history = run.history or []
    head = [
        ("workflow", run.workflow_id), ("run", run.run_id), ("entry", run.entry), ("host", run.host),
        ("status", run.status), ("started", _when(run.created)), ("closed", _when(run.closed)),
        ("input", _short(run.input or [], 100)),
    ]
    if run.parent:
        head.append(("parent", run.parent))
    if run.search:
        head.append(("search", _short(run.search, 100)))
    if run.memo:
        head.append(("memo", _short(run.memo, 100)))
    if run.status == "completed":
        head.append(("result", _short(run.result, 100)))
    if run.error is not None:
        head.append(("error", _short(run.error, 200)))
    head.append(("history", f"{len(history)} record{'' if len(history) == 1 else 's'}, {run.history_size} bytes"))
    for c in queued:
        what = c.kind + (f" {c.topic!r} {_short(c.payload, 40)}" if c.kind == "signal" else "")
        head.append(("pending", f"{what} (queued {_when(c.created)}; carried out when {c.host} runs)"))
    width = max(len(k) for k, _ in head)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in head))
    if history:
        print()
        print(_table([("SEQ", "KIND", "OP", "KEY/REF", "VALUE")] + [_history_row(i, r) for i, r in enumerate(history)]))
    return 0


def _send(args: argparse.Namespace, project: str, workflow_id: str, kind: str, topic: str | None,
          payload: Any, what: str) -> int:
    from wippy.providers.workflow.mailbox import enqueue, is_pending

    store = find_store(project, args.host)
    if _is_temporal(store):
        return temporal_send(args, store, workflow_id, kind, topic, payload, what)
    reader = _open(store)
    try:
        try:
            command_id, wf_id, host = enqueue(reader._conn, workflow_id, kind, topic, payload, host=store.host)
        except WippyError as err:
            if err.kind == "NOT_FOUND":
                raise _Fail(f"error: NOT_FOUND: no workflow {workflow_id!r} in {store.path}") from None
            raise _Fail(f"error: {err}") from None
        deadline = time.monotonic() + max(args.wait, 0.0)
        taken = not is_pending(reader._conn, command_id)
        while not taken and time.monotonic() < deadline:
            time.sleep(0.05)
            taken = not is_pending(reader._conn, command_id)
    finally:
        reader.close()
    if taken:
        print(f"{what} for workflow {wf_id}: carried out by the running host {host}")
    else:
        waited = f" within {args.wait:g}s" if args.wait > 0 else ""
        print(f"{what} for workflow {wf_id}: queued in {store.path}; no running host took it{waited}, "
              f"{host} carries it out when it runs")
    return 0


def cmd_signal(args: argparse.Namespace, project: str, workflow_id: str, topic: str, raw: str | None) -> int:
    if not topic or topic.startswith("@"):
        raise _Fail(f"error: INVALID: topic {topic!r} must be non-empty and must not start with '@' "
                    "(those topics belong to the runtime)", EXIT_USAGE)
    payload = None
    if raw == "-":
        raw = sys.stdin.read()
    if raw is not None:
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _Fail(f"error: the payload is not valid JSON ({exc.msg} at column {exc.colno}): {raw}\n"
                        "  (a string needs JSON quotes, e.g. '\"text\"')", EXIT_USAGE) from None
    return _send(args, project, workflow_id, "signal", topic, payload, f"signal {topic!r}")


def cmd_cancel(args: argparse.Namespace, project: str, workflow_id: str) -> int:
    options = {"reason": args.reason, "deadline": args.deadline}
    return _send(args, project, workflow_id, "cancel", None, options, "cancel")


def cmd_terminate(args: argparse.Namespace, project: str, workflow_id: str) -> int:
    return _send(args, project, workflow_id, "terminate", None, None, "terminate")


# Temporal hosts ------------------------------------------------------------------------------
def _on_temporal(target: Any, work: Any, *, usage_on_invalid: bool = False) -> Any:
    """Connect to ``target``'s server and run ``work(client)``; errors become clear messages:
    an unreachable server names its address, an unknown workflow is NOT_FOUND."""
    import asyncio
    import gc

    from temporalio.service import RPCError, RPCStatusCode

    from wippy.providers.temporal.admin import connect

    async def main() -> Any:
        client = await connect(target)
        return await work(client)

    failure: _Fail | None = None
    try:
        return asyncio.run(main())
    except WippyError as err:
        failure = _Fail(f"error: {err}", EXIT_USAGE if usage_on_invalid and err.kind == "INVALID" else EXIT_ERROR)
    except RPCError as exc:
        name = exc.status.name if exc.status is not None else "ERROR"
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and usage_on_invalid:
            failure = _Fail(f"error: INVALID: {exc.message}", EXIT_USAGE)
        elif exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            failure = _Fail(f"error: UNAVAILABLE: the Temporal server at {target.address} did not answer: "
                            f"{exc.message}")
        else:
            failure = _Fail(f"error: {name}: {exc.message} (Temporal at {target.address}, "
                            f"namespace {target.namespace})")
    finally:
        # The SDK's client sits in reference cycles (and in the frames of a caught error's
        # traceback); left to the interpreter's shutdown, its Rust side can take the GIL while
        # Python finalizes and abort the process ("Fatal Python error: PyGILState_Release",
        # temporalio/sdk-python#300). Collect it now, and raise our error only afterwards.
        gc.collect()
    assert failure is not None
    raise failure


def _temporal_queue(target: Any) -> str:
    return f"task queue {target.task_queue} ({target.where})"


def temporal_list(args: argparse.Namespace, target: Any, attrs: dict[str, str]) -> int:
    from wippy.providers.temporal.admin import list_runs, search_attribute_types, visibility_query

    async def work(client: Any) -> list[dict[str, Any]]:
        types = await search_attribute_types(client, target) if attrs else {}
        return await list_runs(client, target, visibility_query(target, args.status, attrs, types))

    runs = _on_temporal(target, work, usage_on_invalid=True)
    if args.json:
        print(json.dumps(_json(runs), indent=2, ensure_ascii=False, default=repr))
        return 0
    if not runs:
        what = "workflows" + (f" with status {args.status}" if args.status else "")
        what += "".join(f" and {k}={v}" if i or args.status else f" with {k}={v}" for i, (k, v) in enumerate(attrs.items()))
        print(f"no {what} on {_temporal_queue(target)}")
        return 0
    rows = [("WORKFLOW ID", "STATUS", "ENTRY", "HOST", "STARTED", "CLOSED", "SEARCH")]
    for r in runs:
        search = " ".join(f"{k}={_attr_text(v)}" for k, v in sorted(r["search"].items()))
        rows.append((r["workflow_id"], r["status"], r["entry"] or r["type"], r["host"], _when(r["created"]),
                     _when(r["closed"]), search or "-"))
    print(_table(rows))
    running = sum(r["status"] == "running" for r in runs)
    print(f"\n{len(runs)} workflow{'' if len(runs) == 1 else 's'} ({running} running) on {_temporal_queue(target)}")
    return 0


def _signal_text(values: list[Any]) -> str:
    """A signal's arguments as wippy sends them (``[payload, sender]``): the payload, and
    who sent it when known."""
    if 1 <= len(values) <= 2 and (len(values) == 1 or values[1] is None or isinstance(values[1], str)):
        sender = f" from {values[1]}" if len(values) == 2 and values[1] else ""
        return _short(values[0]) + sender
    return _short(values)


def _event_text(row: dict[str, Any]) -> str:
    """One history event as a short line: names first, then the decoded value."""
    data, kind = row["data"], row["type"]
    parts = []
    markers = {"core_local_activity": "local activity", "core_patch": "patch"}
    for key in ("type", "activity", "signal", "marker", "change"):
        if key in data:
            parts.append(markers.get(data[key], data[key]) if key == "marker" else str(data[key]))
    if "workflow" in data and kind != "WorkflowExecutionStarted":
        parts.append(f"workflow {data['workflow']}")
    if "timer" in data:
        parts.append(f"timer {data['timer']}" + (f" ({data['after']:g}s)" if "after" in data else ""))
    if "input" in data:
        parts.append(_signal_text(data["input"]) if "signal" in data else _short(data["input"]))
    if "result" in data:
        values = data["result"]
        parts.append(_short(values[0] if len(values) == 1 else values))
    if "details" in data:  # a marker: local activity (type and result), patch (its ID), other
        details = data["details"]
        meta = (details.get("data") or [None])[0]
        patch = (details.get("patch-data") or [None])[0]
        if isinstance(meta, dict) and meta.get("activity_type"):
            parts.append(str(meta["activity_type"]))
        if isinstance(patch, dict) and patch.get("id"):
            parts.append(str(patch["id"]))
        elif "result" in details:
            values = details["result"]
            parts.append("-> " + _short(values[0] if len(values) == 1 else values))
        elif not isinstance(meta, dict):
            parts.append(_short(details))
    if "failure" in data:
        failure = data["failure"]
        parts.append(f"{failure['kind']}: {failure['message']}")
    if "reason" in data:
        parts.append(str(data["reason"]))
    if "search" in data:
        parts.append(_short(data["search"]))
    if "memo" in data:
        parts.append("memo " + _short(data["memo"]))
    text = " ".join(" ".join(parts).split())
    width = VALUE_WIDTH + 30
    return (text if len(text) <= width else text[: width - 3] + "...") or "-"


def temporal_show(args: argparse.Namespace, target: Any, workflow_id: str) -> int:
    from wippy.providers.temporal.admin import describe_run

    run = _on_temporal(target, lambda client: describe_run(client, target, workflow_id))
    if args.json:
        print(json.dumps(_json(run), indent=2, ensure_ascii=False, default=repr))
        return 0
    head = [("workflow", run["workflow_id"]), ("run", run["run_id"])]
    head.append(("entry", run["entry"]) if run["entry"] else ("type", f"{run['type']} (no workflow.lua entry "
                                                                          "of this project)"))
    head += [
        ("host", f"{run['host']}: {_temporal_queue(target)}"),
        ("status", run["status"]), ("started", _when(run["created"])), ("closed", _when(run["closed"])),
        ("input", _short(run["input"] or [], 100)),
    ]
    if run["parent"]:
        head.append(("parent", run["parent"]))
    if run["search"]:
        head.append(("search", _short(run["search"], 100)))
    if run["memo"]:
        head.append(("memo", _short(run["memo"], 100)))
    if run["status"] == "completed":
        head.append(("result", _short(run["result"], 100)))
    if run["error"] is not None:
        err = run["error"]
        text = " ".join(f"{err['kind']}: {err['message']}".split())
        head.append(("error", text if len(text) <= 200 else text[:197] + "..."))
    events = run["history"]
    head.append(("history", f"{len(events)} event{'' if len(events) == 1 else 's'}, {run['history_size']} bytes"))
    for item in run["pending"]:
        if item["kind"] == "activity":
            text = f"activity {item['activity']} ({item['state']}, attempt {item['attempt']})"
            if item.get("last_failure"):
                text += f"; last failure {item['last_failure']['kind']}: {item['last_failure']['message']}"
        elif item["kind"] == "child":
            text = f"child workflow {item['workflow_id']} ({item['type']})"
        else:
            text = f"workflow task ({item['state']}, attempt {item['attempt']}): no worker has finished it yet"
        head.append(("pending", text))
    width = max(len(k) for k, _ in head)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in head))
    if events:
        first = events[0]["time"] or 0.0
        rows = [("ID", "TIME", "TYPE", "DETAILS")]
        for e in events:
            offset = f"+{e['time'] - first:.3f}s" if e["time"] is not None else "-"
            rows.append((str(e["event_id"]), offset, e["type"], _event_text(e)))
        print()
        print(_table(rows))
    return 0


async def _status_of(handle: Any, target: Any) -> tuple[str, bool]:
    """``(status, settled)``: settled when no workflow task is waiting for a worker."""
    from wippy.providers.temporal.admin import STATUS_NAMES, rpc_timeout

    desc = await handle.describe(rpc_timeout=rpc_timeout(target))
    status = STATUS_NAMES.get(desc.status, "unknown") if desc.status is not None else "unknown"
    return status, not desc.raw_description.HasField("pending_workflow_task")


async def _not_running(client: Any, target: Any, workflow_id: str, exc: Any, doing: str) -> WippyError:
    """The error for a signal or termination the server refused with NOT_FOUND: the workflow
    is closed, or there is no such workflow."""
    from temporalio.service import RPCError, RPCStatusCode

    from wippy.providers.temporal.admin import STATUS_NAMES, rpc_timeout

    try:
        desc = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout(target))
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return WippyError("NOT_FOUND", f"no workflow {workflow_id!r} in {target.where}")
    status = STATUS_NAMES.get(desc.status, "closed") if desc.status is not None else "closed"
    return WippyError("INVALID", f"workflow {workflow_id} is {status}; only a running workflow can {doing} "
                                 f"({exc.message})")


async def _wait_until(handle: Any, target: Any, seconds: float, check: Any) -> tuple[str, bool]:
    """Poll the workflow every 0.1 s for up to ``seconds`` until ``check(status, settled)``."""
    import asyncio

    deadline = time.monotonic() + seconds
    state = await _status_of(handle, target)
    while not check(*state) and time.monotonic() < deadline:
        await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))
        state = await _status_of(handle, target)
    return state


def temporal_send(args: argparse.Namespace, target: Any, workflow_id: str, kind: str, topic: str | None,
                  payload: Any, what: str) -> int:
    from temporalio.service import RPCError, RPCStatusCode

    from wippy.providers.temporal.admin import rpc_timeout
    from wippy.providers.temporal.workflow import CANCEL_SIGNAL

    if topic is not None and topic.startswith(RESERVED_SIGNALS):
        raise _Fail(f"error: INVALID: topic {topic!r} must not start with {RESERVED_SIGNALS!r} "
                    "(those signals belong to the runtime; use `wippy workflows cancel`)", EXIT_USAGE)
    queue = _temporal_queue(target)
    lines: list[str] = []

    async def guarded(client: Any, call: Any, doing: str) -> None:
        try:
            await call
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise await _not_running(client, target, workflow_id, exc, doing) from None
            raise

    async def signal(client: Any) -> None:
        handle = client.get_workflow_handle(workflow_id)
        await guarded(client, handle.signal(topic, args=[payload, None]), "take signals")
        if args.wait <= 0:
            lines.append(f"{what} sent to workflow {workflow_id} on {queue}")
            return
        status, settled = await _wait_until(handle, target, args.wait, lambda s, done: done or s != "running")
        if settled or status != "running":
            lines.append(f"{what} for workflow {workflow_id}: delivered; a worker on {queue} took it"
                         + ("" if status == "running" else f" (the workflow is now {status})"))
        else:
            lines.append(f"{what} for workflow {workflow_id}: in its history on {queue}; no worker took it "
                         f"within {args.wait:g}s, the workflow gets it when a worker for the task queue runs")

    async def terminate(client: Any) -> None:
        handle = client.get_workflow_handle(workflow_id)
        await guarded(client, handle.terminate(reason="terminated from the command line (wippy workflows terminate)"),
                      "be terminated")
        lines.append(f"terminated workflow {workflow_id} on {queue}")

    async def cancel(client: Any) -> None:
        reason, deadline = payload["reason"], payload["deadline"]
        # the run that is open now: the deadline's termination must not hit a later run
        try:
            run_id = (await client.get_workflow_handle(workflow_id).describe(rpc_timeout=rpc_timeout(target))).run_id
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise await _not_running(client, target, workflow_id, exc, "be canceled") from None
            raise
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        event = {"from": None, "reason": reason, "deadline": int(deadline * 1000)}
        await guarded(client, handle.signal(CANCEL_SIGNAL, args=[event]), "be canceled")
        enforce = args.wait >= deadline
        started = time.monotonic()
        status, _ = await _wait_until(handle, target, deadline if enforce else args.wait,
                                      lambda s, _settled: s != "running")
        if status != "running":
            lines.append(f"cancel for workflow {workflow_id}: it finished as {status} "
                         f"after {time.monotonic() - started:.1f}s")
        elif enforce:
            with contextlib.suppress(RPCError):  # it finished just now
                await handle.terminate(reason=f"cancel deadline passed ({reason})")
            lines.append(f"cancel for workflow {workflow_id}: still running after the {deadline:g}s deadline; "
                         "terminated")
        else:
            lines.append(f"cancel for workflow {workflow_id}: sent (a CANCEL event, reason {reason!r}); it is still "
                         f"running after {args.wait:g}s.\n"
                         f"  The {deadline:g}s deadline is not enforced from the command line: nothing terminates "
                         "it when the deadline passes. Use --wait "
                         f"{deadline:g} (or more) to have this command do it, or `wippy workflows terminate "
                         f"{workflow_id}` later.")

    _on_temporal(target, {"signal": signal, "terminate": terminate, "cancel": cancel}[kind])
    print("\n".join(lines))
    return 0


# Arguments -----------------------------------------------------------------------------------
def _is_project(arg: str) -> bool:
    return Path(arg).is_dir()


def _split(values: list[str], required: int, optional: int, names: str) -> tuple[str, list[str]]:
    """``[DIR] REQUIRED... [OPTIONAL...]`` positionals: the project first when it is there.

    With one argument too many for the required ones alone, the first is the project if it
    is a directory, otherwise the optional argument is given."""
    n = len(values)
    if n < required or n > required + optional + 1:
        raise _Fail(f"error: expected {names}", EXIT_USAGE)
    if n == required + optional + 1 or (n > required and _is_project(values[0])):
        return values[0], values[1:]
    return ".", values


def run(args: argparse.Namespace) -> int:
    try:
        action = args.workflows_command
        if action == "list":
            if len(args.positional) > 1:
                raise _Fail("error: expected [DIR]", EXIT_USAGE)
            return cmd_list(args, args.positional[0] if args.positional else ".")
        if action == "show":
            project, rest = _split(args.positional, 1, 0, "[DIR] ID")
            return cmd_show(args, project, rest[0])
        if action == "signal":
            project, rest = _split(args.positional, 2, 1, "[DIR] ID TOPIC [JSON]")
            return cmd_signal(args, project, rest[0], rest[1], rest[2] if len(rest) > 2 else None)
        if action == "cancel":
            project, rest = _split(args.positional, 1, 0, "[DIR] ID")
            return cmd_cancel(args, project, rest[0])
        project, rest = _split(args.positional, 1, 0, "[DIR] ID")
        return cmd_terminate(args, project, rest[0])
    except _Fail as fail:
        print(str(fail), file=sys.stderr, flush=True)
        return fail.code


def add_parser(sub: Any) -> None:
    """Register ``wippy workflows`` and its sub-commands on the top-level sub-parsers."""
    p = sub.add_parser(
        "workflows",
        help="list, inspect, signal, cancel and terminate durable workflows",
        description="Look at and steer the workflows of the project's workflow.host store "
        "(`store:` relative to the project; default .wippy/workflows.db), whether or not "
        "`wippy run` is running it, or of its temporal.worker, through the Temporal server of "
        "the worker's temporal.client (workflows on the worker's task queue). "
        "DIR is the project directory (default: .).",
        epilog="On a workflow.host, signal, cancel and terminate queue a command in the store: a running "
        "host carries it out within a fraction of a second, a stopped one when it next starts. "
        "On a temporal.worker they are Temporal signals and terminations, durable once the server "
        "accepts them. "
        "Exit codes: 0 ok; 1 the project, store, server or workflow is not usable (message on stderr); "
        "2 bad arguments.",
    )
    wsub = p.add_subparsers(dest="workflows_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, positional: str) -> argparse.ArgumentParser:
        c = wsub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("positional", nargs="*", metavar=positional)
        c.add_argument("--host", metavar="ID",
                       help="the workflow.host or temporal.worker to use when the project has several (ID or name)")
        c.set_defaults(fn=run)
        return c

    c = command("list", "list workflows: ID, status, entry, host, times, search attributes", "[DIR]")
    c.add_argument("--status", choices=STATUSES,
                   help="only workflows with this status (timed_out and continued_as_new: Temporal only)")
    c.add_argument("--attr", action="append", metavar="KEY=VALUE",
                   help="only workflows whose search attribute KEY is VALUE (compared as text; on Temporal "
                   "a visibility query, numbers for Int/Double attributes; repeat to AND)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")

    c = command("show", "show one workflow: status, result and its history as a table", "[DIR] ID")
    c.add_argument("--json", action="store_true", help="print JSON (with the full history)")

    waiting = ("seconds to wait for a running host (on Temporal: a worker) to take the command "
               "(default: 2; 0 to not wait)")
    c = command("signal", "send a message to a running workflow (a durable input, delivered exactly once)",
                "[DIR] ID TOPIC [JSON|-]")
    c.epilog = "The payload is one JSON value (quote strings: '\"text\"'); - reads it from stdin; none sends nil."
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)

    c = command("cancel", "ask a running workflow to finish (it gets a CANCEL event, then is "
                "terminated after --deadline)", "[DIR] ID")
    c.epilog = ("On a temporal.worker the command itself terminates the workflow when the deadline passes, "
                "and only if --wait is at least --deadline; otherwise the deadline is not enforced.")
    c.add_argument("--reason", default="canceled from the command line", help="the reason in the CANCEL event")
    c.add_argument("--deadline", type=seconds_arg, default=5.0, metavar="SECONDS",
                   help="seconds it gets to finish before it is terminated (default: 5)")
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)

    c = command("terminate", "end a running workflow now (status terminated)", "[DIR] ID")
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)
