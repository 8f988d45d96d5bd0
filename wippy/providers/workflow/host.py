"""``workflow.host``: durable workflows on the embedded SQLite journal.

On start the host opens its store and replays every open workflow, then carries on live.
It owns the live side of effects: timers on the event loop, activities as function
calls with retries, and child workflows on this or another workflow host.

It also carries out the start options that shape a workflow's runs, durably: everything
is derived from what the run stores (its options and, under ``wippy.run``, its attempt,
run number and start times), so a restart re-arms the same wall-clock deadlines:

- ``start_delay``: the run's code starts at its stored start time;
- ``run_timeout`` / ``execution_timeout``: the run (the whole workflow) fails with TIMEOUT
  at its start time (the first run's start time) plus the timeout;
- ``retry_policy``: a failed run goes on as a new run of the same ID after the back-off;
- ``cron_schedule``: every run goes on as a new run at the next scheduled minute;
- ``parent_close_policy``: what happens to a child workflow when its parent run closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wippy.actors.host import ExitResult, SpawnRequest
from wippy.actors.router import make_pid, parse_pid
from wippy.actors.scheduler import Dispatcher
from wippy.errors import ALREADY_EXISTS, CANCELED, TIMEOUT, WippyError
from wippy.lua.codec import pack
from wippy.providers._durable import cron
from wippy.providers._durable.commands import packed_args, plain_messages
from wippy.providers._durable.ids import new_workflow_id
from wippy.providers._durable.options import StartOptions
from wippy.providers._table import ActorTable
from wippy.providers.workflow import history
from wippy.providers.workflow.activities import ActivityRunner
from wippy.providers.workflow.dispatch import build_dispatcher
from wippy.providers.workflow.execution import RUN_KEY, Op, Workflow, check_size
from wippy.providers.workflow.history import Record
from wippy.providers.workflow.journal import Journal, RunRecord
from wippy.providers.workflow.mailbox import Mailbox

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry

log = logging.getLogger("wippy.workflow")

DEFAULT_STORE = ".wippy/workflows.db"
# keys of a run's own timers in WorkflowHost._timers (operation timers use their seq, >= 0)
START, RUN_TIMEOUT, EXECUTION_TIMEOUT = -1, -2, -3


def store_path(entry: Entry, root: Path) -> str:
    raw = entry.data.get("store", DEFAULT_STORE)
    if raw == ":memory:":
        return raw
    path = Path(str(raw))
    return str(path if path.is_absolute() else root / path)


class WorkflowHost(ActorTable[Workflow]):
    kind = "workflow.host"
    runs = ("workflow.lua",)

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        super().__init__(kernel, entry)
        self.journal = Journal(store_path(entry, kernel.registry.root))
        # the name a workflow may give instead of this host's ID when it starts a child
        # (upstream's children start on a Temporal task queue); the host ID when not set
        self.task_queue = str(entry.data.get("task_queue") or self.host_id)
        self._dispatcher: Dispatcher | None = None
        self.activities = ActivityRunner(self)
        self.recovered = 0
        self.mailbox = Mailbox(self)  # commands from `wippy workflows signal|cancel|terminate`
        self._timers: dict[str, dict[int, asyncio.Handle]] = {}  # run ID -> op seq -> handle
        self._orphans: set[str] = set()  # run IDs whose parent close policy check_parents() applied
        self.last_run: str | None = None  # the run the last input or start was written for (barrier())

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = build_dispatcher(self)
        return self._dispatcher

    # Lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store (checked: a fault is one WippyError naming the file), replay every
        open workflow, then carry out the commands queued in the store's mailbox."""
        await self.journal.start()
        self.journal.on_refused = self._refused
        try:
            runs = self.journal.open_runs(self.host_id)
        except BaseException:
            await self.journal.close()
            raise
        self.kernel.router.add_host(self)
        self.running = True
        for run in runs:
            self._launch(run)
        self.recovered = len(runs)
        if runs:
            log.info("%s: resuming %d open workflow%s", self.host_id, len(runs), "" if len(runs) == 1 else "s")
        # a parent that closed just before a crash may not have reached its children: look
        # again, here and on the other workflow hosts (the parent's host may start last)
        for host in list(self.kernel.router.hosts.values()):
            if isinstance(host, WorkflowHost) and host.running:
                host.check_parents()
        try:
            await self.mailbox.start()
        except BaseException:
            await self.stop(0)
            raise

    def _refused(self, run_id: str, error: WippyError) -> None:
        """The store refused a record of run ``run_id`` (the rest of its batch was written):
        that workflow stops, open, where its history on disk ends."""
        for wf in self.actors.values():
            if wf.run.run_id == run_id or (wf._continuation is not None and wf._continuation.run_id == run_id):
                wf.halt(f"{wf.describe()}: {error.message}; the workflow stops here and stays open in the "
                        "store: restart the host to resume it from its last record")
                return
        log.error("%s (run %s)", error.message, run_id)

    async def stop(self, timeout: float) -> None:
        """Leave every workflow open in the store (that is the point) and close the file."""
        self.running = False
        await self.mailbox.stop()
        for wf in list(self.actors.values()):
            wf.halt_quietly()
        for wf in list(self.actors.values()):
            self.drop_timers(wf)
        self.actors.clear()
        self.kernel.router.remove_host(self.host_id)
        await self.journal.close()

    def _launch(self, run: RunRecord) -> Workflow:
        """Put a stored run to work: its own timers armed from its stored times, its code
        started now or, if it is not due yet, at its start time."""
        wf = Workflow(self, run)
        self.actors[wf.pid] = wf
        options = wf.options
        if options.execution_timeout:
            self._arm(wf, EXECUTION_TIMEOUT, wf.exec_start + options.execution_timeout, self._timed_out, wf, True)
        if options.run_timeout:
            self._arm(wf, RUN_TIMEOUT, wf.start_at + options.run_timeout, self._timed_out, wf, False)
        if wf.start_at > time.time():
            self._arm(wf, START, wf.start_at, wf.begin)
        else:
            wf.begin()
        return wf

    def _arm(self, wf: Workflow, key: int, at: float, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` at wall-clock time ``at`` (now if overdue) while ``wf`` is open."""
        timers = self._timers.setdefault(wf.run.run_id, {})
        old = timers.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.get(wf.run.run_id, {}).pop(key, None)
            if wf.exit_result is None and self.actors.get(wf.pid) is wf:
                fn(*args)

        timers[key] = self.kernel.scheduler.loop.call_later(max(at - time.time(), 0.0), fire)

    def _timed_out(self, wf: Workflow, whole: bool) -> None:
        options = wf.options
        if whole:  # the whole workflow: no retry, no next cron run
            error = WippyError(TIMEOUT, f"workflow {wf.workflow_id} exceeded its execution timeout "
                                        f"({options.execution_timeout:g}s)", retryable=False)
        else:  # this run: the retry policy may run it again
            error = WippyError(TIMEOUT, f"workflow {wf.workflow_id} exceeded its run timeout "
                                        f"({options.run_timeout:g}s)", retryable=True)
        log.info("%s: %s", wf.describe(), error.message)
        wf.close_run(ExitResult(error=self.kernel.vm.to_lua(error)), "failed", final=whole)

    # Runs that go on: retries and cron -----------------------------------------------------
    def next_run(self, wf: Workflow, status: str, error: Any) -> RunRecord | None:
        """The run that follows ``wf``'s run, which just ended with ``status``, or None when
        the workflow ends with it. Called while closing the run, before anything is written."""
        options = wf.options
        now = time.time()
        deadline = wf.exec_start + options.execution_timeout if options.execution_timeout else None
        try:
            policy = options.retry()
            schedule = options.schedule()
        except WippyError as err:
            log.error("%s: %s", wf.describe(), err)
            return None
        canceled = isinstance(error, WippyError) and error.kind == CANCELED
        attempt, at = 1, None
        if status == "failed" and policy is not None and not canceled:
            failure = error if isinstance(error, WippyError) else WippyError("UNKNOWN", str(error))
            if policy.retries(failure, wf.attempt):
                retry_at = now + policy.delay(wf.attempt)
                if deadline is None or retry_at < deadline:
                    attempt, at = wf.attempt + 1, retry_at
                    log.info("%s: attempt %d failed (%s); run %d starts in %.3gs", wf.describe(), wf.attempt,
                             failure, wf.run_no + 1, retry_at - now)
        if at is None and schedule is not None and not canceled:
            cron_at = cron.next_fire(schedule, max(now, wf.start_at))  # never the same slot twice
            if deadline is None or cron_at < deadline:
                at = cron_at
        if at is None:
            return None
        run = wf.run
        meta = {**(run.options.get(RUN_KEY) or {}), "attempt": attempt, "run": wf.run_no + 1, "start_at": at,
                "exec_start": wf.exec_start}
        return RunRecord(run_id=uuid.uuid4().hex, workflow_id=run.workflow_id, host=self.host_id, entry=run.entry,
                         status="running", input=run.input, context=dict(run.context),
                         options={**run.options, RUN_KEY: meta}, parent=run.parent, watchers=wf.watchers_record(),
                         search=dict(run.search), memo=dict(run.memo), history=[])

    def continue_run(self, old: Workflow, run: RunRecord, result: ExitResult) -> None:
        """``old``'s close and ``run`` are on disk: hand the workflow ID over to ``run``."""
        if old._terminate_after is not None:  # terminated meanwhile: the next run ends unstarted
            error = old._terminate_after
            py_error = self.kernel.vm.to_python(error, "error")

            def told(_f: Any) -> None:
                old.exit(ExitResult(error=error))
                self.close_children(old)

            self.journal.close_run(run.run_id, "terminated", None, py_error).add_done_callback(told)
            return
        watchers = old.watchers_record()  # monitors added or removed while the run was closing
        if watchers != run.watchers:
            run.watchers = watchers
            self.journal.set_watchers(run.run_id, watchers)
        old.exit_quietly(result)
        if not self.running:  # stopping: the next run is stored and starts with the host
            return
        self.close_children(old)
        self._launch(run)

    # Parent close policy -------------------------------------------------------------------
    def close_children(self, parent: Workflow) -> None:
        """``parent``'s run has closed: apply each child's parent_close_policy."""
        if not self.running:  # stopping: check_parents() does it on the next start
            return
        router = self.kernel.router
        for pid, policy in parent.children.items():
            host = router.host_of(pid)
            if not isinstance(host, WorkflowHost) or not host.running:
                continue
            host.detach(pid, parent.pid)  # a next run of the parent (same PID) is not its parent
            host.apply_parent_close(pid, parent.pid, policy)

    def apply_parent_close(self, pid: str, parent: str, policy: str) -> None:
        wf = self.actors.get(pid)
        if wf is None or wf.exit_result is not None:
            return
        if policy == "terminate":
            log.info("%s: terminated: its parent %s closed", wf.describe(), parent)
            self.terminate(pid, self.kernel.vm.to_lua(WippyError(
                CANCELED, f"parent workflow {parent} closed (parent_close_policy terminate)", retryable=False)))
        elif policy == "request_cancel":
            wf.deliver_event({"kind": "CANCEL", "from": parent, "reason": "parent workflow closed"})

    def detach(self, pid: str, watcher: str) -> None:
        """Forget every watch ``watcher`` holds on ``pid`` (monitor, link, exec)."""
        wf = self.actors.get(pid)
        if wf is None:
            return
        changed = wf.exec_watchers.pop(watcher, None) is not None
        for group in (wf.monitors, wf.links):
            if group and watcher in group:
                group.discard(watcher)
                changed = True
        if changed:
            self.journal.set_watchers(wf.run.run_id, wf.watchers_record())

    def check_parents(self) -> None:
        """After a restart: children whose parent run closed without reaching them."""
        router = self.kernel.router
        for wf in list(self.actors.values()):
            parent = wf.run.parent
            parent_run = (wf.run.options.get(RUN_KEY) or {}).get("parent_run")
            policy = wf.options.parent_close_policy
            if (parent is None or parent_run is None or policy == "abandon" or wf.exit_result is not None
                    or wf.run.run_id in self._orphans):
                continue
            host = router.host_of(parent)
            if not isinstance(host, WorkflowHost) or not host.running:
                continue
            live = host.actors.get(parent)
            if live is not None and live.run.run_id == parent_run:
                continue
            latest = host.journal.latest_run(parse_pid(parent)[1])
            if latest is None or (latest.run_id == parent_run and latest.status == "running"):
                continue
            if policy == "request_cancel" and _asked_to_cancel(wf.run.history or (), parent):
                continue  # asked already (before the restart)
            self._orphans.add(wf.run.run_id)
            self.apply_parent_close(wf.pid, parent, policy)

    def forget(self, proc: Any) -> None:
        super().forget(proc)
        self.drop_timers(proc)

    def watchers_changed(self, actor: Workflow) -> None:
        self.journal.set_watchers(actor.run.run_id, actor.watchers_record())

    def start_note(self) -> str:
        note = f"resumed {self.recovered} open workflow{'' if self.recovered == 1 else 's'}"
        if self.journal.warnings:  # (each logged in full when the store was opened)
            note += f" -- WARNING: workflows in {self.journal.path} may have been lost (see the warning above)"
        return note

    def barrier(self) -> asyncio.Future[None]:
        """What a sender (``process.send``, ``process.spawn``) waits for: what it just handed
        this host is on disk -- or refused by the store, which the sender is then told."""
        tag, self.last_run = self.last_run, None
        return self.journal.flush(tag)

    # Starting workflows ----------------------------------------------------------------------
    def spawn(self, request: SpawnRequest) -> str:
        self.last_run = None
        entry = self.entry_for_spawn(request.entry_id)
        options = StartOptions.parse(request.options).check_durable()
        explicit = options.workflow_id or request.name
        workflow_id = explicit or new_workflow_id()
        running_now = self.actors.get(make_pid(self.host_id, workflow_id))
        # A generated ID is new; an explicit one may name a run that is live in memory (and
        # perhaps not yet committed) or stored from an earlier life of the host.
        existing = running_now.run if running_now is not None else (
            self.journal.latest_run(workflow_id) if explicit else None)
        vm = self.kernel.vm
        args = packed_args(vm, request.args)
        check_size(pack(args), lambda: f"the input of workflow {workflow_id}")  # stored with the run
        messages = plain_messages(vm, request.messages)
        for topic, payload in messages:  # before anything starts: a start message must fit the history
            check_size(pack(history.message(topic, request.parent, payload)),
                       f"start message {topic!r} for workflow {workflow_id}")
        if existing is not None and existing.status == "running":
            pid = make_pid(self.host_id, workflow_id)
            policy = options.conflict_policy
            if policy == "fail":
                raise WippyError(ALREADY_EXISTS, f"workflow {workflow_id} is already running", retryable=False)
            if policy == "terminate_existing":
                running = self.actors.get(pid)
                if running is not None:
                    running.terminate(vm.to_lua(WippyError(CANCELED, "terminated by a new start with the same ID")))
            else:  # use_existing: the new start's messages still arrive
                self._watch_new(pid, request)
                for topic, payload in messages:
                    self.deliver(pid, topic, vm.to_lua(payload), request.parent)
                return pid
        elif existing is not None:
            reuse = options.reuse_policy
            if reuse == "reject_duplicate" or (reuse == "allow_duplicate_failed_only" and existing.status == "completed"):
                raise WippyError(ALREADY_EXISTS, f"workflow {workflow_id} already ran (status {existing.status}) "
                                                 f"and the reuse policy is {reuse}", retryable=False)
        return self.start_workflow(
            workflow_id, entry.id, args, request.context, options.raw,
            parent=request.parent, monitor=request.monitor, link=request.link, messages=messages,
            search=options.search, memo=options.memo,
        )

    def _watch_new(self, pid: str, request: SpawnRequest) -> None:
        if request.parent is not None and (request.monitor or request.link):
            self.add_watcher(pid, request.parent, link=request.link and not request.monitor)
            if request.monitor and request.link:
                self.add_watcher(pid, request.parent, link=True)

    def start_workflow(self, workflow_id: str, entry_id: str, args: list[Any], context: dict[str, Any],
                       options: dict[str, Any], *, parent: str | None = None, monitor: bool = False,
                       link: bool = False, exec_ref: int | None = None,
                       messages: list[tuple[str, Any]] | None = None,
                       search: dict[str, Any] | None = None, memo: dict[str, Any] | None = None,
                       parent_run: str | None = None) -> str:
        """Create the first run of a workflow and launch it (its code may start later)."""
        try:
            parsed = StartOptions.parse(options)
            schedule = parsed.schedule()
        except WippyError as err:  # (checked by the spawner already)
            log.error("workflow %s: ignoring bad start options: %s", workflow_id, err)
            parsed, schedule = StartOptions(), None
        now = time.time()
        if schedule is not None:  # the first run waits for the first scheduled minute
            start_at = cron.next_fire(schedule, now)
        else:
            start_at = now + (parsed.start_delay or 0.0)
        meta: dict[str, Any] = {"attempt": 1, "run": 1, "start_at": start_at, "exec_start": start_at}
        if parent_run is not None:
            meta["parent_run"] = parent_run
        options = {**options, RUN_KEY: meta}
        watchers: dict[str, Any] = {"monitors": [], "links": [], "exec": []}
        if parent is not None:
            if monitor:
                watchers["monitors"].append(parent)
            if link:
                watchers["links"].append(parent)
            if exec_ref is not None:
                watchers["exec"].append([parent, exec_ref])
        run = RunRecord(run_id=uuid.uuid4().hex, workflow_id=workflow_id, host=self.host_id, entry=entry_id,
                        status="running", input=args, context=dict(context), options=options, parent=parent,
                        watchers=watchers, search=dict(search or {}), memo=dict(memo or {}), history=[])
        self.journal.create_run(run)
        run.created = time.time()
        self.last_run = run.run_id
        wf = self._launch(run)
        for topic, payload in messages or ():  # startup messages come before anything else
            wf.input(history.message(topic, parent, payload))
        if link and parent is not None:
            self.kernel.router.watch(parent, wf.pid, link=True)
        return wf.pid

    def ensure_child(self, parent: Workflow, record: Record, exec_ref: int | None = None) -> None:
        """Start a child workflow recorded by ``parent`` (a ``process.spawn`` or
        ``process.exec`` record, see :mod:`.history`) unless it already exists; ``exec_ref``:
        the seq of a ``process.exec`` record, which the child's result completes."""
        try:
            policy = StartOptions.parse(record.get("opts") or {}).parent_close_policy
        except WippyError:
            policy = "terminate"
        parent.children[make_pid(record["host"], record["child"])] = policy
        host = self.kernel.router.hosts.get(record["host"])
        if not isinstance(host, WorkflowHost) or not host.running:
            log.error("%s: child host %s is not a running workflow.host", parent.describe(), record["host"])
            return
        if host.journal.latest_run(record["child"]) is not None:
            return
        mode = record.get("mode", 0)
        host.start_workflow(
            record["child"], record["key"], record["args"], record.get("ctx") or {}, record.get("opts") or {},
            parent=parent.pid, monitor=bool(mode & 1), link=bool(mode & 2), exec_ref=exec_ref,
            messages=record.get("msgs") or [], parent_run=parent.run.run_id,
        )
        if mode & 1:
            parent.monitoring = (parent.monitoring or set()) | {make_pid(host.host_id, record["child"])}

    # Status ----------------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        return [{"pid": wf.pid, "entry": wf.entry_id, "host": self.host_id, "inbox": len(wf.inbox.buffer),
                 "status": "blocked: " + wf.stuck if wf.stuck else "running" if wf.started else "waiting to start"}
                for wf in self.actors.values()]

    # Live effects ----------------------------------------------------------------------------
    def arm_timer(self, wf: Workflow, op: Op) -> None:
        """Fire at the recorded wall-clock time (late if the host was down)."""
        op.live = True
        self._schedule(wf, op, op.record["at"])

    def _schedule(self, wf: Workflow, op: Op, at: int) -> None:
        timers = self._timers.setdefault(wf.run.run_id, {})
        old = timers.pop(op.seq, None)
        if old is not None:
            old.cancel()
        delay = at / 1e9 - time.time()
        loop = self.kernel.scheduler.loop
        if delay <= 0:  # overdue (the host was down): fire in the order armed, i.e. due order
            timers[op.seq] = loop.call_soon(self._timer_fired, wf, op, at)
        else:
            timers[op.seq] = loop.call_later(delay, self._timer_fired, wf, op, at)

    def _timer_fired(self, wf: Workflow, op: Op, at: int) -> None:
        self._timers.get(wf.run.run_id, {}).pop(op.seq, None)
        if wf.ops.get(op.seq) is not op:
            return
        wf.input(history.done(op.seq))
        every = op.record.get("every")
        if every:  # tickers: the next tick follows this one, not the wall clock
            self._schedule(wf, op, at + every)

    def drop_timers(self, wf: Workflow) -> None:
        for handle in self._timers.pop(wf.run.run_id, {}).values():
            handle.cancel()

    def start_activity(self, wf: Workflow, op: Op) -> None:
        op.live = True
        self.activities.start(wf, op)

    def cancel_op(self, wf: Workflow, op: Op) -> None:
        handle = self._timers.get(wf.run.run_id, {}).pop(op.seq, None)
        if handle is not None:
            handle.cancel()
        self.activities.cancel(wf, op)

    def restart_op(self, wf: Workflow, op: Op) -> None:
        """After replay: carry on an operation whose completion is not in the history."""
        kind = op.record["op"]
        if kind in history.ACTIVITIES:
            self.start_activity(wf, op)
        elif kind in history.TIMERS:
            self.arm_timer(wf, op)
        elif kind == "process.exec":
            self.ensure_child(wf, op.record, op.seq)
            op.live = True


def _asked_to_cancel(records: Any, parent: str) -> bool:
    """Whether a history holds a CANCEL event from ``parent``."""
    return any(history.is_input(r) and r["in"] == "event" and r["event"].get("kind") == "CANCEL"
               and r["event"].get("from") == parent for r in records)
