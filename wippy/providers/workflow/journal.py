"""The workflow journal: runs and their append-only histories in one SQLite file.

Writes are group-committed: every write queued while the previous transaction was being
synced goes into the next one, so concurrent workflows share fsyncs. ``write()`` returns a
future that resolves once the write is on disk; callers acknowledge nothing before that.

The records of a history (the ``events`` table) are specified in :mod:`.history`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wippy.errors import INVALID, UNAVAILABLE, WippyError
from wippy.lua.codec import pack, unpack
from wippy.providers.workflow.history import Record
from wippy.providers.workflow.mailbox import MAILBOX_SCHEMA

log = logging.getLogger("wippy.journal")

FORMAT = "wippy-journal-1"
OPEN_STATUSES = ("running",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wippy_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    host TEXT NOT NULL,
    entry TEXT NOT NULL,
    status TEXT NOT NULL,
    input BLOB,
    context BLOB,
    options BLOB,
    parent TEXT,
    watchers BLOB,
    result BLOB,
    error BLOB,
    search BLOB,
    memo BLOB,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    closed REAL
);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_id, created);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (host, status);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
""" + MAILBOX_SCHEMA


@dataclass
class RunRecord:
    """One run of a workflow as stored."""

    run_id: str
    workflow_id: str
    host: str
    entry: str
    status: str
    input: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    watchers: dict[str, Any] = field(default_factory=dict)  # {"monitors": [...], "links": [...]}
    result: Any = None
    error: Any = None
    search: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    updated: float = 0.0
    closed: float | None = None
    history: list[Record] | None = None  # the records, see wippy.providers.workflow.history
    history_size: int = 0


_COLUMNS = (
    "run_id, workflow_id, host, entry, status, input, context, options, parent, watchers, "
    "result, error, search, memo, created, updated, closed"
)


def _blob(value: Any) -> bytes | None:
    return None if value is None else pack(value)


def _value(blob: bytes | None, default: Any = None) -> Any:
    return default if blob is None else unpack(blob)


def _row_to_run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0], workflow_id=row[1], host=row[2], entry=row[3], status=row[4],
        input=_value(row[5]), context=_value(row[6], {}), options=_value(row[7], {}),
        parent=row[8], watchers=_value(row[9], {}), result=_value(row[10]), error=_value(row[11]),
        search=_value(row[12], {}), memo=_value(row[13], {}), created=row[14], updated=row[15],
        closed=row[16],
    )


def open_connection(path: str, *, create: bool) -> sqlite3.Connection:
    """Open a journal file, checking it is one; clear errors name the file."""
    if path != ":memory:":
        p = Path(path)
        if not create and not p.exists():
            raise WippyError(INVALID, f"workflow store {path} does not exist")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WippyError(UNAVAILABLE, f"workflow store directory {p.parent} cannot be created: {exc}") from None
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        # Look before changing anything: a file that is not ours is left exactly as it was.
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "wippy_meta" not in tables:
            raise WippyError(INVALID, f"workflow store {path} is a SQLite database that does not belong to wippy "
                                      f"(it has tables {', '.join(sorted(tables))}); point `store:` at another file")
        if not tables and not create:
            raise WippyError(INVALID, f"workflow store {path} is empty: it is not a wippy workflow store yet")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except (sqlite3.DatabaseError, WippyError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, WippyError):
            raise
        if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in str(exc) or "readonly" in str(exc)):
            raise WippyError(UNAVAILABLE, f"workflow store {path} cannot be opened for writing: {exc} "
                                          f"(check that {Path(path).parent} is a writable directory)") from None
        raise WippyError(INVALID, f"workflow store {path} is not a usable SQLite database: {exc}") from None
    try:
        if create:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO wippy_meta (key, value) VALUES ('format', ?)", (FORMAT,))
        row = conn.execute("SELECT value FROM wippy_meta WHERE key='format'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise WippyError(UNAVAILABLE, f"workflow store {path} cannot be written: {exc}") from None
    if row is None or row[0] != FORMAT:
        conn.close()
        raise WippyError(INVALID, f"workflow store {path} has format {row[0] if row else 'unknown'!r}, expected {FORMAT!r}")
    return conn


class Journal:
    """Owns the write connection and the group-commit writer of one store."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queue: list[tuple[str, tuple[Any, ...]]] = []
        self._batch: asyncio.Future[None] | None = None
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0  # committed transactions (for benchmarks and tests)

    # Opening and closing -------------------------------------------------------------------
    def open(self) -> None:
        self._conn = open_connection(self.path, create=True)

    async def start(self) -> None:
        if self._conn is None:
            self.open()
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer = asyncio.create_task(self._write_loop(), name=f"journal {self.path}")

    async def close(self) -> None:
        """Commit what is queued, let the writer end, close the file.

        The writer is asked to stop, not cancelled: cancelling it mid-commit would leave the
        commit running in its thread while the connection is closed under it (a crash)."""
        if self._writer is not None:
            assert self._wake is not None
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._conn is not None:
            with self._lock:
                self._conn.close()
            self._conn = None

    # Writing -------------------------------------------------------------------------------
    def write(self, sql: str, params: tuple[Any, ...]) -> asyncio.Future[None]:
        """Queue one statement; the future resolves when its transaction is durable."""
        self._queue.append((sql, params))
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            assert self._wake is not None, "journal not started"
            self._wake.set()
        return self._batch

    def flush(self) -> asyncio.Future[None]:
        """A future for everything queued so far."""
        if self._batch is None:
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        return self._batch

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, waiter = self._queue, self._batch
                self._queue, self._batch = [], None
                try:
                    await asyncio.to_thread(self._commit, batch)
                except Exception as exc:  # the disk failed: every waiter hears it
                    log.error("journal %s: write failed: %s", self.path, exc)
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(WippyError(UNAVAILABLE, f"workflow store {self.path}: {exc}"))
                    continue
                self.batches += 1
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            if self._stopping:
                return

    def _commit(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = self._conn
        assert conn is not None
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in batch:
                    conn.execute(sql, params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # Statements ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> asyncio.Future[None]:
        now = time.time()
        run.created = run.updated = now
        return self.write(
            f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
            (run.run_id, run.workflow_id, run.host, run.entry, run.status, _blob(run.input),
             _blob(run.context), _blob(run.options), run.parent, _blob(run.watchers), None, None,
             _blob(run.search), _blob(run.memo), now, now, None),
        )

    def append(self, run_id: str, seq: int, data: bytes) -> asyncio.Future[None]:
        return self.write("INSERT INTO events (run_id, seq, data) VALUES (?, ?, ?)", (run_id, seq, data))

    def close_run(self, run_id: str, status: str, result: Any, error: Any) -> asyncio.Future[None]:
        now = time.time()
        return self.write(
            "UPDATE runs SET status=?, result=?, error=?, updated=?, closed=? WHERE run_id=?",
            (status, _blob(result), _blob(error), now, now, run_id),
        )

    def set_attrs(self, run_id: str, search: dict[str, Any], memo: dict[str, Any]) -> asyncio.Future[None]:
        return self.write(
            "UPDATE runs SET search=?, memo=?, updated=? WHERE run_id=?",
            (_blob(search), _blob(memo), time.time(), run_id),
        )

    def set_watchers(self, run_id: str, watchers: dict[str, Any]) -> asyncio.Future[None]:
        return self.write("UPDATE runs SET watchers=? WHERE run_id=?", (_blob(watchers), run_id))

    # Reading (start-up, CLI) ---------------------------------------------------------------
    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn
        assert conn is not None
        with self._lock:
            return conn.execute(sql, tuple(params)).fetchall()

    def open_runs(self, host: str) -> list[RunRecord]:
        """Every open run of ``host`` with its history, oldest first."""
        runs = [_row_to_run(r) for r in self._read(
            f"SELECT {_COLUMNS} FROM runs WHERE host=? AND status='running' ORDER BY created", (host,))]
        by_id = {r.run_id: r for r in runs}
        for r in runs:
            r.history = []
        for run_id, data in self._read(
            "SELECT e.run_id, e.data FROM events e JOIN runs r ON r.run_id = e.run_id "
            "WHERE r.host=? AND r.status='running' ORDER BY e.run_id, e.seq", (host,)):
            run = by_id[run_id]
            run.history.append(unpack(data))  # type: ignore[union-attr]
            run.history_size += len(data)
        return runs

    def latest_run(self, workflow_id: str) -> RunRecord | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE workflow_id=? ORDER BY created DESC LIMIT 1",
                          (workflow_id,))
        return _row_to_run(rows[0]) if rows else None


class JournalReader:
    """Read-only access for the CLI (``wippy workflows ...``), safe beside a running host."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = open_connection(path, create=False)

    def close(self) -> None:
        self._conn.close()

    def runs(self, status: str | None = None) -> list[RunRecord]:
        sql = f"SELECT {_COLUMNS} FROM runs"
        params: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status=?"
            params = (status,)
        return [_row_to_run(r) for r in self._conn.execute(sql + " ORDER BY created", params)]

    def run(self, workflow_or_run_id: str) -> RunRecord | None:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE run_id=? OR workflow_id=? ORDER BY created DESC LIMIT 1",
            (workflow_or_run_id, workflow_or_run_id)).fetchall()
        if not rows:
            return None
        run = _row_to_run(rows[0])
        run.history = []
        for (data,) in self._conn.execute("SELECT data FROM events WHERE run_id=? ORDER BY seq", (run.run_id,)):
            run.history.append(unpack(data))
            run.history_size += len(data)
        return run
