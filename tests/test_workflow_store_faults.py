"""Faults of a workflow.host store (the SQLite journal, see wippy/providers/workflow/faults.py),
with real SQLite files, real Lua workflows and the real CLI:

- a damaged store: ``wippy run``/``exec`` end with one clear error naming the file (no
  traceback), ``wippy workflows`` reports it damaged and writes nothing into it;
- what SQLite cannot see: a store truncated to 0 bytes, a ``-wal`` removed after a crash
  (the start warns that workflows may have been lost);
- a full disk (SQLITE_FULL, made with ``PRAGMA max_page_count``): writes are retried with
  back-off, the workflows go on by themselves, nothing is lost;
- a record the store refuses: only its workflow stops, the rest of its batch commits;
- ``PRAGMA quick_check`` at host start: a damaged page names the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import until
from tests.running import WIPPY, Running
from wippy import Runtime, load_project
from wippy.actors.router import make_pid
from wippy.cli import main as cli
from wippy.errors import WippyError
from wippy.providers.workflow import faults, mailbox
from wippy.providers.workflow.host import WorkflowHost
from wippy.providers.workflow.journal import Journal, JournalReader, RunRecord

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: waiter, kind: workflow.lua, source: file://wf.lua, method: waiter, modules: [time]}
  - {name: start, kind: process.lua, source: file://start.lua, method: start}
"""

BOOT = """\
  - {name: boot, kind: process.lua, source: file://start.lua, method: boot}
  - name: booter
    kind: process.service
    process: app:boot
    host: app:procs
    lifecycle: {auto_start: true, depends_on: [app:wfs]}
"""

WF = """\
local time = require("time")

-- takes `steps` short sleeps (a timer record each), then waits for one message
local function waiter(label, pad, steps)
  for _ = 1, steps or 0 do time.sleep("2ms") end
  local msg = process.inbox():receive()
  return {label = label, size = #(pad or ""), steps = steps or 0, payload = msg:payload():data()}
end

return {waiter = waiter}
"""

START = """\
local function start(specs)
  for _, s in ipairs(specs) do
    local _, err = process.with_options({["temporal.workflow.id"] = s.id}):spawn("app:waiter", "app:wfs",
      table.unpack(s.args))
    if err then error(err) end
  end
  return true
end

-- `wippy run`: five workflows that wait for a message, durable before "booted" is printed
local function boot()
  local specs = {}
  for i = 1, 5 do specs[i] = {id = "k-" .. i, args = {"k-" .. i}} end
  start(specs)
  print("booted")
  local events = process.events()
  while events:receive().kind ~= process.event.CANCEL do end
end

return {start = start, boot = boot}
"""


def make_project(root: Path, *, boot: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(INDEX + (BOOT if boot else ""))
    (root / "wf.lua").write_text(WF)
    (root / "start.lua").write_text(START)
    return root


def workflow_host(rt: Runtime) -> WorkflowHost:
    return cast(WorkflowHost, rt.router.hosts["app:wfs"])


def store_of(root: Path) -> Path:
    return root / "data" / "wf.db"


def spec(workflow_id: str, pad: int = 0, steps: int = 0) -> dict[str, Any]:
    return {"id": workflow_id, "args": [workflow_id, "x" * pad, steps]}


def read_runs(store: Path) -> dict[str, RunRecord]:
    """Every workflow's latest run, with its history."""
    reader = JournalReader(str(store))
    try:
        runs = {}
        for summary in reader.runs():
            run = reader.run(summary.workflow_id)
            assert run is not None
            runs[run.workflow_id] = run
        return runs
    finally:
        reader.close()


def start_workflows(root: Path, specs: list[dict[str, Any]]) -> None:
    """Run the project in this process long enough to start ``specs`` (durably: a spawn
    returns once its run is on disk); they stay open in the store."""

    async def main() -> None:
        async with Runtime(load_project(root)) as rt:
            await rt.run("app:start", specs)

    asyncio.run(main())


def wippy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WIPPY, *args], capture_output=True, text=True, timeout=60)


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], store: Path, *, changed_nothing: bool) -> str:
    """One line on stderr: ``error: ...`` naming the store, saying it is damaged and what
    to do; no traceback anywhere."""
    assert proc.returncode == 1, (proc.args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    line = errors[0]
    assert f"workflow store {store} is not a usable SQLite database" in line, line
    assert "damaged" in line and "restore the file from a backup" in line and "move it aside" in line, line
    assert ("this command changed nothing" in line) == changed_nothing, line
    return line


# 1. A damaged store -------------------------------------------------------------------------------
def _damage(store: Path, how: str) -> None:
    data = bytearray(store.read_bytes())
    if how == "header":  # SQLite's file header (the first 100 bytes) garbage
        data[:100] = b"garbage!" * 12 + b"gbg!"
    else:  # a page in the middle of the file overwritten
        page = int.from_bytes(data[16:18], "big")  # (the page size, from the header)
        middle = len(data) // page // 2 * page
        data[middle:middle + page] = b"\xee" * page
    store.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["middle", "header"])
def test_a_damaged_store_stops_run_and_exec_with_one_clear_error(tmp_path: Path, how: str) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [spec(f"w-{i}", pad=1500) for i in range(12)])
    store = store_of(root)
    assert len(read_runs(store)) == 12 and store.stat().st_size > 8 * 4096
    _damage(store, how)
    damaged = store.read_bytes()

    commands = {
        "run": ("run", str(root)),
        "exec": ("exec", str(root), "app:start", "[]"),
        "list": ("workflows", "list", str(root)),
        "signal": ("workflows", "signal", str(root), "w-1", "go", '{"n": 1}', "--wait", "0"),
    }
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:  # none of them writes: side by side
        done = {name: pool.submit(wippy, *args) for name, args in commands.items()}
        out = {name: future.result() for name, future in done.items()}

    for name in ("run", "exec"):  # the runtime does not start on it
        line = assert_one_clear_error(out[name], store, changed_nothing=False)
        assert "resumed" not in out[name].stdout and "press Ctrl-C" not in out[name].stdout, out[name].stdout
        if how == "middle":  # found by SQLite's integrity check (or the first read), named as such
            assert "integrity check" in line or "malformed" in line, line
        else:
            assert "not a database" in line, line
    # `wippy workflows list`: the store is damaged, not a healthy empty list
    assert out["list"].stdout == "" and "no workflows" not in out["list"].stderr
    assert_one_clear_error(out["list"], store, changed_nothing=True)
    assert_one_clear_error(out["signal"], store, changed_nothing=True)
    assert "queued" not in out["signal"].stdout + out["signal"].stderr

    assert store.read_bytes() == damaged  # nobody wrote into it
    wal = Path(f"{store}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


# 2. What SQLite cannot see: a truncated store, a -wal removed after a crash ------------------------
def started_and_stopped(root: Path) -> Running:
    """``wippy run`` until it is up, then Ctrl-C; it must exit 0."""
    run = Running(root)
    try:
        run.wait_for("press Ctrl-C")
    finally:
        assert run.stop() == 0, run.output
    return run


def journal_warning(run: Running) -> str | None:
    return next((line for line in run.lines if "WARN" in line and "wippy.journal" in line), None)


def test_a_store_truncated_to_0_bytes_is_reported_at_start(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    start_workflows(root, [spec(f"t-{i}") for i in range(3)])
    store = store_of(root)
    assert {r.status for r in read_runs(store).values()} == {"running"}
    store.write_bytes(b"")  # truncated (after a clean stop: no -wal beside it)

    run = started_and_stopped(root)
    warning = journal_warning(run)
    assert warning is not None, run.output
    assert f"workflow store {store} was empty (0 bytes) when it was opened" in warning
    assert "the workflows it held are lost" in warning and "restore the file from a backup" in warning
    assert (f"wippy: app:wfs resumed 0 open workflows -- WARNING: workflows in {store} may have been lost "
            "(see the warning above)") in run.lines, run.output
    assert "Traceback" not in run.output


def test_a_wal_removed_after_a_crash_is_reported_at_start(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", boot=True)
    store = store_of(root)
    wal = Path(f"{store}-wal")

    first = Running(root)
    try:
        first.wait_for("booted")  # five workflows started, on disk (in the -wal)
    finally:
        first.kill()  # a crash: the -wal is not folded into the store
    assert wal.stat().st_size > 0
    assert {r.status for r in read_runs(store).values()} == {"running"} and len(read_runs(store)) == 5
    wal.unlink()  # "cleaning up" after the crash: what the -wal held is lost
    # a reader of the store (`wippy workflows list`) makes an empty -wal in its place: that
    # must not hide the loss
    assert cli(["workflows", "list", str(root)]) == 0
    assert wal.exists() and wal.stat().st_size == 0

    second = started_and_stopped(root)
    warning = journal_warning(second)
    assert warning is not None, second.output
    assert f"workflow store {store}: the runtime that used it last did not close it (a crash" in warning
    assert f"write-ahead log {store}-wal is gone" in warning and "recent workflows may be missing" in warning
    assert any(line.startswith("wippy: app:wfs resumed 0 open workflows -- WARNING: workflows in "
                               f"{store} may have been lost") for line in second.lines), second.output

    third = started_and_stopped(root)  # a clean stop before: nothing to say
    assert "wippy: app:wfs resumed 5 open workflows" in third.lines, third.output
    assert not any("WARN" in line for line in third.lines), third.output


def test_sessions_tell_a_crashed_runtime_from_a_live_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The session rows behind the lost -wal check: a clean close leaves none; a journal of
    this process is alive; an earlier process with this very PID (a container's runtime is
    PID 1 after every restart) or a PID another process has taken since is not."""
    path = str(tmp_path / "wf.db")
    wal = Path(path + "-wal")

    async def journal_life(before_close: Callable[[sqlite3.Connection], None] | None = None) -> list[str]:
        journal = Journal(path)
        await journal.start()
        warnings = list(journal.warnings)
        run = RunRecord(run_id=os.urandom(8).hex(), workflow_id="s", host="app:wfs", entry="app:waiter",
                        status="running")
        await journal.create_run(run)
        if before_close is not None:
            conn = sqlite3.connect(path, isolation_level=None)
            before_close(conn)
            conn.close()
        await journal.close()
        return warnings

    def plant(key: str, value: str) -> Callable[[sqlite3.Connection], None]:
        def planted(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO wippy_meta (key, value) VALUES (?, ?)", (key, value))

        return planted

    assert asyncio.run(journal_life()) == []  # new
    assert asyncio.run(journal_life()) == []  # closed cleanly before
    assert not wal.exists()  # (closed cleanly: folded into the store)

    # an earlier process that had this PID crashed: its session is dead though the PID lives
    asyncio.run(journal_life(plant(faults.session_key("0ld0ld0ld0ld"), repr(time.time() - 60))))
    warnings = asyncio.run(journal_life())
    assert len(warnings) == 1 and "did not close it (a crash" in warnings[0] and path in warnings[0]
    assert warnings[0] in caplog.text  # logged as a warning when the store was opened
    assert asyncio.run(journal_life()) == []  # said once: the dead session is gone

    async def two_journals() -> list[str]:  # two hosts of one runtime on one store
        first, second = Journal(path), Journal(path)
        await first.start()
        await second.start()
        rows = dict(second._conn.execute("SELECT key, value FROM wippy_meta WHERE key LIKE 'session:%'"))  # type: ignore[union-attr]
        assert len(rows) == 2
        dead = faults.dead_sessions(rows)
        await second.close()
        await first.close()
        return dead

    assert asyncio.run(two_journals()) == []

    if not faults.identity(os.getpid()):
        return  # no /proc: PID reuse by another process cannot be told
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = faults.identity(other.pid)
        assert live
        boot = live.split(":", 1)[0]
        key = f"{faults.SESSION}{other.pid}:t0ken"
        assert faults.dead_sessions({key: f"{time.time()!r} {live}"}) == []  # that very process: alive
        assert faults.dead_sessions({key: f"{time.time()!r} {boot}:1"}) == [key]  # its PID, taken since
        assert faults.dead_sessions({key: f"{time.time()!r} another-boot:{live.split(':')[1]}"}) == [key]
        assert faults.dead_sessions({key: repr(time.time())}) == []  # no identity recorded: alive by PID
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(timeout=10)
    assert faults.dead_sessions({key: f"{time.time()!r} {live}"}) == [key]  # ended


# 3. A full disk -----------------------------------------------------------------------------------
def test_a_full_disk_is_waited_out_and_nothing_is_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_project(tmp_path / "p")
    store = store_of(root)
    caplog.set_level(logging.INFO, logger="wippy")

    async def main() -> None:
        async with Runtime(load_project(root)) as rt:
            host = workflow_host(rt)
            journal = host.journal
            journal.retry_first, journal.retry_max = 0.01, 0.05
            attempts: list[BaseException | None] = []
            commit = journal._commit

            def counted(writes: Any) -> Any:
                try:
                    refused = commit(writes)
                except BaseException as exc:
                    attempts.append(exc)
                    raise
                attempts.append(None)
                return refused

            journal._commit = counted  # type: ignore[method-assign]

            def pages(limit: int | None) -> int:
                """The store's size in pages; ``limit``: set SQLite's maximum (SQLITE_FULL above it)."""
                assert journal._conn is not None
                with journal._lock:  # (the writer uses the connection in its thread)
                    if limit is not None:
                        journal._conn.execute(f"PRAGMA max_page_count={limit}")
                    return int(journal._conn.execute("PRAGMA page_count").fetchone()[0])

            # workflows on their way (sleeping in steps) when the disk fills up
            await rt.run("app:start", [spec(f"before-{i}", steps=30) for i in range(3)])
            pages(pages(None))  # full: not one page more
            # new workflows with large inputs need new pages: their batch fails, SQLITE_FULL
            starting = asyncio.create_task(rt.run("app:start", [spec(f"during-{i}", pad=30_000) for i in range(3)]))
            await until(lambda: journal.stalled is not None and sum(a is not None for a in attempts) >= 3,
                        "three attempts failed on the full disk")
            stalled = journal.stalled
            assert stalled is not None and stalled.retryable
            assert f"workflow store {store}: the disk is full" in stalled.message
            assert "free space on the disk" in stalled.message
            assert not starting.done()  # the spawns wait for their runs to be on disk
            assert not any(w.startswith("during-") for w in read_runs(store))  # nothing half-written
            assert all(r.status == "running" for r in read_runs(store).values())

            pages(1 << 30)  # space again: the writer's next retry commits, nobody is told to retry
            await asyncio.wait_for(starting, 10)
            await until(lambda: journal.stalled is None, "the stall to end")
            for i in range(3):
                for group in ("before", "during"):
                    assert host.deliver(make_pid("app:wfs", f"{group}-{i}"), "go", rt.kernel.vm.to_lua({"n": i}), None)
            await until(lambda: {r.status for r in read_runs(store).values()} == {"completed"}
                        and len(read_runs(store)) == 6, "every workflow to complete")
            assert attempts[-1] is None

    asyncio.run(main())
    runs = read_runs(store)
    for i in range(3):
        before, during = runs[f"before-{i}"], runs[f"during-{i}"]
        assert before.result == {"label": f"before-{i}", "size": 0, "steps": 30, "payload": {"n": i}}
        assert during.result == {"label": f"during-{i}", "size": 30_000, "steps": 0, "payload": {"n": i}}
        assert before.history is not None and len(before.history) == 2 * 30 + 1  # every sleep and the message
    text = caplog.text
    assert "the disk is full" in text and "are retried" in text and "writes go on again after" in text
    assert "Traceback" not in text


# 4. One record refused: only its workflow stops -----------------------------------------------------
def test_a_refused_record_stops_only_its_workflow(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_project(tmp_path / "p")
    store = store_of(root)
    start_workflows(root, [spec(f"r-{i}") for i in (1, 2, 3)])
    run_ids = {w: r.run_id for w, r in read_runs(store).items()}
    bad = run_ids["r-2"]

    # The store refuses every history record of r-2 (a constraint: SQLITE_CONSTRAINT).
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute(f"CREATE TRIGGER refuse_r2 BEFORE INSERT ON events WHEN NEW.run_id = '{bad}' "
                 "BEGIN SELECT RAISE(ABORT, 'planted: no records of r-2'); END")
    conn.close()
    # A signal for each, queued in the store: the host carries them out together when it
    # starts, so their records go into one batch.
    for i in (1, 2, 3):
        assert cli(["workflows", "signal", str(root), f"r-{i}", "go", f'{{"n": {i}}}', "--wait", "0"]) == 0

    batches: list[tuple[set[str | None], set[str]]] = []
    commit = Journal._commit

    def spied(self: Journal, writes: list[Any]) -> dict[str, BaseException]:
        refused = commit(self, writes)
        batches.append(({tag for _, _, tag in writes}, set(refused)))
        return refused

    monkeypatch.setattr(Journal, "_commit", spied)

    async def second_life() -> None:
        async with Runtime(load_project(root)) as rt:
            host = workflow_host(rt)
            assert host.recovered == 3
            await until(lambda: all(read_runs(store)[w].status == "completed" for w in ("r-1", "r-3")),
                        "r-1 and r-3 to complete")
            stopped = host.actors.get(make_pid("app:wfs", "r-2"))
            assert stopped is not None and stopped.stuck is not None
            assert f"workflow store {store} refused a record" in stopped.stuck and "planted" in stopped.stuck
            assert "restart the host to resume it" in stopped.stuck

    asyncio.run(second_life())
    # the three signals' records were in one batch: r-2's left it, the others committed
    assert ({bad}, ) == tuple(refused for tags, refused in batches if refused)
    together = [tags for tags, refused in batches if refused]
    assert set(run_ids.values()) <= together[0]
    runs = read_runs(store)
    assert runs["r-1"].result["payload"] == {"n": 1} and runs["r-3"].result["payload"] == {"n": 3}
    assert runs["r-2"].status == "running" and runs["r-2"].history == []  # open, where its history ends
    reader = JournalReader(str(store))
    try:
        assert [c.workflow_id for c in mailbox.pending(reader.conn)] == ["r-2"]  # its signal is still queued
    finally:
        reader.close()
    assert f"refused a record: planted: no records of r-2 (run {bad}); the rest of its batch was written" in caplog.text
    assert "Traceback" not in caplog.text

    # The fault is gone: a restart resumes r-2 from its last record, and its signal arrives.
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute("DROP TRIGGER refuse_r2")
    conn.close()
    monkeypatch.undo()

    async def third_life() -> int:
        async with Runtime(load_project(root)) as rt:
            await until(lambda: read_runs(store)["r-2"].status == "completed", "r-2 to complete")
            return workflow_host(rt).recovered

    assert asyncio.run(third_life()) == 1
    resumed = read_runs(store)["r-2"]
    assert resumed.result == {"label": "r-2", "size": 0, "steps": 0, "payload": {"n": 2}}
    assert resumed.history == [{"in": "msg", "topic": "go", "from": None, "v": {"n": 2}}]


# 5. quick_check at open ---------------------------------------------------------------------------
def test_quick_check_at_host_start_finds_a_damaged_page(tmp_path: Path) -> None:
    """A damaged page that reading the open workflows would never touch (an index the start
    does not use): SQLite's integrity check finds it, the host names the file."""
    root = make_project(tmp_path / "p")
    start_workflows(root, [spec(f"q-{i}") for i in range(5)])
    store = store_of(root)
    conn = sqlite3.connect(store)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    (root_page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='runs_by_workflow'").fetchone()
    conn.close()
    data = bytearray(store.read_bytes())
    data[(root_page - 1) * page:root_page * page] = b"\xee" * page
    store.write_bytes(bytes(data))
    damaged = store.read_bytes()

    # without the check, the store reads fine
    plain = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        assert len(plain.execute("SELECT run_id FROM runs WHERE host='app:wfs' AND status='running'").fetchall()) == 5
    finally:
        plain.close()

    async def start() -> None:
        async with Runtime(load_project(root)):
            raise AssertionError("the host started on a damaged store")

    with pytest.raises(WippyError) as info:
        asyncio.run(start())
    message = info.value.message
    assert f"workflow store {store} is not a usable SQLite database" in message
    assert "SQLite's integrity check says" in message and "move it aside" in message
    assert store.read_bytes() == damaged
    with pytest.raises(WippyError, match="integrity check"):
        JournalReader(str(store), check=True)
