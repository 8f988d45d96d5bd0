"""``wippy workflows`` on a ``workflow.host``: the :class:`~wippy.providers.WorkflowAdmin`
of a journal store, usable whether or not a runtime is running the host right now.

``list`` and ``show`` read the store (:class:`~wippy.providers.workflow.journal.JournalReader`);
``signal``, ``cancel`` and ``terminate`` put a command into the store's mailbox
(:mod:`wippy.providers.workflow.mailbox`): a running host carries it out within a
fraction of a second, a stopped one when it next starts. A command waits up to its
``wait`` seconds to say which of the two happened.

The store is checked when it is opened (``PRAGMA quick_check``): a damaged file is
reported, naming it, before anything is read from it or queued into it. Every fault of
the store is told as :mod:`wippy.providers.workflow.faults` tells it for the runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, NOT_FOUND, UNAVAILABLE, UNKNOWN, WippyError
from wippy.providers._admin import (
    CancelInput,
    CommandResult,
    HistoryEvent,
    ListInput,
    PendingWork,
    Shown,
    SignalInput,
    TerminateInput,
    Text,
    Value,
    WorkflowAdmin,
    WorkflowDetails,
    WorkflowHistory,
    WorkflowRun,
    attr_text,
    local_time,
)
from wippy.providers.workflow import mailbox
from wippy.providers.workflow.faults import DAMAGED, RECOVER, StoreDamaged, classify, store_error

if TYPE_CHECKING:
    from wippy.providers.workflow.journal import JournalReader, RunRecord
    from wippy.registry import Entry, Registry

SQLITE_HEADER = b"SQLite format 3\x00"
HISTORY_COLUMNS = ("SEQ", "KIND", "OP", "KEY/REF", "VALUE")
VALUE_WIDTH = 60
POLL = 0.05  # seconds between two looks at whether a running host took a command



class JournalAdmin(WorkflowAdmin):
    """The workflows in the store of one ``workflow.host`` entry."""

    def __init__(self, entry: Entry, registry: Registry) -> None:
        from wippy.providers.workflow.host import store_path

        super().__init__(entry, registry)
        self.path = store_path(entry, Path(registry.root))
        if self.path == ":memory:":
            raise WippyError(INVALID, f"{entry.id} keeps its workflows in memory (store: \":memory:\"); "
                                      "they cannot be seen from outside the runtime that runs them")
        self._reader: JournalReader | None = None
        self._conn: sqlite3.Connection | None = None  # the mailbox's connection

    @property
    def location(self) -> str:
        return self.path

    # Opening ----------------------------------------------------------------------------------
    def _open(self, *, missing_ok: bool = False) -> bool:
        """Open and check the store (once); False when it does not exist and ``missing_ok``.

        The reader's connection is read-only and stays open until after the mailbox's
        (read-write) one has closed: a command never folds the write-ahead log of a host
        that crashed into the file, so the host still sees the crash when it starts."""
        if self._reader is not None:
            return True
        path = Path(self.path)
        if not path.exists():
            if missing_ok:
                return False
            raise WippyError(NOT_FOUND, f"the workflow store {self.path} does not exist yet "
                                        f"({self.entry.id} has not run)")
        self._check_header(path)
        from wippy.providers.workflow.journal import JournalReader

        with self._faults():
            # SQLite's own check first (quick_check): nothing is read from or queued into a
            # store the check finds damaged; then that the store is wippy's, of this format.
            self._reader = JournalReader(self.path, check=True)
        return True

    def _writer(self) -> sqlite3.Connection:
        """The connection that queues commands into the mailbox (opened on first use)."""
        if self._conn is None:
            from wippy.providers.workflow.journal import open_connection

            with self._faults():
                self._conn = open_connection(self.path, create=False, check=False)
        return self._conn

    def _check_header(self, path: Path) -> None:
        try:
            with path.open("rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise WippyError(UNAVAILABLE, f"workflow store {self.path} cannot be read: {exc.strerror or exc} "
                                          "(check its permissions)") from None
        if not head:
            raise WippyError(INVALID, f"workflow store {self.path} is empty (0 bytes): it holds no workflows. "
                                      "If the host had run before, the file was truncated and its workflows "
                                      f"are lost; {RECOVER}")
        if head != SQLITE_HEADER:
            raise self._damaged("the file is damaged, or is no SQLite file at all (it does not start "
                                "with a SQLite header)")

    def _damaged(self, detail: str) -> WippyError:
        return WippyError(INVALID, f"workflow store {self.path} is not a usable SQLite database: {detail}; "
                                   f"this command changed nothing. To go on, {RECOVER}", retryable=False)

    @contextlib.contextmanager
    def _faults(self) -> Iterator[None]:
        """Every failure of the store as a WippyError naming the file (see
        :mod:`wippy.providers.workflow.faults`); a damaged store says this command changed
        nothing."""
        try:
            yield
        except StoreDamaged as err:
            raise self._damaged(f"the file is damaged ({err.detail})") from None
        except WippyError:
            raise
        except Exception as exc:  # sqlite3 errors, a record the codec cannot read
            if classify(exc) == DAMAGED:
                raise self._damaged(f"the file is damaged ({type(exc).__name__}: {exc})") from None
            raise store_error(self.path, exc) from None

    async def close(self) -> None:
        if self._conn is not None:  # the read-write connection first (see _open)
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._reader.close()
            self._reader = None

    def _mine(self, host: str) -> bool:
        return self.hosts is None or host in self.hosts

    def _on_host(self) -> str:
        if self.hosts is None:
            return ""
        return f" on host {', '.join(sorted(self.hosts))}"

    # Reading ----------------------------------------------------------------------------------
    async def list(self, query: ListInput) -> list[WorkflowRun]:
        if not self._open(missing_ok=True):
            return []
        assert self._reader is not None
        with self._faults():
            runs = self._reader.runs(query.status)
        runs = [r for r in runs if self._mine(r.host)
                and all(k in r.search and attr_text(r.search[k]) == v for k, v in query.attrs.items())]
        return [_summary(r) for r in runs]

    async def show(self, workflow_id: str) -> WorkflowDetails:
        self._open()
        assert self._reader is not None
        with self._faults():
            run = self._reader.run(workflow_id)
            if run is None or not self._mine(run.host):
                raise WippyError(NOT_FOUND, f"no workflow {workflow_id!r}{self._on_host()} in {self.path}")
            queued = mailbox.pending(self._reader.conn, workflow_id=run.workflow_id)
            history = run.history or []
            events = [HistoryEvent(_history_cells(i, r), r) for i, r in enumerate(history)]
        return WorkflowDetails(
            run=_summary(run), input=list(run.input or []), result=run.result, error=_error(run.error),
            parent=run.parent, history=WorkflowHistory(HISTORY_COLUMNS, events, run.history_size),
            pending=[_pending(c) for c in queued],
        )

    # Commands ---------------------------------------------------------------------------------
    async def signal(self, request: SignalInput) -> CommandResult:
        return await self._send(request.workflow_id, "signal", request.topic, request.payload,
                                f"signal {request.topic!r}", request.wait)

    async def cancel(self, request: CancelInput) -> CommandResult:
        options = {"reason": request.reason, "deadline": request.deadline}
        return await self._send(request.workflow_id, "cancel", None, options, "cancel", request.wait)

    async def terminate(self, request: TerminateInput) -> CommandResult:
        return await self._send(request.workflow_id, "terminate", None, None, "terminate", request.wait)

    async def _send(self, workflow_id: str, kind: str, topic: str | None, payload: Any, what: str,
                    wait: float) -> CommandResult:
        self._open()
        conn = self._writer()
        try:
            with self._faults():
                command_id, wf_id, host = mailbox.enqueue(conn, workflow_id, kind, topic, payload,
                                                          hosts=self.hosts)
        except WippyError as err:
            if err.kind == NOT_FOUND:
                raise WippyError(NOT_FOUND, f"no workflow {workflow_id!r}{self._on_host()} in {self.path}") from None
            raise
        deadline = time.monotonic() + max(wait, 0.0)
        with self._faults():
            taken = not mailbox.is_pending(conn, command_id)
            while not taken and time.monotonic() < deadline:
                await asyncio.sleep(POLL)
                taken = not mailbox.is_pending(conn, command_id)
        if taken:
            return CommandResult(wf_id, f"{what} for workflow {wf_id}: carried out by the running host {host}",
                                 delivered=True)
        waited = f" within {wait:g}s" if wait > 0 else ""
        return CommandResult(wf_id, f"{what} for workflow {wf_id}: queued in {self.path}; no running host "
                                    f"took it{waited}, {host} carries it out when it runs", delivered=False,
                             status="running")


# Shapes -------------------------------------------------------------------------------------------
def _summary(run: RunRecord) -> WorkflowRun:
    return WorkflowRun(
        workflow_id=run.workflow_id, run_id=run.run_id, status=run.status, host=run.host, type=run.entry,
        entry=run.entry, created=run.created, closed=run.closed, search=dict(run.search or {}),
        memo=dict(run.memo or {}),
        extra={"input": run.input, "result": run.result, "error": run.error, "parent": run.parent,
               "updated": run.updated},
    )


def _error(value: Any) -> WippyError | None:
    if value is None or isinstance(value, WippyError):
        return value
    if isinstance(value, dict) and "message" in value:
        return WippyError(str(value.get("kind") or UNKNOWN), str(value["message"]),
                          retryable=value.get("retryable"), details=value.get("details"))
    return WippyError(UNKNOWN, str(value))


def _pending(command: mailbox.Command) -> PendingWork:
    what: tuple[str | Value, ...] = (command.kind,)
    if command.kind == "signal":
        what = (f"signal {command.topic!r}", Value(command.payload, 40))
    text = Text((*what, f"(queued {local_time(command.created)}; carried out when {command.host} runs)"))
    data = {"id": command.id, "kind": command.kind, "topic": command.topic, "payload": command.payload,
            "created": command.created}
    return PendingWork(text, data)


def _history_cells(seq: int, record: dict[str, Any]) -> tuple[Shown, ...]:
    """``(seq, kind, op, key/ref, value)`` of one history record (see
    :mod:`wippy.providers.workflow.history` for the format)."""
    if "in" in record:
        return (str(seq), "input", *_input_cells(record))
    rest = {k: v for k, v in record.items() if k not in ("op", "key")}
    shown: Shown
    if "too_large" in rest:
        shown = Text(("too large: " + str(rest["too_large"]),), VALUE_WIDTH)
    elif set(rest) in ({"at"}, {"at", "every"}) and isinstance(rest["at"], (int, float)):
        every = rest.get("every")
        shown = "at " + local_time(rest["at"] / 1e9) + (f" every {every / 1e9:g}s" if every else "")
    elif len(rest) == 1:
        shown = Value(next(iter(rest.values())))
    else:
        shown = Value(rest) if rest else "-"
    key = record.get("key")
    key_text: Shown = "-" if key is None else (f"#{key}" if isinstance(key, int) else Value(key, 40))
    return str(seq), "command", str(record.get("op")), key_text, shown


def _input_cells(record: dict[str, Any]) -> tuple[Shown, Shown, Shown]:
    """``(op, key/ref, value)`` of an input record: an activity result, a message, an event."""
    kind = record["in"]
    if kind == "done":
        value = record["e"] if record.get("e") is not None else record.get("v")
        return "done", f"#{record.get('ref')}", Value(value)
    if kind == "msg":
        sender = (f"from {record['from']}",) if record.get("from") else ()
        return "msg", str(record.get("topic")), Text((Value(record.get("v")), *sender))
    event = dict(record.get("event") or {})
    what = str(event.pop("kind", "?"))
    return str(kind), what, Value(event)
