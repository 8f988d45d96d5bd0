"""The external command mailbox: how ``wippy workflows signal|cancel|terminate`` reach a
workflow, whether or not a runtime is running its host right now.

The CLI inserts a row into the ``commands`` table of the store (durably, after checking
the run is open). A running :class:`~wippy.providers.workflow.host.WorkflowHost` drains
the table: once right after recovery on start, then every :data:`POLL_INTERVAL` seconds.
Each row is carried out exactly once: the delete of the row is queued in the same journal
transaction as what it caused (the message input of a signal, the CANCEL event input, the
close of a terminated run), so a crash either keeps both or neither.

A row for a run that is no longer open is dropped with a warning; a row for a workflow
that is halted (e.g. non-determinism) waits until the host is restarted with fixed code,
except ``terminate``, which ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wippy.errors import CANCELED, INVALID, NOT_FOUND, WippyError
from wippy.lua.codec import pack, unpack

if TYPE_CHECKING:
    from wippy.providers.workflow.host import WorkflowHost

log = logging.getLogger("wippy.workflow")

MAILBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT,
    payload BLOB,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_host ON commands (host, id);
"""

COMMAND_KINDS = ("signal", "cancel", "terminate")
POLL_INTERVAL = 0.15  # seconds between two looks at the mailbox of a running host
MAX_POLL_INTERVAL = 0.6  # an idle store is looked at less often, up to this
DEFAULT_CANCEL_DEADLINE = 5.0  # seconds a canceled workflow gets before it is terminated


@dataclass
class Command:
    id: int
    workflow_id: str
    run_id: str
    host: str
    kind: str
    topic: str | None
    payload: Any
    created: float


_SELECT = "SELECT id, workflow_id, run_id, host, kind, topic, payload, created FROM commands"


def _row(row: tuple[Any, ...]) -> Command:
    return Command(row[0], row[1], row[2], row[3], row[4], row[5],
                   None if row[6] is None else unpack(row[6]), row[7])


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='commands'").fetchone() is not None


def pending(conn: sqlite3.Connection, *, host: str | None = None, workflow_id: str | None = None) -> list[Command]:
    """Commands not yet carried out, oldest first."""
    if not _has_table(conn):
        return []
    sql, params = _SELECT, []
    where = []
    if host is not None:
        where.append("host=?")
        params.append(host)
    if workflow_id is not None:
        where.append("workflow_id=?")
        params.append(workflow_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [_row(r) for r in conn.execute(sql + " ORDER BY id", params)]


def enqueue(conn: sqlite3.Connection, workflow_or_run_id: str, kind: str, topic: str | None = None,
            payload: Any = None, *, hosts: Collection[str] | None = None) -> tuple[int, str, str]:
    """Queue a command for the latest run of ``workflow_or_run_id`` (of one of ``hosts``,
    if given), which must be open.

    Returns ``(command id, workflow ID, host ID)`` once the row is on disk; raises
    NOT_FOUND for an unknown workflow, INVALID for a closed one or a payload too large.
    SQLite errors (a busy or damaged store) are the caller's to report."""
    from wippy.providers.workflow.execution import check_size

    if kind not in COMMAND_KINDS:
        raise WippyError(INVALID, f"unknown command {kind!r} (expected {', '.join(COMMAND_KINDS)})")
    blob = None if payload is None else pack(payload)
    if kind == "signal":
        check_size(blob or b"", f"the payload of signal {topic!r}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # (not executescript: it would commit; older stores get the table here)
        for statement in MAILBOX_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        sql = ("SELECT run_id, workflow_id, host, status FROM runs WHERE (run_id=? OR workflow_id=?)")
        params: list[Any] = [workflow_or_run_id, workflow_or_run_id]
        if hosts is not None:
            sql += f" AND host IN ({', '.join('?' * len(hosts))})"
            params.extend(sorted(hosts))
        row = conn.execute(sql + " ORDER BY created DESC LIMIT 1", params).fetchone()
        if row is None:
            where = f" on host {', '.join(sorted(hosts))}" if hosts is not None else ""
            raise WippyError(NOT_FOUND, f"no workflow {workflow_or_run_id!r}{where}")
        run_id, workflow_id, run_host, status = row
        if status != "running":
            raise WippyError(INVALID,
                             f"workflow {workflow_id} is {status}; only running workflows take a {kind}")
        cur = conn.execute(
            "INSERT INTO commands (workflow_id, run_id, host, kind, topic, payload, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (workflow_id, run_id, run_host, kind, topic, blob, time.time()))
        command_id = int(cur.lastrowid or 0)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # (SQLite may have rolled back already)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return command_id, workflow_id, run_host


def is_pending(conn: sqlite3.Connection, command_id: int) -> bool:
    return conn.execute("SELECT 1 FROM commands WHERE id=?", (command_id,)).fetchone() is not None


class Mailbox:
    """The host side: drains the commands addressed to one workflow host."""

    def __init__(self, host: WorkflowHost) -> None:
        self.host = host
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # a read in a worker thread vs closing on stop
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[int] = set()  # rows whose delete is queued but not yet durable
        self._waiting: set[int] = set()  # rows left for a halted workflow (warned once)
        self._read_fault: str | None = None  # the last fault reading the mailbox (warned once)

    @property
    def enabled(self) -> bool:
        return self.host.journal.path != ":memory:"  # nobody outside can reach an in-memory store

    async def start(self) -> None:
        """Carry out what is queued now (the store is open and recovered), then poll."""
        if not self.enabled:
            return
        from wippy.providers.workflow.faults import faults
        from wippy.providers.workflow.journal import open_connection

        # A read-only connection of its own: reading never waits for the writer's lock or fsync.
        path = self.host.journal.path
        self._conn = open_connection(path, create=False, readonly=True, check=False)
        self._conn.execute("PRAGMA busy_timeout=1000")
        with faults(path):
            commands = self._fetch()
        self.drain(commands)
        self._task = asyncio.create_task(self._poll(), name=f"mailbox {self.host.host_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _fetch(self) -> list[Command]:
        with self._lock:
            if self._conn is None:
                return []
            return pending(self._conn, host=self.host.host_id)

    def _data_version(self) -> int | None:
        """SQLite's counter of commits made by *other* connections (the CLI, the journal
        writer): a few microseconds, so an idle host need not read the table at all."""
        with self._lock:
            if self._conn is None:
                return None
            return self._conn.execute("PRAGMA data_version").fetchone()[0]

    async def _poll(self) -> None:
        interval, seen = POLL_INTERVAL, None
        while True:
            await asyncio.sleep(interval)
            try:
                version = self._data_version()
                if version is not None and version == seen:  # nothing committed: back off
                    interval = min(interval * 2, MAX_POLL_INTERVAL)
                    continue
                seen = version
                commands = await asyncio.to_thread(self._fetch)
            except Exception as exc:  # busy or a passing fault: try again next time
                self._failed_read(exc)
                continue
            self._read_fault = None
            interval = POLL_INTERVAL
            if self.host.running:
                self.drain(commands)

    def _failed_read(self, exc: Exception) -> None:
        """Busy: quietly; any other fault once (naming the store) until reads work again."""
        from wippy.providers.workflow.faults import TRANSIENT, classify, store_error

        err = store_error(self.host.journal.path, exc)
        if classify(exc) == TRANSIENT or err.message == self._read_fault:
            log.debug("%s: reading the command mailbox failed: %s", self.host.host_id, err.message)
            return
        self._read_fault = err.message
        log.warning("%s: reading the command mailbox failed: %s", self.host.host_id, err.message)

    def drain(self, commands: list[Command]) -> None:
        for command in commands:
            if command.id in self._inflight:
                continue
            try:
                self._carry_out(command)
            except Exception:  # one bad row must not stop the others
                log.exception("%s: command #%d (%s for %s) failed", self.host.host_id, command.id,
                              command.kind, command.workflow_id)
                self._consume(command)

    def _carry_out(self, command: Command) -> None:
        from wippy.actors.router import make_pid

        host = self.host
        wf = host.actors.get(make_pid(host.host_id, command.workflow_id))
        what = f"{command.kind} for workflow {command.workflow_id}"
        if wf is None or wf.run.run_id != command.run_id or wf.exit_result is not None or wf._closing:
            log.warning("%s: dropping the %s: that run is no longer running", host.host_id, what)
            self._consume(command)
            return
        if wf.stuck and command.kind != "terminate":
            if command.id not in self._waiting:
                self._waiting.add(command.id)
                log.warning("%s: the %s waits: the workflow is halted (%s)", host.host_id, what, wf.stuck)
            return
        vm = host.kernel.vm
        if command.kind == "signal":
            try:
                wf.input({"in": "msg", "topic": command.topic, "from": None, "v": command.payload})
            except WippyError as err:
                log.error("%s: dropping the %s: %s", host.host_id, what, err)
        elif command.kind == "cancel":
            options = command.payload if isinstance(command.payload, dict) else {}
            host.cancel(wf.pid, None, str(options.get("reason") or "canceled from the command line"),
                        float(DEFAULT_CANCEL_DEADLINE if options.get("deadline") is None else options["deadline"]))
        elif command.kind == "terminate":
            wf.terminate(vm.to_lua(WippyError(CANCELED, "terminated from the command line", retryable=False)))
        else:
            log.error("%s: dropping command #%d: unknown kind %r", host.host_id, command.id, command.kind)
        self._consume(command)

    def _consume(self, command: Command) -> None:
        """Queue the delete: it commits in the same transaction as what the command wrote."""
        self._inflight.add(command.id)
        self._waiting.discard(command.id)
        # tagged with the run: if the store refuses what the command wrote, the row stays
        done = self.host.journal.write("DELETE FROM commands WHERE id=?", (command.id,), command.run_id)
        command_id = command.id

        def durable(_done: object) -> None:
            self._inflight.discard(command_id)

        done.add_done_callback(durable)
