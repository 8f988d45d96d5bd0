"""``wippy workflows ...``: look at and steer the durable workflows of a project's
``workflow.host`` stores, whether or not a runtime is running them right now.

``list`` and ``show`` read the store. ``signal``, ``cancel`` and ``terminate`` put a
command into the store's mailbox (see :mod:`wippy.providers.workflow.mailbox`); a
running host carries it out within a fraction of a second, a stopped one when it next
starts. The command waits up to ``--wait`` seconds to say which of the two happened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wippy.cli_args import seconds_arg
from wippy.errors import LoadError, WippyError

STATUSES = ("running", "completed", "failed", "terminated", "canceled")
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
def find_store(project: str, host: str | None) -> Store:
    """The store file of the project's ``workflow.host`` (``--host`` picks one of several)."""
    from wippy.providers.workflow.host import store_path
    from wippy.registry import load_project

    try:
        registry = load_project(Path(project))
    except LoadError as exc:
        raise _Fail(str(exc)) from None
    hosts = sorted((e for e in registry if e.kind == "workflow.host"), key=lambda e: e.id)
    if not hosts:
        raise _Fail(f"error: {registry.root} has no workflow.host entry, so it keeps no workflows")
    if host is not None:
        chosen = [e for e in hosts if host in (e.id, e.name)]
        if not chosen:
            raise _Fail(f"error: no workflow.host {host!r} in {registry.root}; "
                        f"its workflow hosts are {', '.join(e.id for e in hosts)}")
        hosts = chosen[:1]
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
        "`wippy run` is running it. DIR is the project directory (default: .).",
        epilog="signal, cancel and terminate queue a command in the store: a running host "
        "carries it out within a fraction of a second, a stopped one when it next starts. "
        "Exit codes: 0 ok; 1 the project, store or workflow is not usable (message on stderr); "
        "2 bad arguments.",
    )
    wsub = p.add_subparsers(dest="workflows_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, positional: str) -> argparse.ArgumentParser:
        c = wsub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("positional", nargs="*", metavar=positional)
        c.add_argument("--host", metavar="ID",
                       help="the workflow.host to use when the project has several (ID or name)")
        c.set_defaults(fn=run)
        return c

    c = command("list", "list workflows: ID, status, entry, host, times, search attributes", "[DIR]")
    c.add_argument("--status", choices=STATUSES, help="only workflows with this status")
    c.add_argument("--attr", action="append", metavar="KEY=VALUE",
                   help="only workflows whose search attribute KEY is VALUE (compared as text; repeat to AND)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")

    c = command("show", "show one workflow: status, result and its history as a table", "[DIR] ID")
    c.add_argument("--json", action="store_true", help="print JSON (with the full history)")

    waiting = "seconds to wait for a running host to take the command (default: 2; 0 to not wait)"
    c = command("signal", "send a message to a running workflow (a durable input, delivered exactly once)",
                "[DIR] ID TOPIC [JSON|-]")
    c.epilog = "The payload is one JSON value (quote strings: '\"text\"'); - reads it from stdin; none sends nil."
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)

    c = command("cancel", "ask a running workflow to finish (it gets a CANCEL event, then is "
                "terminated after --deadline)", "[DIR] ID")
    c.add_argument("--reason", default="canceled from the command line", help="the reason in the CANCEL event")
    c.add_argument("--deadline", type=seconds_arg, default=5.0, metavar="SECONDS",
                   help="seconds it gets to finish before it is terminated (default: 5)")
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)

    c = command("terminate", "end a running workflow now (status terminated)", "[DIR] ID")
    c.add_argument("--wait", type=seconds_arg, default=2.0, metavar="SECONDS", help=waiting)
