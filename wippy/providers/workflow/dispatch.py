"""How ``workflow.host`` carries out commands: recorded, replayed, never re-executed.

Four kinds of command:

- internal and deterministic (channels, coroutines, inbox, context): the ordinary handlers;
- recorded values (``time.now``, ``uuid.*``, ``crypto.random_bytes``): computed live,
  answered from the record on replay;
- asynchronous operations (activities, timers, child workflows): recorded, started as an
  effect after commit, completed by an input;
- effects on the outside (``process.send``, terminate, cancel, names): recorded, done once
  after commit, skipped on replay.

``process.monitor``/``unmonitor``/``link``/``unlink`` answer ``nil, err`` (Invalid), as
upstream's durable workflows do (a workflow hears about its children's ends anyway).
Commands not listed here are refused in workflows with a message naming them. Each kind
of command is one handler group below (a small class over the host); :func:`build_dispatcher`
combines them. The records they write are built by :mod:`.history`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.functions import Future, check_target
from wippy.actors.host import spawn_request
from wippy.actors.router import make_pid
from wippy.actors.scheduler import PENDING, Dispatcher, Handler, LuaTask
from wippy.errors import CANCELED, INVALID, WippyError
from wippy.lua.codec import pack
from wippy.lua.modules.time import NS, time_value
from wippy.providers._durable.commands import (
    internal_handlers,
    packed_args,
    plain_messages,
    refusals,
)
from wippy.providers._durable.options import StartOptions
from wippy.providers.workflow import history
from wippy.providers.workflow.execution import Op, RecordTooLarge, Workflow, check_size
from wippy.providers.workflow.history import RECORDED_VALUES, Record

if TYPE_CHECKING:
    from wippy.actors.host import SpawnRequest
    from wippy.providers.workflow.host import WorkflowHost

log = logging.getLogger("wippy.workflow")


class DurableFuture(Future):
    """A ``funcs.async`` future of a workflow, known by the seq of its activity record."""

    __slots__ = ("seq",)

    def __init__(self, channel: Channel, seq: int) -> None:
        super().__init__(channel)
        self.seq = seq


class DurableTimer:
    """Handle of a ``time.timer`` / ``time.ticker`` in a workflow."""

    __slots__ = ("op", "channel")

    def __init__(self, op: Op, channel: Channel) -> None:
        self.op = op
        self.channel = channel


def _wf(task: LuaTask) -> Workflow:
    actor = task.actor
    assert isinstance(actor, Workflow)
    return actor


def _wall_ns() -> int:
    return time.time_ns()


def build_dispatcher(host: WorkflowHost) -> Dispatcher:
    """The dispatcher of every workflow on ``host``: the internal commands with their
    ordinary handlers, the rest from the handler groups."""
    groups = (RecordedValues, Activities, Timers, Children, Effects, WorkflowModule)
    return Dispatcher(internal_handlers(host.kernel.dispatcher.handlers), refusals(),
                      *(group(host).handlers() for group in groups))


class _Group:
    """What every handler group uses of the host."""

    def __init__(self, host: WorkflowHost) -> None:
        kernel = host.kernel
        self.host = host
        self.kernel = kernel
        self.vm = kernel.vm
        self.to_lua = kernel.vm.to_lua
        self.to_python = kernel.vm.to_python
        self.router = kernel.router

    def handlers(self) -> dict[str, Handler]:
        raise NotImplementedError

    def failure(self, err: WippyError) -> tuple[None, Any]:
        """The ``(nil, err)`` a command returns for an error."""
        return (None, self.to_lua(err))

    def resume_with_result(self, task: LuaTask, wf: Workflow) -> Callable[[Record], None]:
        """An input handler that resumes ``task`` with the ``v`` and ``e`` of a done input."""
        to_lua = self.to_lua

        def done(rec: Record) -> None:
            error = rec.get("e")
            wf.scheduler.resume(task, to_lua(rec.get("v")), None if error is None else to_lua(error))

        return done


class RecordedValues(_Group):
    """Values that differ from run to run: computed live once, then read from the record."""

    def handlers(self) -> dict[str, Handler]:
        return {op: self.recorded(op) for op in RECORDED_VALUES}

    def recorded(self, op: str) -> Handler:
        live = self.kernel.dispatcher.handlers.get(op.encode())
        to_lua, to_python = self.to_lua, self.to_python

        def handler(task: LuaTask, *args: Any) -> Any:
            wf = _wf(task)
            found = wf.replayed(op)
            if found is not None:
                return tuple(to_lua(v) for v in found[1]["v"])
            if live is None:
                raise WippyError(INVALID, f"{op} is not available")
            result = live(task, *args)
            wf.record(history.value(op, [to_python(v, op) for v in result]))
            return result

        return handler


class Activities(_Group):
    """``funcs.call`` / ``funcs.async``: recorded, run by the host once committed, completed
    by a done input; ``future:cancel()``."""

    def handlers(self) -> dict[str, Handler]:
        return {"funcs.call": self.call, "funcs.async": self.call_async, "future.cancel": self.cancel}

    def _issue(self, op: str, task: LuaTask, target: Any, ctx: Any, opts: Any,
               args: Any) -> tuple[Workflow, int, Record, bool]:
        """Record the activity (or find its record on replay): ``(wf, seq, record, live)``."""
        wf = _wf(task)
        name = check_target(target)  # deterministic validation: raises INVALID before recording
        found = wf.replayed(op, name)
        if found is not None:
            return wf, found[0], found[1], False
        to_python = self.to_python
        record = history.activity(op, name, packed_args(self.vm, args),
                                  None if ctx is None else to_python(ctx, "context"),
                                  None if opts is None else to_python(opts, "options"))
        return wf, wf.record(record), record, True

    def _start(self, wf: Workflow, seq: int, record: Record, live: bool,
               on_done: Callable[[Record], None], args: Any) -> None:
        op = wf.wait(seq, record, on_done, new=live)
        if live:
            # the packed table copy_args made for this call: the first attempt takes it as
            # it is instead of converting the recorded arguments back
            op.lua_args = args
            wf.effect(lambda: self.host.start_activity(wf, op))

    def call(self, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        try:
            wf, seq, record, live = self._issue("funcs.call", task, target, ctx, opts, args)
        except WippyError as err:
            return self.failure(err)
        self._start(wf, seq, record, live, self.resume_with_result(task, wf), args)
        return PENDING

    def call_async(self, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        try:
            wf, seq, record, live = self._issue("funcs.async", task, target, ctx, opts, args)
        except WippyError as err:
            return self.failure(err)
        future = DurableFuture(Channel(wf.scheduler, 1), seq)
        to_lua, make_payload = self.to_lua, self.vm.make_payload

        def done(rec: Record) -> None:
            error = rec.get("e")
            if error is not None:
                future.settle(False, to_lua(error), make_payload)
            else:
                future.settle(True, to_lua(rec.get("v")), make_payload)

        self._start(wf, seq, record, live, done, args)
        return (future, future.channel)

    def cancel(self, task: LuaTask, future: Any) -> Any:
        wf = _wf(task)
        if not isinstance(future, DurableFuture):
            raise WippyError(INVALID, "future:cancel: not a future of this workflow")
        found = wf.replayed("future.cancel", future.seq)
        if found is None:
            wf.record(history.future_cancel(future.seq))
        if future.state != b"pending":
            return (False, None)
        future.state = b"canceled"
        future.value = self.to_lua(WippyError(CANCELED, "operation was canceled", retryable=False))
        future.channel.push(future.value)
        op = wf.ops.pop(future.seq, None)
        if op is not None and found is None:
            wf.effect(lambda: self.host.cancel_op(wf, op))
        return (True, None)


class Timers(_Group):
    """``time.sleep``, timers and tickers: due times recorded on the wall clock, armed by the
    host once committed, each firing a done input."""

    def handlers(self) -> dict[str, Handler]:
        return {
            "time.sleep": self.sleep,
            "time.timer": self.timer("time.timer", period=False),
            "time.ticker": self.timer("time.ticker", period=True),
            "time.stop": self.stop,
            "time.reset": self.reset,
        }

    def sleep(self, task: LuaTask, ns: Any) -> Any:
        wf = _wf(task)
        if type(ns) is not int:
            raise WippyError(INVALID, "time.sleep: duration must be an integer number of nanoseconds")
        found = wf.replayed("time.sleep")
        if found is None:
            record = history.sleep(_wall_ns() + max(ns, 0))
            seq = wf.record(record)
        else:
            seq, record = found
        op = wf.wait(seq, record, lambda rec: wf.scheduler.resume(task), new=found is None)
        if found is None:
            wf.effect(lambda: self.host.arm_timer(wf, op))
        return PENDING

    def timer(self, op_name: str, period: bool) -> Handler:
        host, to_lua = self.host, self.to_lua

        def handler(task: LuaTask, ns: Any) -> Any:
            wf = _wf(task)
            if type(ns) is not int or (period and ns <= 0):
                raise WippyError(INVALID, f"{op_name}: duration must be a positive number of nanoseconds")
            found = wf.replayed(op_name)
            if found is None:
                record = history.timer(op_name, _wall_ns() + max(ns, 0), ns if period else 0)
                seq = wf.record(record)
            else:
                seq, record = found
            channel = Channel(wf.scheduler, 1)

            def fired(rec: Record) -> bool:
                at = op.record["at"]
                channel.push(to_lua(time_value(*divmod(at, NS))))  # a full channel drops the tick
                if op.record["every"]:
                    op.record = {**op.record, "at": at + op.record["every"]}  # in memory only
                    return True  # tickers keep waiting
                return False

            op = wf.wait(seq, record, fired, new=found is None)
            if found is None:
                wf.effect(lambda: host.arm_timer(wf, op))
            return DurableTimer(op, channel), channel

        return handler

    def stop(self, task: LuaTask, handle: Any) -> Any:
        wf = _wf(task)
        if not isinstance(handle, DurableTimer):
            raise WippyError(INVALID, "time.stop: not a timer or ticker")
        found = wf.replayed("time.stop", handle.op.seq)
        active = wf.ops.pop(handle.op.seq, None) is not None
        handle.channel.buffer.clear()
        if found is None:
            wf.record(history.timer_stop(handle.op.seq))
            wf.effect(lambda: self.host.cancel_op(wf, handle.op))
        return (active,)

    def reset(self, task: LuaTask, handle: Any, ns: Any) -> Any:
        wf = _wf(task)
        if not isinstance(handle, DurableTimer) or type(ns) is not int:
            raise WippyError(INVALID, "time.reset: not a timer, or the duration is not an integer")
        op = handle.op
        found = wf.replayed("time.reset", op.seq)
        active = op.seq in wf.ops
        handle.channel.buffer.clear()
        at = found[1]["at"] if found else _wall_ns() + max(ns, 0)
        op.record = {**op.record, "at": at, "every": ns if op.record["every"] else 0}
        wf.ops[op.seq] = op
        if found is None:
            wf.record(history.timer_reset(op.seq, at))
            wf.effect(lambda: self.host.arm_timer(wf, op))
        return (active,)


class Children(_Group):
    """``process.spawn`` and ``process.exec``: a child workflow is recorded in full and
    started (unless it exists) once committed; a process on another kind of host is
    started at once and only its PID recorded."""

    def handlers(self) -> dict[str, Handler]:
        return {"process.spawn": self.spawn, "process.exec": self.exec}

    def _request(self, wf: Workflow, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
                 name: Any, msgs: Any, args: Any) -> tuple[str, SpawnRequest]:
        target, request = spawn_request(self.vm, entry, host_id, mode, ctx, opts, name, msgs, args,
                                        parent=wf.pid, context=wf.context)
        return self.host_named(target), request

    def host_named(self, name: str) -> str:
        """The host a workflow's spawn names: a host ID, else the ID of the workflow host
        whose ``task_queue`` it is (upstream's workflows start children on a task queue),
        this one first; else ``name`` itself (for the spawner's error)."""
        hosts = self.router.hosts
        if name in hosts:
            return name
        if self.host.task_queue == name:
            return self.host.host_id
        for host in hosts.values():
            if host.kind == self.host.kind and getattr(host, "task_queue", None) == name:
                return host.host_id
        return name

    def spawn(self, task: LuaTask, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        wf = _wf(task)
        entry_id = entry.decode()
        try:
            found = wf.replayed("process.spawn", entry_id)
        except RecordTooLarge as err:  # the child's arguments were too large to record
            return self.failure(err)
        if found is not None:
            return self._respawn(wf, found[1])
        try:
            target_host, request = self._request(wf, entry, host_id, mode, ctx, opts, name, msgs, args)
            target = self.router.host_for_spawn(target_host, self.kernel.registry)
            if target.kind == self.host.kind:
                return self._spawn_child(wf, target_host, request, mode)
            pid = target.spawn(request)
        except WippyError as err:
            if not isinstance(err, RecordTooLarge):  # (that one left its own record)
                wf.record(history.failed("process.spawn", entry_id, err))
            return self.failure(err)
        wf.record(history.spawned(entry_id, pid))
        if request.monitor:
            wf.monitoring = (wf.monitoring or set()) | {pid}
        return (pid.encode(),)

    def _respawn(self, wf: Workflow, record: Record) -> Any:
        """A replayed spawn: its answer from the record; a child workflow is started again
        if the record is all that was committed before a crash."""
        if record.get("child") is not None:
            wf.effect(lambda: self.host.ensure_child(wf, record))
        if record.get("e") is not None:
            return (None, self.to_lua(record["e"]))
        return (record["pid"].encode(),)

    def _spawn_child(self, wf: Workflow, target_host: str, request: SpawnRequest, mode: int) -> Any:
        # A child workflow always reports its end to its parent (an EXIT event), as Temporal
        # children do: the docs wait for it after a plain process.spawn.
        options = StartOptions.parse(request.options).check_durable()
        child_id = self._child_id(wf, options, request)
        record = history.child_spawn(
            request.entry_id, target_host, child_id, make_pid(target_host, child_id), mode | 1,
            packed_args(self.vm, request.args), request.context, request.options,
            plain_messages(self.vm, request.messages))
        wf.record(record)
        wf.effect(lambda: self.host.ensure_child(wf, record))
        return (record["pid"].encode(),)

    @staticmethod
    def _child_id(wf: Workflow, options: StartOptions, request: SpawnRequest) -> str:
        return str(options.workflow_id or request.name or default_child_id(wf, wf.seq))

    def exec(self, task: LuaTask, entry: bytes, host_id: bytes, ctx: Any, opts: Any, name: Any,
             msgs: Any, args: Any) -> Any:
        wf = _wf(task)
        try:  # deterministic: checked before the history is consulted, so a replay fails alike
            target_host, request = self._request(wf, entry, host_id, 0, ctx, opts, name, msgs, args)
            options = StartOptions.parse(request.options).check_durable()
        except WippyError as err:
            return self.failure(err)
        found = wf.replayed("process.exec", request.entry_id)
        if found is None:
            try:
                target = self.router.host_for_spawn(target_host, self.kernel.registry)
            except WippyError as err:
                return self.failure(err)
            if target.kind != self.host.kind:
                return self.failure(WippyError(INVALID, f"process.exec from a workflow needs a workflow host; "
                                                        f"{target_host} is a {target.kind}"))
            record = history.child_exec(
                request.entry_id, target_host, self._child_id(wf, options, request),
                packed_args(self.vm, request.args), request.options, request.context,
                plain_messages(self.vm, request.messages))
            seq = wf.record(record)
        else:
            seq, record = found
        wf.wait(seq, record, self.resume_with_result(task, wf), new=True)  # ensure_child covers both
        wf.effect(lambda: self.host.ensure_child(wf, record, seq))
        return PENDING


class Effects(_Group):
    """Commands with an effect outside the workflow (messages, control, names): recorded,
    done once after commit, skipped on replay."""

    def handlers(self) -> dict[str, Handler]:
        outward = self.outward
        return {
            "process.send": outward("process.send", lambda d, t, p: [d.decode(), t.decode()], self.send),
            "process.terminate": outward("process.terminate", lambda d: d.decode(), self.terminate),
            "process.cancel": outward("process.cancel", lambda d, *_: d.decode(), self.cancel),
            "process.register": outward("process.register", lambda n, *_: n.decode(), self.register,
                                        in_memory=True),
            "process.unregister": outward("process.unregister", lambda n: n.decode(), self.unregister,
                                          in_memory=True),
        }

    def outward(self, op: str, key_of: Callable[..., Any], act: Callable[..., Any], *,
                in_memory: bool = False) -> Handler:
        """A handler for ``op``: ``act(wf, *args)`` checks the command and returns its effect
        (or None). ``in_memory`` effects (the name registry) live only as long as the kernel,
        so a replay applies them again."""
        to_lua = self.to_lua

        def handler(task: LuaTask, *args: Any) -> Any:
            wf = _wf(task)
            key = key_of(*args)
            found = wf.replayed(op, key)
            if found is not None:
                e = found[1].get("e")
                if e is None and in_memory:
                    try:
                        act(wf, *args)
                    except WippyError as err:  # e.g. the name is taken now: say so, carry on
                        log.warning("%s: replaying %s: %s", wf.describe(), op, err)
                return (None, to_lua(e)) if e is not None else (True,)
            try:
                fx = act(wf, *args)
            except WippyError as err:
                wf.record(history.failed(op, key, err))
                return (None, to_lua(err))
            wf.record(history.effect(op, key))
            if fx is not None:
                wf.effect(fx)
            return (True,)

        return handler

    def send(self, wf: Workflow, dest: bytes, topic: bytes, payload: Any) -> Callable[[], None]:
        router = self.router
        pid = router.resolve(dest.decode())
        target = router.host_of(pid)
        if target is not None and target.kind == self.host.kind:  # the receiver records it: check now
            record = history.message(topic.decode(), wf.pid, self.to_python(payload, "message"))
            check_size(pack(record), f"message {topic.decode()!r} to {pid}")

        def fx() -> None:
            try:
                router.send(pid, topic.decode(), payload, wf.pid)
            except WippyError as err:  # the receiver refused it; the sender carries on
                log.warning("%s: process.send to %s failed: %s", wf.describe(), pid, err)

        return fx

    def terminate(self, wf: Workflow, dest: bytes) -> Callable[[], Any]:
        router = self.router
        pid = router.resolve(dest.decode())
        return lambda: (h := router.host_of(pid)) and h.terminate(pid, None)

    def cancel(self, wf: Workflow, dest: bytes, deadline: Any, reason: Any) -> Callable[[], Any]:
        router = self.router
        pid = router.resolve(dest.decode())
        seconds = 5.0 if deadline is None or isinstance(deadline, bytes) else float(deadline) / 1000
        why = reason.decode() if isinstance(reason, bytes) else "canceled"
        return lambda: (h := router.host_of(pid)) and h.cancel(pid, wf.pid, why, seconds)

    def register(self, wf: Workflow, name: bytes, target: Any) -> None:
        owner = target.decode() if target is not None else wf.pid
        self.router.register(name.decode(), owner)

    def unregister(self, wf: Workflow, name: bytes) -> None:
        self.router.unregister(name.decode())


class WorkflowModule(_Group):
    """The ``workflow`` module: run info, versions, search attributes and memo."""

    def handlers(self) -> dict[str, Handler]:
        return {
            "workflow.info": self.info,
            "workflow.version": self.version,
            "workflow.attrs": self.attrs,
            "workflow.history_length": self.history_length,
            "workflow.history_size": self.history_size,
        }

    def info(self, task: LuaTask) -> Any:
        wf = _wf(task)
        run = wf.run
        return (self.to_lua({
            "workflow_id": run.workflow_id, "run_id": run.run_id, "workflow_type": run.entry,
            "task_queue": self.host.task_queue, "namespace": "default", "attempt": wf.attempt,
            "start_time": time_value(*divmod(int(run.created * NS), NS)),
            "history_length": _history_length(wf), "history_size": _history_size(wf),
        }),)

    def version(self, task: LuaTask, change_id: bytes, low: int, high: int) -> Any:
        wf = _wf(task)
        change = change_id.decode()
        if change in wf.versions:
            chosen = wf.versions[change]
        else:
            found = wf.replayed("workflow.version", change)
            chosen = found[1]["v"] if found is not None else high
            if found is None:
                wf.record(history.version(change, high))
            wf.versions[change] = chosen
        if not low <= chosen <= high:
            raise WippyError(INVALID, f"workflow.version({change!r}): this run uses version {chosen}, "
                                      f"outside the supported range {low}..{high}")
        return (chosen,)

    def attrs(self, task: LuaTask, search: Any, memo: Any) -> Any:
        wf = _wf(task)
        found = wf.replayed("workflow.attrs")
        run = wf.run
        if search is not None:
            run.search = {**run.search, **self.to_python(search, "search")}
        if memo is not None:
            run.memo = {**run.memo, **self.to_python(memo, "memo")}
        if found is None:
            wf.record(history.attrs())
            # a write to the run itself, not an outside effect: queued behind the record, so
            # it is in the store no later than anything the workflow does next (its close)
            self.host.journal.set_attrs(run.run_id, dict(run.search), dict(run.memo))
        return (True,)

    def history_length(self, task: LuaTask) -> Any:
        return (_history_length(_wf(task)),)

    def history_size(self, task: LuaTask) -> Any:
        return (_history_size(_wf(task)),)


HISTORY_BASE = 3
"""Events a Temporal history has when a workflow's code first runs (started, task
scheduled, task started): ``workflow.history_length()`` counts from there, so it is above
0 from the start, as upstream's is, and grows with every record of the journal."""


def _history_length(wf: Workflow) -> int:
    return HISTORY_BASE + wf.position


def _history_size(wf: Workflow) -> int:
    return wf.sizes[wf.position - 1] if wf.position else 0


def default_child_id(wf: Workflow, seq: int) -> str:
    """The ID of a child started without one: the parent's ID and the history position,
    with the run number for the later runs of a retried or cron workflow (whose histories
    start over at 0)."""
    if wf.run_no == 1:
        return f"{wf.workflow_id}/{seq}"
    return f"{wf.workflow_id}/run{wf.run_no}/{seq}"
