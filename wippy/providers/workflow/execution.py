"""A workflow run: a process whose history is the truth and whose Lua state is rebuilt
by replaying that history.

The run follows one rule that makes replay exact: **inputs are applied one at a time,
only when the workflow is quiescent** (every coroutine blocked). Inputs are everything
that comes from outside -- an activity result, a timer firing, a message, an EXIT event --
and each is written to the journal, then applied once durable. Between two inputs the
workflow runs deterministically, so the order of inputs alone decides what it does.

The history interleaves two streams (their records are specified in :mod:`.history`):

- command records (``{"op": ..., ...}``), written as the code issues commands; on replay
  the code must issue the same commands in the same order, and recorded values
  (time, random bytes, versions) are answered from the record;
- input records (``{"in": kind, ...}``), applied in order at quiescent points.

External effects (starting an activity, arming a timer, sending a message) run only
after the records that led to them are committed, so a crash never leaves an effect
whose cause is not on disk; an effect whose completion was not recorded runs again after
a restart (at-least-once for activities, at-most-once for messages).

A run may be created before its code is due (``start_delay``, a retry back-off, the wait
for the next cron time): until :meth:`Workflow.begin` its code does not run and inputs
that arrive are recorded but not applied, so they reach the code at its first quiescent
point -- exactly where a replay applies them. A run that ends while its workflow goes on
(retry, cron) is closed in the same transaction as the next run is created, and ends
quietly: monitors, links and ``process.exec`` callers stay with the workflow ID.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.host import ExitResult
from wippy.actors.process import Process
from wippy.actors.router import make_pid
from wippy.actors.scheduler import LuaTask
from wippy.errors import CANCELED, INTERNAL, INVALID, WippyError
from wippy.lua.codec import pack
from wippy.providers._durable.exits import exit_to_links
from wippy.providers._durable.options import StartOptions
from wippy.providers.workflow import history
from wippy.providers.workflow.history import Record

if TYPE_CHECKING:
    from wippy.providers.workflow.host import WorkflowHost
    from wippy.providers.workflow.journal import RunRecord

log = logging.getLogger("wippy.workflow")

MAX_RECORD_BYTES = 2 * 1024 * 1024  # one history record (and a run's result) at most, packed


class RecordTooLarge(WippyError):
    """A value too large to record. A command whose record is too large leaves a small
    marker record in its place, so replay raises the same error at the same point."""

    def __init__(self, message: str) -> None:
        super().__init__(INVALID, message, retryable=False)


def check_size(data: bytes, what: str | Callable[[], str]) -> bytes:
    """``data`` (packed), or RecordTooLarge naming ``what``, the size and the limit.
    ``what`` may be a function, so hot paths only build the description on failure."""
    if len(data) > MAX_RECORD_BYTES:
        if callable(what):
            what = what()
        raise RecordTooLarge(f"{what} is {len(data)} bytes packed, over the limit of {MAX_RECORD_BYTES} bytes "
                             "for one workflow history record; pass a reference (an ID, a file name) instead")
    return data


HOST_STOPPED = "host stopped"
RUN_KEY = "wippy.run"  # in a run's stored options: attempt, run number, start times, parent run


class NonDeterminism(WippyError):
    def __init__(self, message: str) -> None:
        super().__init__(INTERNAL, message, retryable=False)


class Op:
    """An outstanding asynchronous command (activity, timer, child) awaiting its input."""

    __slots__ = ("seq", "record", "on_done", "live", "lua_args")

    def __init__(self, seq: int, record: Record, on_done: Callable[[Record], bool | None]):
        """``on_done(input)`` handles the done input; True keeps the operation waiting for
        the next one (a ticker)."""
        self.seq = seq
        self.record = record
        self.on_done = on_done
        self.live = False  # its effect has been started in this process
        self.lua_args: Any = None  # an activity's Lua arguments as issued, for its first attempt


class RunQueue:
    """The scheduler interface for one workflow's own tasks: every wake-up queues locally
    and runs inside :meth:`Workflow.run_now`, never on the shared run queue."""

    __slots__ = ("wf",)

    def __init__(self, wf: Workflow) -> None:
        self.wf = wf

    @property
    def loop(self) -> Any:
        return self.wf.kernel.scheduler.loop

    def start(self, task: LuaTask) -> None:
        self.wf.queue.append((task, None))
        self.wf.kick()

    def resume(self, task: LuaTask, *values: Any) -> None:
        self.wf.queue.append((task, (True, *values)))
        self.wf.kick()

    def throw(self, task: LuaTask, error: Any) -> None:
        if isinstance(error, WippyError):
            error = self.wf.kernel.vm.to_lua(error)
        self.wf.queue.append((task, (False, error)))
        self.wf.kick()


class Workflow(Process):
    """One run of a ``workflow.lua`` entry on a ``workflow.host``."""

    noun = "workflow"

    __slots__ = (
        "wf_host", "run", "queue", "_replay_cmds", "_replay_inputs", "_pending_inputs", "_effects",
        "ops", "seq", "sizes", "position", "_running", "_scheduled", "stuck", "replaying",
        "versions", "_closing", "exec_watchers", "options", "attempt", "run_no", "start_at", "exec_start",
        "started", "children", "_continuation", "_terminate_after",
    )

    def __init__(self, host: WorkflowHost, run: RunRecord) -> None:
        super().__init__(host, make_pid(host.host_id, run.workflow_id), run.entry, b"workflow", run.context)
        self.wf_host = host
        self.run = run
        # channels of this actor queue here (its inbox and event channels are made on first
        # use: a message waits for a listen of its topic until the inbox is asked for)
        self.scheduler = RunQueue(self)  # type: ignore[assignment]
        self.queue: deque[tuple[LuaTask, Any]] = deque()
        records = run.history or []
        self._replay_cmds: deque[tuple[int, Record]] = deque()
        self._replay_inputs: deque[tuple[int, Record]] = deque()
        for seq, record in enumerate(records):
            (self._replay_inputs if history.is_input(record) else self._replay_cmds).append((seq, record))
        self.replaying = bool(records)
        self._pending_inputs: deque[Record] = deque()
        self._effects: list[Callable[[], None]] = []
        self.ops: dict[int, Op] = {}
        self.seq = len(records)
        self.sizes: list[int] = []  # cumulative history size by seq
        total = 0
        for record in records:
            total += len(pack(record))
            self.sizes.append(total)
        self.position = 0
        self._running = False
        self._scheduled = False
        self.stuck: str | None = None
        self.versions: dict[str, int] = {}
        self._closing = False
        watchers = run.watchers or {}
        self.monitors = set(watchers.get("monitors", ())) or None
        self.links = set(watchers.get("links", ())) or None
        self.exec_watchers: dict[str, int] = {pid: ref for pid, ref in watchers.get("exec", ())}
        meta = run.options.get(RUN_KEY) or {}
        try:
            self.options = StartOptions.parse(run.options)
        except WippyError as err:  # validated at the start; a store from elsewhere may differ
            log.error("%s: ignoring its start options: %s", self.describe(), err)
            self.options = StartOptions()
        self.attempt: int = meta.get("attempt", 1)  # retries of this workflow ID so far, plus one
        self.run_no: int = meta.get("run", 1)  # runs of this workflow ID so far (retries and cron)
        self.start_at: float = meta.get("start_at", run.created)  # when the code starts (wall clock)
        self.exec_start: float = meta.get("exec_start", self.start_at)  # when the first run's code started
        self.started = False  # begin() has run the code
        self.children: dict[str, str] = {}  # child workflow PID -> its parent_close_policy
        self._continuation: RunRecord | None = None  # the next run, while this one is closing
        self._terminate_after: Any = None  # terminated while closing into a next run

    def watchers_record(self) -> dict[str, Any]:
        return {"monitors": sorted(self.monitors or ()), "links": sorted(self.links or ()),
                "exec": sorted(self.exec_watchers.items())}

    def exit(self, result: ExitResult) -> None:
        if self.exit_result is None:
            router = self.kernel.router
            for watcher, ref in self.exec_watchers.items():  # process.exec / workflow.exec callers
                router.deliver_event(watcher, {
                    "kind": "EXIT", "from": self.pid, "exec_ref": ref,
                    "result": {"value": result.value, "error": result.error}})
            exit_to_links(router, self.pid, result, self.links or ())
        super().exit(result)

    def __repr__(self) -> str:
        return f"<Workflow {self.run.workflow_id} {self.entry_id}>"

    def describe(self) -> str:
        return f"workflow {self.run.workflow_id} ({self.entry_id})"

    @property
    def workflow_id(self) -> str:
        return self.run.workflow_id

    @property
    def loop(self) -> Any:
        return self.kernel.scheduler.loop

    # Running ---------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start the code (the run is due)."""
        if self.started or self.exit_result is not None or self._closing or self.stuck:
            return
        self.started = True
        task = self.spawn_task(self.kernel.vm.entry_task, self.run.entry.encode(), b"workflow",
                               self.kernel.lua_args(self.run.input or []))
        self.scheduler.start(task)

    def kick(self) -> None:
        """Make sure :meth:`run` happens soon (it is never re-entered)."""
        if not self._scheduled and not self._running:
            self._scheduled = True
            self.loop.call_soon(self.run_now)

    def run_now(self) -> None:
        """Run until quiescent, applying inputs one at a time in between."""
        self._scheduled = False
        if self._running or self.exit_result is not None or self.stuck:
            return
        self._running = True
        step = self.kernel.scheduler.step
        try:
            while True:
                queue = self.queue
                while queue:
                    task, payload = queue.popleft()
                    if task.finished:
                        continue
                    left = step(task, payload)
                    if left is not None:
                        queue.append((task, left))
                    if self.exit_result is not None or self.stuck or self._closing:
                        return
                if not self._quiescent():
                    return
        finally:
            self._running = False

    def _quiescent(self) -> bool:
        """Called with nothing runnable. Applies the next input; False when idle."""
        if not self.started:  # inputs wait for the code: it sees them where a replay would
            return False
        if self._replay_inputs:
            seq, record = self._replay_inputs.popleft()
            self.position = max(self.position, seq + 1)
            self._apply(record)
            return True
        if self.replaying:
            if self._replay_cmds:
                seq, record = self._replay_cmds[0]
                self.nondeterminism(
                    f"history event #{seq} is command {record['op']!r}, but the workflow code "
                    "is waiting without issuing it")
                return False
            self._go_live()
        if self._effects:
            effects, self._effects = self._effects, []
            flushed = self.wf_host.journal.flush(self.run.run_id)
            flushed.add_done_callback(lambda f: self._run_effects(f, effects))
        if self._pending_inputs:
            self._apply(self._pending_inputs.popleft())
            return True
        return False

    def _go_live(self) -> None:
        """History is exhausted: restart the effects whose completion was never recorded."""
        self.replaying = False
        # timers in due order: those that fell due while the host was down fire in that order
        for op in sorted(self.ops.values(), key=lambda op: op.record.get("at", 0)):
            if not op.live:
                self.effect(functools.partial(self.wf_host.restart_op, self, op))

    def _run_effects(self, flushed: Any, effects: list[Callable[[], None]]) -> None:
        if flushed.exception() is not None:
            self.halt(f"journal write failed: {flushed.exception()}")
            return
        if self.exit_result is not None or self.stuck:
            return
        for fx in effects:
            try:
                fx()
            except Exception as exc:  # an effect must not take the host down
                log.exception("%s: effect failed", self.describe())
                self.halt(f"effect failed: {exc}")
                return

    # Commands: matching history and recording ------------------------------------------------
    def replayed(self, op: str, key: Any = None) -> tuple[int, Record] | None:
        """The recorded command for ``op`` if we are replaying; raises on a mismatch."""
        if not self._replay_cmds:
            return None
        seq, record = self._replay_cmds.popleft()
        if record["op"] != op or record.get("key") != key:
            self.nondeterminism(
                f"history event #{seq} is command {record['op']!r} ({record.get('key')!r}) but the "
                f"workflow code issued {op!r} ({key!r})")
            raise NonDeterminism("non-determinism")
        self.position = max(self.position, seq + 1)
        if "too_large" in record:
            raise RecordTooLarge(record["too_large"])
        return seq, record

    def record(self, record: Record) -> int:
        """Append a new record to the history (durable with the next group commit).

        A command record over :data:`MAX_RECORD_BYTES` is replaced by a marker and raises
        RecordTooLarge (INVALID); an input record over it raises without writing anything."""
        data = pack(record)
        try:
            check_size(data, lambda: f"{self.describe()}: {history.describe(record)}")
        except RecordTooLarge as err:
            if history.is_input(record):
                raise
            self.record(history.too_large(record["op"], record.get("key"), err.message))
            raise
        seq = self.seq
        self.seq += 1
        self.sizes.append((self.sizes[-1] if self.sizes else 0) + len(data))
        self.wf_host.journal.append(self.run.run_id, seq, data)
        if not history.is_input(record):
            self.position = seq + 1
        return seq

    def effect(self, fx: Callable[[], None]) -> None:
        """Run ``fx`` once everything recorded so far is on disk."""
        self._effects.append(fx)

    def wait(self, seq: int, record: Record, on_done: Callable[[Record], bool | None],
             *, new: bool) -> Op:
        """Register an outstanding operation. ``new``: issued live now, so its effect is
        already queued; a replayed one is restarted when history runs out (``_go_live``)."""
        op = Op(seq, record, on_done)
        op.live = new
        self.ops[seq] = op
        return op

    # Inputs --------------------------------------------------------------------------------
    def input(self, record: Record) -> None:
        """Record an input from outside; it is applied once durable, at a quiescent point.

        A message too large to record raises RecordTooLarge for its sender; an operation's
        result or an event too large to record arrives as that error instead."""
        self.wf_host.last_run = self.run.run_id  # what a sender waits for (WorkflowHost.barrier)
        if self._continuation is not None and self.exit_result is None and (
                record["in"] == "msg" or (record["in"] == "event" and record["event"].get("kind") == "CANCEL")):
            self._hand_over(record)
            return
        if self.exit_result is not None or self._closing or self.stuck == HOST_STOPPED:
            return
        try:
            self.record(record)
        except RecordTooLarge as err:
            if record["in"] == "msg":
                raise
            if record["in"] == "done":
                record = history.done(record["ref"], error=err)
            else:
                event = {k: v for k, v in record["event"].items() if k != "result"}
                record = history.event({**event, "result": {"value": None, "error": err}})
            self.record(record)
        flushed = self.wf_host.journal.flush(self.run.run_id)
        if self.stuck:  # blocked (non-determinism): kept in the history for when it resumes
            return
        flushed.add_done_callback(lambda f: self._input_durable(f, record))

    def _hand_over(self, record: Record) -> None:
        """A message (or CANCEL) that arrives while this run closes into the next one: it is
        written into the next run's history, which applies it once its code runs."""
        run = self._continuation
        assert run is not None and run.history is not None
        data = check_size(pack(record), f"{self.describe()}: {history.describe(record)}")
        self.wf_host.journal.append(run.run_id, len(run.history), data)
        self.wf_host.last_run = run.run_id
        run.history.append(record)

    def _input_durable(self, flushed: Any, record: Record) -> None:
        if flushed.exception() is not None:
            self.halt(f"journal write failed: {flushed.exception()}")
            return
        self._pending_inputs.append(record)
        self.kick()

    def _apply(self, record: Record) -> None:
        kind = record["in"]
        vm = self.kernel.vm
        if kind == "done":
            op = self.ops.pop(record["ref"], None)
            if op is not None and op.on_done(record):  # a ticker keeps waiting for its next tick
                self.ops[op.seq] = op
        elif kind == "msg":
            sender = record.get("from")
            Process.deliver(self, record["topic"].encode(), vm.to_lua(record.get("v")),
                            sender.encode() if sender else None)
        elif kind == "event":
            event = dict(record["event"])
            result = event.get("result")
            if result is not None:
                event["result"] = {"value": vm.to_lua(result.get("value")), "error": vm.to_lua(result.get("error"))}
            Process.deliver_event(self, event)

    # Deliveries from the host ------------------------------------------------------------------
    def deliver(self, topic: bytes, payload: Any, sender: bytes | None) -> None:
        self.input(history.message(topic.decode(), sender.decode() if sender else None,
                                   self.kernel.vm.to_python(payload, "message")))

    def deliver_event(self, event: dict[str, Any]) -> None:
        vm = self.kernel.vm
        ref = event.get("exec_ref")
        result = event.get("result")
        if result is not None:
            result = {"value": vm.to_python(result["value"]), "error": vm.to_python(result["error"])}
        if ref is not None:  # the end of a process.exec child: the result of that command
            value, error = (result["value"], result["error"]) if result is not None else (None, None)
            self.input(history.done(ref, value, error))
            return
        plain = {k: v for k, v in event.items() if k != "result"}
        if result is not None:
            plain["result"] = result
        self.input(history.event(plain))

    # Ending ----------------------------------------------------------------------------------
    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        if ok and values[0]:
            self.close_run(ExitResult(value=values[1][1]), "completed")
        elif ok:
            self.close_run(ExitResult(error=values[1]), "failed")
        else:
            self.close_run(ExitResult(error=values[0]), "failed")

    def cancel_error(self) -> Any:
        return self.kernel.vm.to_lua(WippyError(CANCELED, "workflow terminated"))

    def terminate(self, error: Any) -> None:
        if self._continuation is not None and self.exit_result is None:
            self._terminate_after = error  # the next run is being created: it ends at once
            return
        self.close_run(ExitResult(error=error), "terminated")

    def close_run(self, result: ExitResult, status: str, *, final: bool = False) -> None:
        """Write the outcome, and only once it is durable tell anyone about it.

        A completed or failed run may instead go on as a new run of the same workflow ID
        (retry policy, cron schedule; never when ``final``): the next run is created in the
        same transaction and nobody is told anything."""
        if self._closing or self.exit_result is not None:
            return
        self._closing = True
        for task in self.tasks:
            task.finished = True
        vm = self.kernel.vm
        try:
            py_value = vm.to_python(result.value, "result") if result.value is not None else None
            py_error = vm.to_python(result.error, "error") if result.error is not None else None
            check_size(pack([py_value, py_error]), f"the result of {self.describe()}")
        except WippyError as err:  # too large, or not data: the run fails with that error
            log.error("%s", err.message)
            status, py_value, py_error = "failed", None, err
            result = ExitResult(error=vm.to_lua(err))
        effects, self._effects = self._effects, []
        host = self.wf_host
        after = None if final or status not in ("completed", "failed") else host.next_run(self, status, py_error)
        flushed = host.journal.close_run(self.run.run_id, status, py_value, py_error)
        if after is not None:
            # the same transaction and tag: a crash (or a refused record) keeps both or neither
            host.journal.create_run(after, tag=self.run.run_id)
            self._continuation = after

        def durable(f: Any) -> None:
            if f.exception() is not None:
                self._closing = False
                self._continuation = None
                self.halt(f"journal write failed: {f.exception()}")
                return
            for fx in effects:
                fx()
            self.run.status, self.run.result, self.run.error = status, py_value, py_error
            if after is not None:
                host.continue_run(self, after, result)
            else:
                self.exit(result)
                host.close_children(self)

        flushed.add_done_callback(durable)

    def exit_quietly(self, result: ExitResult) -> None:
        """This run is over but its workflow goes on in a next run (same PID): release what
        the run held and tell nobody; watchers stay with the workflow."""
        if self.exit_result is not None:
            return
        self.exit_result = result
        self.close()
        self.host.forget(self)
        router = self.kernel.router
        for target in self.monitoring or ():
            router.unwatch(target, self.pid, link=False)
        router.release_names(self.pid)

    def nondeterminism(self, message: str) -> None:
        full = f"{self.describe()}: non-determinism: {message}; fix the code and restart the host to resume"
        self.halt(full)

    def halt_quietly(self) -> None:
        """The host is stopping: stop here, leave the run open, release live resources."""
        self.stuck = HOST_STOPPED
        for task in self.tasks:
            task.finished = True
        self.queue.clear()
        self.close()

    def halt(self, message: str) -> None:
        """Stop running this workflow but keep it open in the store (recoverable)."""
        if self.stuck:
            return
        self.stuck = message
        log.error("%s", message)
        for task in self.tasks:
            task.finished = True
        self.queue.clear()

