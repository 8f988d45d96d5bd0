"""``wippy workflows ...``: look at and steer the durable workflows of a project, whether or
not a runtime is running them right now.

The durable hosts of a project are its entries whose kind has a workflow admin (the
``admin`` of its :class:`~wippy.registry.kinds.KindSpec`: ``workflow.host``,
``temporal.worker``, or a plugin's). Every command opens that admin
(:class:`~wippy.providers.WorkflowAdmin`) and talks only to it, so each command exists once
for every provider: what differs between a SQLite store and a Temporal server is in the
provider's admin, not here.

Exit codes: 0 ok; 1 the project, store, server or workflow is not usable (the message on
stderr names it and says what to do; never a traceback); 2 bad arguments; 130
interrupted; 141 the reader of the output went away (``wippy workflows list | head``),
which ends the command quietly.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wippy.cli_args import seconds_arg
from wippy.errors import INTERNAL, INVALID, NOT_FOUND, UNAVAILABLE, LoadError, WippyError
from wippy.providers._admin import (
    DEFAULT_CANCEL_DEADLINE,
    DEFAULT_WAIT,
    STATUSES,
    CancelInput,
    CommandResult,
    InvalidRequest,
    ListInput,
    Shown,
    SignalInput,
    TerminateInput,
    Value,
    WorkflowAdmin,
    WorkflowDetails,
    WorkflowRun,
    attr_text,
    local_time,
)

if TYPE_CHECKING:
    from wippy.registry import Entry, Registry

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 1, 2, 130, 141
VALUE_WIDTH = 60

Action = Callable[[WorkflowAdmin], Awaitable[str]]


# Finding the host ----------------------------------------------------------------------------
def durable_hosts(registry: Registry) -> list[Entry]:
    """The project's entries whose kind has a workflow admin, by ID."""
    from wippy.registry.kinds import lookup_kind

    found = []
    for entry in registry:
        spec = lookup_kind(entry.kind)
        if spec is not None and spec.admin is not None:
            found.append(entry)
    return sorted(found, key=lambda e: e.id)


def _admin_kinds() -> str:
    from wippy.registry.kinds import KINDS, load_plugins

    load_plugins()
    return ", ".join(sorted(name for name, spec in KINDS.items() if spec.admin is not None)) or "none installed"


def _make_admin(entry: Entry, registry: Registry) -> WorkflowAdmin:
    """The admin of ``entry``'s provider (no I/O yet); WippyError when it cannot be made."""
    from wippy.registry.kinds import lookup_kind

    spec = lookup_kind(entry.kind)
    assert spec is not None and spec.admin is not None
    missing = spec.missing()
    if missing is not None:
        raise WippyError(UNAVAILABLE, f"{entry.id}: {missing}")
    try:
        admin = spec.admin(entry, registry)
    except WippyError:
        raise
    except Exception as exc:  # a provider's bug must still say whose it is
        raise WippyError(INTERNAL, f"{entry.id}: the {entry.kind} provider could not open its workflows: "
                                   f"{type(exc).__name__}: {exc}") from None
    if not isinstance(admin, WorkflowAdmin):
        raise WippyError(INTERNAL, f"{entry.id}: the {entry.kind} provider's admin is a {type(admin).__name__}, "
                                   "not a WorkflowAdmin")
    return admin


def open_admin(project: str, host: str | None = None) -> WorkflowAdmin:
    """The workflow admin of the project's durable host (``host``: an entry ID or name, to
    pick one of several). Several hosts sharing one place (one store file) count as one;
    without ``host`` the admin then shows every workflow of that place."""
    from wippy.registry import load_project

    try:
        registry = load_project(Path(project))
    except LoadError as exc:
        raise WippyError(INVALID, str(exc)) from None
    every = durable_hosts(registry)
    if not every:
        raise WippyError(NOT_FOUND, f"{registry.root} has no workflow host entry (kinds {_admin_kinds()}), "
                                    "so it keeps no workflows")
    if host is not None:
        chosen = [e for e in every if host in (e.id, e.name)]
        if not chosen:
            raise WippyError(NOT_FOUND, f"no workflow host {host!r} in {registry.root}; its workflow hosts are "
                                        f"{', '.join(e.id for e in every)}")
        every = chosen[:1]
    opened: list[tuple[Entry, WorkflowAdmin | WippyError]] = []
    for entry in every:
        try:
            opened.append((entry, _make_admin(entry, registry)))
        except WippyError as err:
            if len(every) == 1:
                raise
            opened.append((entry, err))
    places = {(type(a), a.location) for _, a in opened if isinstance(a, WorkflowAdmin)}
    if len(places) > 1 or any(isinstance(a, WippyError) for _, a in opened):
        listing = ", ".join(f"{e.id} ({e.kind}: {a.location})" if isinstance(a, WorkflowAdmin)
                            else f"{e.id} ({e.kind})" for e, a in opened)
        raise WippyError(INVALID, f"{registry.root} has several workflow hosts: {listing}; "
                                  "pick one with --host ID")
    admin = opened[0][1]
    assert isinstance(admin, WorkflowAdmin)
    if host is None:
        admin.hosts = None  # every workflow of the place, whichever host entry ran it
    return admin


# Formatting ----------------------------------------------------------------------------------
def _error_json(err: WippyError) -> dict[str, Any]:
    from wippy.cli import _jsonable

    out: dict[str, Any] = {"kind": err.kind, "message": err.message}
    if err.retryable is not None:
        out["retryable"] = err.retryable
    if err.details is not None:
        out["details"] = _jsonable(err.details)
    return out


def _json(value: Any) -> Any:
    from wippy.cli import _jsonable

    return _error_json(value) if isinstance(value, WippyError) else _jsonable(value)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _short(value: Any, width: int = VALUE_WIDTH) -> str:
    if isinstance(value, WippyError):
        return _cut(str(value), width)  # KIND: message
    return _cut(json.dumps(_json(value), ensure_ascii=False, separators=(", ", ": "), default=repr), width)


def _render(shown: Shown) -> str:
    if isinstance(shown, str):
        return shown
    if isinstance(shown, Value):
        return _short(shown.value, shown.width)
    text = " ".join(_render(part) for part in shown.parts)
    return text if shown.width is None else _cut(text, shown.width)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _run_json(run: WorkflowRun) -> dict[str, Any]:
    return {
        "workflow_id": run.workflow_id, "run_id": run.run_id, "type": run.type, "entry": run.entry,
        "host": run.host, "status": run.status, "search": _json(run.search), "memo": _json(run.memo),
        "created": run.created, "closed": run.closed, **{k: _json(v) for k, v in run.extra.items()},
    }


def _details_json(d: WorkflowDetails) -> dict[str, Any]:
    out = _run_json(d.run)
    out.update({
        "input": _json(d.input), "result": _json(d.result), "error": _json(d.error), "parent": d.parent,
        "history_size": d.history.size, "history": [_json(e.data) for e in d.history.events],
        "pending": [_json(p.data) for p in d.pending],
    })
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Commands ------------------------------------------------------------------------------------
async def list_text(admin: WorkflowAdmin, query: ListInput, as_json: bool) -> str:
    runs = await admin.list(query)
    if as_json:
        return _dump([_run_json(r) for r in runs])
    if not runs:
        conditions = ([f"status {query.status}"] if query.status else []) + [f"{k}={v}" for k, v in query.attrs.items()]
        return f"no workflows{' with ' + ' and '.join(conditions) if conditions else ''} {admin.where}"
    rows: list[tuple[str, ...]] = [("WORKFLOW ID", "STATUS", "ENTRY", "HOST", "STARTED", "CLOSED", "SEARCH")]
    for r in runs:
        search = " ".join(f"{k}={attr_text(v)}" for k, v in sorted(r.search.items(), key=lambda kv: str(kv[0])))
        rows.append((r.workflow_id, r.status, r.entry or r.type, r.host, local_time(r.created), local_time(r.closed),
                     search or "-"))
    running = sum(r.status == "running" for r in runs)
    return f"{_table(rows)}\n\n{_plural(len(runs), 'workflow')} ({running} running) {admin.where}"


async def show_text(admin: WorkflowAdmin, workflow_id: str, as_json: bool) -> str:
    d = await admin.show(workflow_id)
    if as_json:
        return _dump(_details_json(d))
    run = d.run
    head = [("workflow", run.workflow_id), ("run", run.run_id),
            ("entry", run.entry) if run.entry else ("type", f"{run.type} (no workflow.lua entry of this project)"),
            ("host", run.host + (f": {d.location}" if d.location else "")),
            ("status", run.status), ("started", local_time(run.created)), ("closed", local_time(run.closed)),
            ("input", _short(d.input or [], 100))]
    if d.parent:
        head.append(("parent", d.parent))
    if run.search:
        head.append(("search", _short(run.search, 100)))
    if run.memo:
        head.append(("memo", _short(run.memo, 100)))
    if run.status == "completed":
        head.append(("result", _short(d.result, 100)))
    if d.error is not None:
        head.append(("error", _short(d.error, 200)))
    events = d.history.events
    head.append(("history", f"{_plural(len(events), d.history.unit)}, {d.history.size} bytes"))
    head += [("pending", _render(p.text)) for p in d.pending]
    width = max(len(k) for k, _ in head)
    text = "\n".join(f"{k.ljust(width)}  {v}" for k, v in head)
    if events:
        rows = [d.history.columns] + [tuple(_render(c) or "-" for c in e.cells) for e in events]
        text += "\n\n" + _table(rows)
    return text


async def _command(call: Awaitable[CommandResult]) -> str:
    return (await call).message


# Arguments -----------------------------------------------------------------------------------
def _parse_attrs(raw: list[str] | None) -> dict[str, str]:
    attrs = {}
    for item in raw or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"--attr expects KEY=VALUE, got {item!r}")
        attrs[key] = value
    return attrs


def _payload(raw: str | None) -> Any:
    if raw == "-":
        raw = sys.stdin.read()
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the payload is not valid JSON ({exc.msg} at column {exc.colno}): {raw}\n"
                             "  (a string needs JSON quotes, e.g. '\"text\"')") from None


def _split(values: list[str], required: int, optional: int, names: str) -> tuple[str, list[str]]:
    """``[DIR] REQUIRED... [OPTIONAL...]`` positionals: the project first when it is there.

    With one argument too many for the required ones alone, the first is the project if it
    is a directory, otherwise the optional argument is given."""
    n = len(values)
    if n < required or n > required + optional + 1:
        raise InvalidRequest(f"expected {names}")
    if n == required + optional + 1 or (n > required and Path(values[0]).is_dir()):
        return values[0], values[1:]
    return ".", values


def request(args: argparse.Namespace) -> tuple[str, Action]:
    """The project directory and what to do with its admin, checked before anything is
    opened (InvalidRequest for bad arguments)."""
    action = args.workflows_command
    if action == "list":
        if len(args.positional) > 1:
            raise InvalidRequest("expected [DIR]")
        query = ListInput(args.status, _parse_attrs(args.attr))
        return (args.positional[0] if args.positional else "."), lambda a: list_text(a, query, args.json)
    if action == "signal":
        project, rest = _split(args.positional, 2, 1, "[DIR] ID TOPIC [JSON]")
        SignalInput(rest[0], rest[1])  # the topic, before stdin is read
        signal = SignalInput(rest[0], rest[1], _payload(rest[2] if len(rest) > 2 else None), args.wait)
        return project, lambda a: _command(a.signal(signal))
    project, (workflow_id,) = _split(args.positional, 1, 0, "[DIR] ID")
    if action == "show":
        return project, lambda a: show_text(a, workflow_id, args.json)
    if action == "cancel":
        cancel = CancelInput(workflow_id, args.reason, args.deadline, args.wait)
        return project, lambda a: _command(a.cancel(cancel))
    terminate = TerminateInput(workflow_id, wait=args.wait)
    return project, lambda a: _command(a.terminate(terminate))


async def _perform(admin: WorkflowAdmin, action: Action) -> str:
    async with admin:
        return await action(admin)


def _write(text: str) -> None:
    """Print ``text``; BrokenPipeError when the reader has gone, also on an unbuffered
    stdout (``python -u``), whose text layer would drop the part a short write left."""
    out = sys.stdout
    raw = getattr(out, "buffer", None)
    if raw is None:  # a text-only stream (output captured by a caller)
        out.write(text + "\n")
        out.flush()
        return
    out.flush()
    data = memoryview((text + "\n").encode(out.encoding or "utf-8", out.errors or "strict"))
    while data:
        data = data[raw.write(data) or 0:]
    raw.flush()


def run(args: argparse.Namespace) -> int:
    try:
        project, action = request(args)
        text = asyncio.run(_perform(open_admin(project, args.host), action))
        _write(text)
        return 0
    except BrokenPipeError:
        # the reader stopped reading (`| head`): nothing more to say, and nothing to flush
        # at exit either (that would raise again)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_PIPE
    except WippyError as err:
        message, code = f"error: {err}", EXIT_USAGE if isinstance(err, InvalidRequest) else EXIT_ERROR
    except KeyboardInterrupt:
        message, code = "interrupted", EXIT_INTERRUPTED
    # The Temporal SDK's client sits in reference cycles (and in the frames of a caught
    # error's traceback); left to the interpreter's shutdown, its native side can take the
    # GIL while Python finalizes and abort the process (temporalio/sdk-python#300).
    gc.collect()
    print(message, file=sys.stderr, flush=True)
    return code


def add_parser(sub: Any) -> None:
    """Register ``wippy workflows`` and its sub-commands on the top-level sub-parsers."""
    p = sub.add_parser(
        "workflows",
        help="list, inspect, signal, cancel and terminate durable workflows",
        description="Look at and steer the workflows of the project's durable workflow host, whether or "
        "not `wippy run` is running it: a workflow.host's store (`store:` relative to the project; "
        "default .wippy/workflows.db), or a temporal.worker's task queue on the Temporal server of its "
        "temporal.client. DIR is the project directory (default: .).",
        epilog="On a workflow.host, signal, cancel and terminate queue a command in the store: a running "
        "host carries it out within a fraction of a second, a stopped one when it next starts. "
        "On a temporal.worker they are Temporal signals and terminations, durable once the server "
        "accepts them. "
        "Exit codes: 0 ok; 1 the project, store, server or workflow is not usable (message on stderr); "
        "2 bad arguments; 130 interrupted.",
    )
    wsub = p.add_subparsers(dest="workflows_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, positional: str) -> argparse.ArgumentParser:
        c = wsub.add_parser(name, help=help_text, description=help_text)
        c.add_argument("positional", nargs="*", metavar=positional)
        c.add_argument("--host", metavar="ID",
                       help="the workflow host (workflow.host, temporal.worker) to use when the project "
                       "has several (ID or name)")
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

    waiting = (f"seconds to wait for a running host (on Temporal: a worker) to take the command "
               f"(default: {DEFAULT_WAIT:g}; 0 to not wait)")
    c = command("signal", "send a message to a running workflow (a durable input, delivered exactly once)",
                "[DIR] ID TOPIC [JSON|-]")
    c.epilog = "The payload is one JSON value (quote strings: '\"text\"'); - reads it from stdin; none sends nil."
    c.add_argument("--wait", type=seconds_arg, default=DEFAULT_WAIT, metavar="SECONDS", help=waiting)

    c = command("cancel", "ask a running workflow to finish (it gets a CANCEL event, then is "
                "terminated after --deadline)", "[DIR] ID")
    c.epilog = ("On a temporal.worker the command itself terminates the workflow when the deadline passes, "
                "and only if --wait is at least --deadline; otherwise the deadline is not enforced.")
    c.add_argument("--reason", default=CancelInput.reason, help="the reason in the CANCEL event")
    c.add_argument("--deadline", type=seconds_arg, default=DEFAULT_CANCEL_DEADLINE, metavar="SECONDS",
                   help=f"seconds it gets to finish before it is terminated (default: {DEFAULT_CANCEL_DEADLINE:g})")
    c.add_argument("--wait", type=seconds_arg, default=DEFAULT_WAIT, metavar="SECONDS", help=waiting)

    c = command("terminate", "end a running workflow now (status terminated)", "[DIR] ID")
    c.add_argument("--wait", type=seconds_arg, default=DEFAULT_WAIT, metavar="SECONDS", help=waiting)


__all__ = ["add_parser", "durable_hosts", "open_admin", "run"]
