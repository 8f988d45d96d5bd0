"""The workflow journal: runs and their append-only histories in one SQLite file.

Writes are group-committed: every write queued while the previous transaction was being
synced goes into the next one, so concurrent workflows share fsyncs. ``write()`` returns a
future that resolves once the write is on disk; callers acknowledge nothing before that.
A fault of the store (a full disk, a damaged file, one statement SQLite refuses) is
handled as :mod:`.faults` describes: waited out, reported naming the file, or confined to
the workflow whose record it was.

The records of a history (the ``events`` table) are specified in :mod:`.history`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wippy.errors import INVALID, UNAVAILABLE, WippyError
from wippy.lua.codec import pack, unpack
from wippy.providers.workflow.faults import (
    DAMAGED,
    RECORD,
    SESSION,
    TRANSIENT,
    Files,
    classify,
    damaged,
    dead_sessions,
    faults,
    files,
    lost_wal_warning,
    opened_at,
    session_closed,
    session_key,
    session_opened,
    session_value,
    store_error,
    truncated_warning,
)
from wippy.providers.workflow.history import Record
from wippy.providers.workflow.mailbox import MAILBOX_SCHEMA

log = logging.getLogger("wippy.journal")

Write = tuple[str, tuple[Any, ...], "str | None"]  # statement, parameters, tag (a run ID)
RETRY_FIRST = 0.05  # seconds before the first retry of a batch a transient fault stopped
RETRY_MAX = 2.0  # seconds between two retries at most
STALL_LOG_EVERY = 30.0  # seconds between two warnings while writes wait on a fault

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
_APPEND = "INSERT INTO events (run_id, seq, data) VALUES (?, ?, ?)"


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


def open_connection(path: str, *, create: bool, readonly: bool = False, check: bool = True) -> sqlite3.Connection:
    """Open a journal file, checking that it is one and (``check``) that SQLite finds it
    intact (``PRAGMA quick_check``), before anything is written to it. ``create``: make the
    file and its tables if need be (the host); else the file must be a journal already.
    ``readonly`` connections never fold the write-ahead log into the file when they close
    last, so a crash stays visible to the next host start (see :mod:`.faults`).
    Every failure is a WippyError naming the file."""
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
        if readonly and path != ":memory:":
            uri = Path(path).absolute().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        # Look before changing anything: a file that is not ours is left exactly as it was.
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "wippy_meta" not in tables:
            raise WippyError(INVALID, f"workflow store {path} is a SQLite database that does not belong to wippy "
                                      f"(it has tables {', '.join(sorted(tables))}); point `store:` at another file")
        if not tables and not create:
            raise WippyError(INVALID, f"workflow store {path} is empty: it is not a wippy workflow store yet")
        if check and tables:
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()
            if problem is None or problem[0] != "ok":
                detail = " ".join(str(problem[0] if problem else "no answer").split())
                raise damaged(path, f"SQLite's integrity check says: {detail}")
        if create:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO wippy_meta (key, value) VALUES ('format', ?)", (FORMAT,))
        row = conn.execute("SELECT value FROM wippy_meta WHERE key='format'").fetchone()
    except Exception as exc:
        if conn is not None:
            conn.close()
        raise store_error(path, exc) from None
    if row is None or row[0] != FORMAT:
        conn.close()
        raise WippyError(INVALID, f"workflow store {path} has format {row[0] if row else 'unknown'!r}, expected {FORMAT!r}")
    return conn


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # (SQLite rolls back by itself after some errors, e.g. a full disk)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _failed(error: WippyError) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    future.exception()  # retrieved: a caller that does not look is not an error
    return future


class Journal:
    """Owns the write connection and the group-commit writer of one store.

    A write may carry a *tag* (the run ID of the workflow it belongs to): the future it
    returns is that tag's in its batch. When SQLite refuses one statement of a batch (a
    ``record`` fault, see :mod:`.faults`), that tag's statements leave the batch, the rest
    commits, the tag's future fails and :attr:`on_refused` is told; later history records
    of that tag are refused at once (the history on disk must not get a gap). A
    ``transient`` fault (a full disk) keeps the batch and retries it with back-off until it
    commits: its waiters just wait. A ``damaged`` store fails every waiter, now and later."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._queue: list[Write] = []  # the batch being formed ...
        self._batch: asyncio.Future[None] | None = None  # ... its future (untagged writes, flush())
        self._tagged: dict[str, asyncio.Future[None]] = {}  # ... and its futures by tag
        self._inflight: tuple[asyncio.Future[None] | None, dict[str, asyncio.Future[None]]] | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._broken: WippyError | None = None  # the store is damaged: nothing more is written
        self._refused: dict[str, WippyError] = {}  # tags whose history the store refused a record of
        self._session: str | None = None
        self.on_refused: Callable[[str, WippyError], None] | None = None
        self.warnings: list[str] = []  # what the checks at open found (truncated store, lost -wal)
        self.stalled: WippyError | None = None  # the transient fault writes are waiting out
        self.retry_first, self.retry_max = RETRY_FIRST, RETRY_MAX
        self.batches = 0  # committed transactions (for benchmarks and tests)

    # Opening and closing -------------------------------------------------------------------
    def open(self) -> None:
        before = files(self.path) if self.path != ":memory:" else None
        self._conn = open_connection(self.path, create=True)
        if before is not None:
            try:
                self._open_session(before)
            except BaseException:
                self._conn.close()
                self._conn = None
                if self._session is not None:
                    session_closed(self._session)
                    self._session = None
                raise

    def _open_session(self, before: Files) -> None:
        """Say what SQLite cannot (a truncated store, a -wal lost after a crash) and record
        this journal as open until :meth:`close` (see :mod:`.faults`)."""
        conn = self._conn
        assert conn is not None
        with faults(self.path):
            rows = dict(conn.execute("SELECT key, value FROM wippy_meta WHERE key LIKE ?", (SESSION + "%",)))
            dead = dead_sessions(rows)
            self.warnings = [w for w in (
                truncated_warning(self.path, before),
                lost_wal_warning(self.path, before, [opened_at(rows[k]) for k in dead]) if dead else None,
            ) if w]
            session = session_key(uuid.uuid4().hex[:12])
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM wippy_meta WHERE key=?", [(k,) for k in dead])
                conn.execute("INSERT OR REPLACE INTO wippy_meta (key, value) VALUES (?, ?)",
                             (session, session_value()))
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
            self._session = session
            session_opened(session)
            # into the file itself, so that a -wal lost after a crash cannot take it along
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        for warning in self.warnings:
            log.warning("%s", warning)

    async def start(self) -> None:
        if self._conn is None:
            self.open()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._writer = asyncio.create_task(self._write_loop(), name=f"journal {self.path}")

    async def close(self) -> None:
        """Commit what is queued, let the writer end, close the file.

        The writer is asked to stop, not cancelled: cancelling it mid-commit would leave the
        commit running in its thread while the connection is closed under it (a crash). A
        writer waiting out a full disk makes one more attempt; what it cannot write stays
        unwritten (and unacknowledged)."""
        if self._writer is not None:
            assert self._wake is not None and self._stop is not None
            self._stopping = True
            self._stop.set()
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._conn is not None:
            with self._lock:
                if self._session is not None and self._broken is None:
                    try:  # closed cleanly: the next start need not look for a lost -wal
                        self._conn.execute("DELETE FROM wippy_meta WHERE key=?", (self._session,))
                    except sqlite3.Error as exc:
                        log.warning("%s", store_error(self.path, exc).message)
                self._conn.close()
            self._conn = None
        if self._session is not None:
            session_closed(self._session)
            self._session = None

    # Writing -------------------------------------------------------------------------------
    def write(self, sql: str, params: tuple[Any, ...], tag: str | None = None) -> asyncio.Future[None]:
        """Queue one statement; the future resolves when its transaction is durable (for a
        tagged write: fails if the store refused a statement of that tag)."""
        if self._broken is not None:
            return _failed(self._broken)
        if tag is not None and sql == _APPEND and tag in self._refused:
            return _failed(self._refused[tag])
        self._queue.append((sql, params, tag))
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            assert self._wake is not None, "journal not started"
            self._wake.set()
        if tag is None:
            return self._batch
        future = self._tagged.get(tag)
        if future is None:
            future = self._tagged[tag] = asyncio.get_running_loop().create_future()
        return future

    def flush(self, tag: str | None = None) -> asyncio.Future[None]:
        """A future for everything queued so far (of ``tag``, when given)."""
        if tag is not None and tag in self._refused:
            return _failed(self._refused[tag])
        if self._batch is not None:
            return self._tagged.get(tag, self._batch) if tag is not None else self._batch
        if self._inflight is not None:
            future, tagged = self._inflight
            if tag is not None and tag in tagged:
                return tagged[tag]
            if future is not None:
                return future
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                writes, waiter, tagged = self._queue, self._batch, self._tagged
                self._queue, self._batch, self._tagged = [], None, {}
                self._inflight = (waiter, tagged)
                try:
                    refused = await self._commit_until_done(writes)
                except WippyError as err:  # the store is damaged, or the host stops while it is full
                    for future in (waiter, *tagged.values()):
                        if future is not None and not future.done():
                            future.set_exception(err)
                            future.exception()
                    continue
                finally:
                    self._inflight = None
                self.batches += 1
                self._settle(waiter, tagged, refused)
            if self._stopping:
                return

    async def _commit_until_done(self, writes: list[Write]) -> dict[str, BaseException]:
        """Commit ``writes``, retrying through transient faults (a full disk) with back-off."""
        delay, since, last_log = self.retry_first, None, None
        while True:
            if self._broken is not None:  # found damaged by an earlier batch: not one write more
                raise self._broken
            try:
                refused = await asyncio.to_thread(self._commit, writes)
            except Exception as exc:
                err = store_error(self.path, exc)
                kind = classify(exc)
                if kind != TRANSIENT or self._stopping:
                    if kind == DAMAGED:
                        self._broken = err
                    log.error("%s", err.message if kind != TRANSIENT else
                              f"{err.message}; stopping with {len(writes)} writes unwritten")
                    raise err from None
                now = time.monotonic()
                if since is None:
                    since = now
                if last_log is None or now - last_log >= STALL_LOG_EVERY:
                    last_log = now
                    log.warning("%s; %d writes wait and are retried (every %gs at most) until they succeed",
                                err.message, len(writes), self.retry_max)
                self.stalled = err
                assert self._stop is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if since is not None:
                self.stalled = None
                log.warning("workflow store %s: writes go on again after %.1fs", self.path, time.monotonic() - since)
            return refused

    def _settle(self, waiter: asyncio.Future[None] | None, tagged: dict[str, asyncio.Future[None]],
                refused: dict[str, BaseException]) -> None:
        errors: dict[str, WippyError] = {}
        for tag, exc in refused.items():
            err = store_error(self.path, exc)
            errors[tag] = self._refused[tag] = err
            log.error("%s (run %s); the rest of its batch was written", err.message, tag)
            if self.on_refused is not None:  # before any future resolves: its workflow stops first
                try:
                    self.on_refused(tag, err)
                except Exception:
                    log.exception("journal %s: on_refused failed", self.path)
        for tag, future in tagged.items():
            if future.done():
                continue
            if tag in errors:
                future.set_exception(errors[tag])
                future.exception()
            else:
                future.set_result(None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _commit(self, writes: list[Write]) -> dict[str, BaseException]:
        """One transaction (in a worker thread). A statement SQLite refuses takes its tag's
        statements out of the transaction, which is then made again without them; returns
        the refused tags with their errors. Any other error rolls back and raises."""
        conn = self._conn
        assert conn is not None
        refused: dict[str, BaseException] = {}
        with self._lock:
            while True:
                bad: tuple[int, BaseException] | None = None
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    for i, (sql, params, tag) in enumerate(writes):
                        if tag is not None and tag in refused:
                            continue
                        try:
                            conn.execute(sql, params)
                        except Exception as exc:
                            if classify(exc) != RECORD:
                                raise
                            bad = (i, exc)
                            break
                    if bad is None:
                        conn.execute("COMMIT")
                        return refused
                except BaseException:
                    _rollback(conn)
                    raise
                _rollback(conn)
                index, error = bad
                tag = writes[index][2]
                if tag is None:  # nobody to tell but the log
                    log.error("%s; that statement was left out", store_error(self.path, error).message)
                    writes = writes[:index] + writes[index + 1:]
                else:
                    refused[tag] = error

    # Statements ----------------------------------------------------------------------------
    # Each is tagged with the run it belongs to (see :meth:`write`).
    def create_run(self, run: RunRecord, tag: str | None = None) -> asyncio.Future[None]:
        """Insert ``run``; ``tag``: another run whose fate it shares (the run that a next
        run follows is closed in the same transaction: both or neither)."""
        now = time.time()
        run.created = run.updated = now
        return self.write(
            f"INSERT INTO runs ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
            (run.run_id, run.workflow_id, run.host, run.entry, run.status, _blob(run.input),
             _blob(run.context), _blob(run.options), run.parent, _blob(run.watchers), None, None,
             _blob(run.search), _blob(run.memo), now, now, None), tag or run.run_id,
        )

    def append(self, run_id: str, seq: int, data: bytes) -> asyncio.Future[None]:
        return self.write(_APPEND, (run_id, seq, data), run_id)

    def close_run(self, run_id: str, status: str, result: Any, error: Any) -> asyncio.Future[None]:
        now = time.time()
        return self.write(
            "UPDATE runs SET status=?, result=?, error=?, updated=?, closed=? WHERE run_id=?",
            (status, _blob(result), _blob(error), now, now, run_id), run_id,
        )

    def set_attrs(self, run_id: str, search: dict[str, Any], memo: dict[str, Any]) -> asyncio.Future[None]:
        return self.write(
            "UPDATE runs SET search=?, memo=?, updated=? WHERE run_id=?",
            (_blob(search), _blob(memo), time.time(), run_id), run_id,
        )

    def set_watchers(self, run_id: str, watchers: dict[str, Any]) -> asyncio.Future[None]:
        return self.write("UPDATE runs SET watchers=? WHERE run_id=?", (_blob(watchers), run_id), run_id)

    # Reading (start-up, CLI) ---------------------------------------------------------------
    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn
        assert conn is not None
        with faults(self.path), self._lock:
            return conn.execute(sql, tuple(params)).fetchall()

    def open_runs(self, host: str) -> list[RunRecord]:
        """Every open run of ``host`` with its history, oldest first."""
        with faults(self.path):
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
        with faults(self.path):
            return _row_to_run(rows[0]) if rows else None


class JournalReader:
    """Read-only access for the CLI (``wippy workflows ...``) and tests, safe beside a
    running host; ``check``: run SQLite's integrity check first. Its connection is read-only,
    so it never folds the write-ahead log of a crashed host into the file (see :mod:`.faults`)."""

    def __init__(self, path: str, *, check: bool = False) -> None:
        self.path = path
        self.conn = open_connection(path, create=False, readonly=True, check=check)

    def close(self) -> None:
        self.conn.close()

    def runs(self, status: str | None = None) -> list[RunRecord]:
        sql = f"SELECT {_COLUMNS} FROM runs"
        params: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status=?"
            params = (status,)
        with faults(self.path):
            return [_row_to_run(r) for r in self.conn.execute(sql + " ORDER BY created", params)]

    def run(self, workflow_or_run_id: str) -> RunRecord | None:
        with faults(self.path):
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE run_id=? OR workflow_id=? ORDER BY created DESC LIMIT 1",
                (workflow_or_run_id, workflow_or_run_id)).fetchall()
            if not rows:
                return None
            run = _row_to_run(rows[0])
            run.history = []
            for (data,) in self.conn.execute("SELECT data FROM events WHERE run_id=? ORDER BY seq", (run.run_id,)):
                run.history.append(unpack(data))
                run.history_size += len(data)
        return run
