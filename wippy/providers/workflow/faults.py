"""Faults of a workflow store (the SQLite journal), told the same way by every command that
touches one: the runtime's host, ``wippy workflows`` and the readers tests use.

Every SQLite error becomes a :class:`~wippy.errors.WippyError` naming the file and what to
do (:func:`store_error`); none reaches the user as a traceback. Errors fall in four
classes (:func:`classify`), which decide what the journal's writer does with them:

- ``transient`` -- the disk is full, an I/O error, the file is busy, locked or read-only
  for now: the writer keeps the batch and tries again with back-off, and the workflows
  whose writes wait go on by themselves once the fault is gone;
- ``damaged`` -- the file is not (or no longer) a SQLite database: nothing more is
  written to it, and the message says how to recover;
- ``record`` -- one statement is refused (a constraint, a value SQLite will not take):
  only the workflow that wrote it stops, the rest of its batch commits;
- ``other`` -- anything else, reported as it is.

What SQLite cannot see is checked when the host opens the store (``Journal.open``): a store
truncated to 0 bytes, and a write-ahead log (``-wal``) removed after a crash, found through
the sessions a runtime records in the store (a row per open journal, written into the file
itself at open, removed when the journal closes cleanly; a session whose process has ended
-- or whose PID now belongs to another process -- marks a crash, and a crash with no
``-wal`` beside the store, or an empty one, is a lost log).

What neither SQLite nor these checks can detect:

- a store replaced by an older copy of itself (a backup restored over it, a snapshot), or
  removed altogether: the host starts on what it finds, an absent store as a new one;
- bytes changed inside a record in a way that keeps the page valid (a flipped bit in a
  stored value): ``PRAGMA quick_check`` checks the structure of the pages, not the values;
  a value the codec cannot read back is reported as damage when it is read;
- damage in the parts of the file ``quick_check`` does not look at (free pages) -- harmless
  until they are used -- and damage done after the check, while a runtime runs, which is
  found when the damaged page is next read or written;
- a ``-wal`` removed while the runtime that wrote it still runs (it writes on into the
  removed file) or after a clean stop (nothing is lost then);
- a ``-wal`` lost after a crash whose session row never reached the file (a reader held the
  checkpoint at its start back);
- where ``/proc`` cannot be read (not Linux), a crashed runtime whose PID another live
  process has taken since: its session looks alive until that process ends.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wippy.errors import INVALID, UNAVAILABLE, WippyError

RECOVER = ("stop any runtime using it, then restore the file from a backup, or move it aside "
           "(with its -wal and -shm files) so that the host starts an empty store; the workflows "
           "in it are then lost")

TRANSIENT, DAMAGED, RECORD, OTHER = "transient", "damaged", "record", "other"

_TRANSIENT_CODES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_READONLY",
                    "SQLITE_CANTOPEN", "SQLITE_NOMEM", "SQLITE_PROTOCOL", "SQLITE_INTERRUPT")
_DAMAGED_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_FORMAT")
_RECORD_CODES = ("SQLITE_CONSTRAINT", "SQLITE_TOOBIG", "SQLITE_MISMATCH", "SQLITE_RANGE")
_TRANSIENT_TEXT = ("disk is full", "disk I/O", "locked", "busy", "readonly", "read-only", "unable to open")
_DAMAGED_TEXT = ("malformed", "not a database", "corrupt")


def classify(exc: BaseException) -> str:
    """``transient``, ``damaged``, ``record`` or ``other`` (see the module docstring)."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name.startswith(_DAMAGED_CODES):
            return DAMAGED
        if name.startswith(_TRANSIENT_CODES):
            return TRANSIENT
        if name.startswith(_RECORD_CODES):
            return RECORD
        text = str(exc)
        if any(t in text for t in _DAMAGED_TEXT):
            return DAMAGED
        if any(t in text for t in _TRANSIENT_TEXT):
            return TRANSIENT
        if isinstance(exc, (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                            sqlite3.DataError)):
            return RECORD
        return OTHER
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError)):
        return DAMAGED  # a record the codec cannot read back: the file holds garbage
    return OTHER


class StoreDamaged(WippyError):
    """A store that is not a usable SQLite database (any more); ``detail`` says why."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(INVALID, f"workflow store {path} is not a usable SQLite database: the file is damaged "
                                  f"({detail}); to go on, {RECOVER}", retryable=False)
        self.detail = detail


def damaged(path: str, detail: str) -> StoreDamaged:
    return StoreDamaged(path, detail)


def store_error(path: str, exc: BaseException) -> WippyError:
    """``exc`` (a SQLite error, or a record that cannot be read back) as a WippyError
    naming the store and what to do about it."""
    if isinstance(exc, WippyError):
        return exc
    text = " ".join(str(exc).split()) or type(exc).__name__
    kind = classify(exc)
    folder = Path(path).parent
    if kind == DAMAGED:
        what = text if isinstance(exc, sqlite3.Error) else f"{type(exc).__name__}: {text}"
        return damaged(path, f"SQLite says: {what}" if isinstance(exc, sqlite3.Error) else what)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return WippyError(UNAVAILABLE, f"workflow store {path}: the disk is full ({text}); free space on the "
                                       f"disk that holds {folder}", retryable=True)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text or "busy" in text:
        return WippyError(UNAVAILABLE, f"workflow store {path} is busy ({text}): another process holds its "
                                       "write lock; try again", retryable=True)
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text or "unable to open" in text:
        return WippyError(UNAVAILABLE, f"workflow store {path} cannot be written: {text} (check that the file "
                                       f"and its directory {folder} are writable)", retryable=True)
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return WippyError(UNAVAILABLE, f"workflow store {path}: disk I/O error ({text}); check the disk and "
                                       "the file", retryable=True)
    if kind == RECORD:
        return WippyError(INVALID, f"workflow store {path} refused a record: {text}", retryable=False)
    return WippyError(UNAVAILABLE, f"workflow store {path}: {text}", retryable=False)


@contextlib.contextmanager
def faults(path: str) -> Iterator[None]:
    """Every error of the block as :func:`store_error` of ``path``."""
    try:
        yield
    except WippyError:
        raise
    except Exception as exc:
        raise store_error(path, exc) from None


# What SQLite cannot see -------------------------------------------------------------------------
SESSION = "session:"  # wippy_meta keys of the journals open on the store: session:<pid>:<token>


@dataclass
class Files:
    """The store's files as they were before anything opened it."""

    exists: bool
    size: int
    wal: bool  # a -wal with something in it (a reader of a store whose -wal is gone makes an empty one)
    shm: bool


def files(path: str) -> Files:
    p = Path(path)
    try:
        size = p.stat().st_size
        exists = True
    except OSError:
        size, exists = 0, False
    try:
        wal = Path(path + "-wal").stat().st_size > 0
    except OSError:
        wal = False
    return Files(exists, size, wal, Path(path + "-shm").exists())


def truncated_warning(path: str, before: Files) -> str | None:
    """A store that was there but empty: it was truncated, or created empty by hand."""
    if not before.exists or before.size:
        return None
    if before.wal or before.shm:
        why = "it had been in use (its -wal/-shm files are beside it), so it was truncated"
    else:
        why = "if a host had used it before, the file was truncated"
    return (f"workflow store {path} was empty (0 bytes) when it was opened: {why} and the workflows it "
            "held are lost; the host goes on with an empty store. To get them back, stop the runtime and "
            "restore the file from a backup")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def identity(pid: int) -> str:
    """What tells process ``pid`` from a later one with the same PID: ``boot:start`` (the
    boot it runs in, its start time in clock ticks since that boot), read from ``/proc``;
    "" where that cannot be read (not Linux, or no such process)."""
    boot = _boot()
    if not boot:
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat[stat.rindex(")") + 2:].split()[19]  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return ""
    return f"{boot}:{start}"


_LIVE: set[str] = set()  # the session keys of the journals this process has open


def session_key(token: str) -> str:
    return f"{SESSION}{os.getpid()}:{token}"


def session_value() -> str:
    """What a session row holds: when it was opened and who opened it (see :func:`identity`)."""
    who = identity(os.getpid())
    return f"{time.time()!r} {who}" if who else repr(time.time())


def session_opened(key: str) -> None:
    _LIVE.add(key)


def session_closed(key: str) -> None:
    _LIVE.discard(key)


def dead_sessions(rows: dict[str, str]) -> list[str]:
    """The keys of the sessions (``key -> value``) whose process has ended without closing
    its journal (a crash): a PID that is no process now, that another process has taken
    since (its start time or the boot differs), or this process's PID but no journal of
    this process (an earlier process had this PID: a container's runtime is often PID 1)."""
    dead = []
    boot = _boot()
    for key, value in rows.items():
        try:
            pid = int(key[len(SESSION):].split(":", 1)[0])
        except ValueError:
            dead.append(key)
            continue
        parts = str(value).split()
        recorded = parts[1] if len(parts) > 1 else ""
        if pid == os.getpid():
            gone = key not in _LIVE
        elif recorded and boot:
            now = identity(pid)  # ("" when gone, or not ours to read: then whether the PID lives)
            gone = recorded.split(":", 1)[0] != boot or (now != recorded if now else not _alive(pid))
        else:
            gone = not _alive(pid)
        if gone:
            dead.append(key)
    return dead


def lost_wal_warning(path: str, before: Files, opened: list[str]) -> str | None:
    """A runtime ended without closing the store (a crash) and the store has no -wal file
    now, or an empty one: it was removed after the crash, with what was committed since the
    last checkpoint (an empty one is what a reader of the store makes in its place)."""
    if before.wal or not before.exists or not before.size:
        return None
    since = ", ".join(sorted(opened)) or "?"
    leftover = " (its -shm file is still there)" if before.shm else ""
    return (f"workflow store {path}: the runtime that used it last did not close it (a crash; opened at "
            f"{since}), and its write-ahead log {path}-wal is gone or empty{leftover}: it was removed after the "
            "crash, so what was committed after the last checkpoint is lost and the store holds an "
            "earlier state (recent workflows may be missing, others may run steps again). If you still "
            f"have {Path(path).name}-wal, stop the runtime and put it back beside the store")


def opened_at(value: str) -> str:
    """The time a session row records, for messages."""
    first = (str(value).split() or [""])[0]
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(first)))
    except ValueError:
        return str(value)
