"""``workflow.host``: durable workflows on the embedded SQLite journal.

On start the host opens its store and replays every open workflow, then carries on live.
It owns the live side of effects: timers on the event loop, activities as function
calls with retries, and child workflows on this or another workflow host.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wippy.actors.scheduler import Dispatcher
from wippy.codec import pack
from wippy.errors import ALREADY_EXISTS, CANCELED, WippyError
from wippy.host.router import make_pid
from wippy.providers.base import HostProvider, SpawnRequest
from wippy.providers.workflow.activities import ActivityRunner
from wippy.providers.workflow.dispatch import build_dispatcher, new_workflow_id, packed_args
from wippy.providers.workflow.execution import Op, Workflow, check_size
from wippy.providers.workflow.journal import Journal, RunRecord
from wippy.providers.workflow.mailbox import Mailbox
from wippy.providers.workflow.options import StartOptions

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime
    from wippy.registry import Entry

log = logging.getLogger("wippy.workflow")

DEFAULT_STORE = ".wippy/workflows.db"


def store_path(entry: Entry, root: Path) -> str:
    raw = entry.data.get("store", DEFAULT_STORE)
    if raw == ":memory:":
        return raw
    path = Path(str(raw))
    return str(path if path.is_absolute() else root / path)


class WorkflowHost(HostProvider):
    kind = "workflow.host"

    def __init__(self, runtime: Runtime, entry: Entry) -> None:
        super().__init__(runtime, entry)
        self.journal = Journal(store_path(entry, runtime.registry.root))
        self.workflows: dict[str, Workflow] = {}
        self._dispatcher: Dispatcher | None = None
        self.activities = ActivityRunner(self)
        self.recovered = 0
        self.mailbox = Mailbox(self)  # commands from `wippy workflows signal|cancel|terminate`
        self._timers: dict[str, dict[int, asyncio.Handle]] = {}  # run ID -> op seq -> handle

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = build_dispatcher(self)
        return self._dispatcher

    # Lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.journal.start()
        self.runtime.router.add_host(self)
        self.running = True
        runs = self.journal.open_runs(self.host_id)
        for run in runs:
            self._launch(run)
        self.recovered = len(runs)
        if runs:
            log.info("%s: resuming %d open workflow%s", self.host_id, len(runs), "" if len(runs) == 1 else "s")
        await self.mailbox.start()

    async def stop(self, timeout: float) -> None:
        """Leave every workflow open in the store (that is the point) and close the file."""
        self.running = False
        await self.mailbox.stop()
        for wf in list(self.workflows.values()):
            wf.halt_quietly()
        for wf in list(self.workflows.values()):
            self.drop_timers(wf)
        self.workflows.clear()
        self.runtime.router.remove_host(self.host_id)
        await self.journal.close()

    def _launch(self, run: RunRecord) -> Workflow:
        wf = Workflow(self, run)
        self.workflows[wf.pid] = wf
        task = wf.spawn_task(self.runtime.vm.entry_task, run.entry.encode(), b"workflow",
                             self.runtime.lua_args(run.input or []))
        wf.scheduler.start(task)
        return wf

    def forget(self, proc: Any) -> None:
        if self.workflows.get(proc.pid) is proc:  # a terminate_existing start may already own the PID
            del self.workflows[proc.pid]
        self.drop_timers(proc)

    def barrier(self) -> asyncio.Future[None]:
        return self.journal.flush()

    # Starting workflows ----------------------------------------------------------------------
    def spawn(self, request: SpawnRequest) -> str:
        entry = self.workflow_entry(request.entry_id)
        options = StartOptions.parse(request.options)
        explicit = options.workflow_id or request.name
        workflow_id = explicit or new_workflow_id()
        running_now = self.workflows.get(make_pid(self.host_id, workflow_id))
        # A generated ID is new; an explicit one may name a run that is live in memory (and
        # perhaps not yet committed) or stored from an earlier life of the host.
        existing = running_now.run if running_now is not None else (
            self.journal.latest_run(workflow_id) if explicit else None)
        vm = self.runtime.vm
        messages = [(topic, vm.to_python(payload, "message")) for topic, payload in request.messages]
        for topic, payload in messages:  # before anything starts: a start message must fit the history
            check_size(pack({"in": "msg", "topic": topic, "from": request.parent, "v": payload}),
                       f"start message {topic!r} for workflow {workflow_id}")
        if existing is not None and existing.status == "running":
            pid = make_pid(self.host_id, workflow_id)
            policy = options.conflict_policy
            if policy == "fail":
                raise WippyError(ALREADY_EXISTS, f"workflow {workflow_id} is already running", retryable=False)
            if policy == "terminate_existing":
                running = self.workflows.get(pid)
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
            workflow_id, entry.id, packed_args(vm, request.args), request.context, options.raw,
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
                       search: dict[str, Any] | None = None, memo: dict[str, Any] | None = None) -> str:
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
        wf = self._launch(run)
        for topic, payload in messages or ():  # startup messages come before anything else
            wf.input({"in": "msg", "topic": topic, "from": parent, "v": payload})
        if link and parent is not None:
            self.runtime.router.watch(parent, wf.pid, link=True)
        return wf.pid

    def ensure_child(self, parent: Workflow, record: dict[str, Any], _unused: Any, exec_ref: int | None) -> None:
        """Start a child workflow recorded by ``parent`` unless it already exists."""
        host = self.runtime.router.hosts.get(record["host"])
        if not isinstance(host, WorkflowHost) or not host.running:
            log.error("%s: child host %s is not a running workflow.host", parent.describe(), record["host"])
            return
        if host.journal.latest_run(record["child"]) is not None:
            return
        mode = record.get("mode", 0)
        host.start_workflow(
            record["child"], record["key"], record["args"], record.get("ctx") or {}, record.get("opts") or {},
            parent=parent.pid, monitor=bool(mode & 1), link=bool(mode & 2), exec_ref=exec_ref,
            messages=record.get("msgs") or [],
        )
        if mode & 1:
            parent.monitoring = (parent.monitoring or set()) | {make_pid(host.host_id, record["child"])}

    # Deliveries ------------------------------------------------------------------------------
    def alive(self, pid: str) -> bool:
        return pid in self.workflows

    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        wf = self.workflows.get(pid)
        if wf is None:
            return False
        wf.deliver(topic.encode(), payload, sender.encode() if sender else None)
        return True

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        wf = self.workflows.get(pid)
        if wf is None:
            return False
        wf.deliver_event(event)
        return True

    def terminate(self, pid: str, error: Any) -> bool:
        wf = self.workflows.get(pid)
        if wf is None:
            return False
        vm = self.runtime.vm
        wf.terminate(error if error is not None else vm.to_lua(WippyError(CANCELED, "workflow terminated")))
        return True

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        wf = self.workflows.get(pid)
        if wf is None:
            return False
        wf.deliver_event({"kind": "CANCEL", "from": sender, "reason": reason, "deadline": int(deadline * 1000)})
        error = self.runtime.vm.to_lua(WippyError(CANCELED, f"workflow did not finish within the cancel deadline ({reason})"))
        handle = self.runtime.scheduler.loop.call_later(deadline, wf.terminate, error)
        wf.on_close(handle.cancel)
        return True

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        wf = self.workflows.get(pid)
        if wf is None:
            return False
        if link:
            wf.links = (wf.links or set()) | {watcher}
        else:
            wf.monitors = (wf.monitors or set()) | {watcher}
        self.journal.set_watchers(wf.run.run_id, wf.watchers_record())
        return True

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        wf = self.workflows.get(pid)
        if wf is None:
            return
        group = wf.links if link else wf.monitors
        if group:
            group.discard(watcher)
            self.journal.set_watchers(wf.run.run_id, wf.watchers_record())

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"pid": wf.pid, "entry": wf.entry_id, "host": self.host_id, "inbox": len(wf.inbox.buffer),
                 "status": "blocked: " + wf.stuck if wf.stuck else "running"} for wf in self.workflows.values()]

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
        loop = self.runtime.scheduler.loop
        if delay <= 0:  # overdue (the host was down): fire in the order armed, i.e. due order
            timers[op.seq] = loop.call_soon(self._timer_fired, wf, op, at)
        else:
            timers[op.seq] = loop.call_later(delay, self._timer_fired, wf, op, at)

    def _timer_fired(self, wf: Workflow, op: Op, at: int) -> None:
        self._timers.get(wf.run.run_id, {}).pop(op.seq, None)
        if wf.ops.get(op.seq) is not op:
            return
        wf.input({"in": "done", "ref": op.seq})
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
        if kind in ("funcs.call", "funcs.async"):
            self.start_activity(wf, op)
        elif kind in ("time.sleep", "time.timer", "time.ticker"):
            self.arm_timer(wf, op)
        elif kind == "process.exec":
            self.ensure_child(wf, op.record, None, op.seq)
            op.live = True
