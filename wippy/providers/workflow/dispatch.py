"""How ``workflow.host`` carries out commands: recorded, replayed, never re-executed.

Four kinds of command:

- internal and deterministic (channels, coroutines, inbox, context): the ordinary handlers;
- recorded values (``time.now``, ``uuid.*``, ``crypto.random_bytes``): computed live,
  answered from the record on replay;
- asynchronous operations (activities, timers, child workflows): recorded, started as an
  effect after commit, completed by an input;
- effects on the outside (``process.send``, terminate, monitors): recorded, done once
  after commit, skipped on replay.

Commands not listed here are refused in workflows with a message naming them.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.functions import Future, check_target
from wippy.actors.router import make_pid
from wippy.actors.scheduler import PENDING, Dispatcher, LuaTask
from wippy.errors import CANCELED, INVALID, WippyError
from wippy.lua.codec import pack
from wippy.lua.modules.time import NS, time_value
from wippy.providers.workflow.execution import Op, RecordTooLarge, Workflow, check_size
from wippy.providers.workflow.options import StartOptions

if TYPE_CHECKING:
    from wippy.providers.workflow.host import WorkflowHost

log = logging.getLogger("wippy.workflow")

INTERNAL_COMMANDS = (
    "chan.new", "chan.send", "chan.recv", "chan.close", "chan.select", "coroutine.spawn",
    "future.state", "ctx.get", "ctx.all", "process.pid", "process.id", "process.inbox",
    "process.events", "process.listen", "process.unlisten", "process.get_options",
    "process.set_options", "workflow.host_id",
)
RECORDED_VALUES = ("time.now", "uuid.v1", "uuid.v4", "uuid.v7", "crypto.random_bytes", "crypto.now", "process.lookup")


class DurableFuture(Future):
    __slots__ = ("seq",)


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


def packed_args(vm: Any, args: Any) -> list[Any]:
    n = args[b"n"] or 0
    return [vm.to_python(args[i], f"argument #{i}") for i in range(1, n + 1)]


def build_dispatcher(host: WorkflowHost) -> Dispatcher:
    kernel = host.kernel
    base = kernel.dispatcher.handlers
    handlers: dict[str, Any] = {op: base[op.encode()] for op in INTERNAL_COMMANDS if op.encode() in base}
    vm = kernel.vm
    to_lua, to_python = vm.to_lua, vm.to_python
    router = kernel.router

    def err_lua(err: Any) -> Any:
        return None if err is None else to_lua(err)

    # Recorded values ---------------------------------------------------------------------
    def recorded(op: str) -> Any:
        live = base.get(op.encode())

        def handler(task: LuaTask, *args: Any) -> Any:
            wf = _wf(task)
            found = wf.replayed(op)
            if found is not None:
                return tuple(to_lua(v) for v in found[1]["v"])
            if live is None:
                raise WippyError(INVALID, f"{op} is not available")
            result = live(task, *args)
            wf.record({"op": op, "v": [to_python(v, op) for v in result]})
            return result

        return handler

    for op in RECORDED_VALUES:
        handlers[op] = recorded(op)

    # Activities ----------------------------------------------------------------------------
    def activity(op: str, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        wf = _wf(task)
        name = check_target(target)  # deterministic validation: raises INVALID before recording
        found = wf.replayed(op, name)
        if found is None:
            record = {"op": op, "key": name, "args": packed_args(vm, args),
                      "ctx": None if ctx is None else to_python(ctx, "context"),
                      "opts": None if opts is None else to_python(opts, "options")}
            seq = wf.record(record)
            live = True
        else:
            seq, record = found
            live = False
        return seq, record, live

    def funcs_call(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        wf = _wf(task)
        try:
            seq, record, live = activity("funcs.call", task, target, ctx, opts, args)
        except WippyError as err:
            return (None, to_lua(err))

        def done(rec: dict[str, Any]) -> None:
            wf.scheduler.resume(task, to_lua(rec.get("v")), err_lua(rec.get("e")))

        op = wf.wait(seq, record, done, new=live)
        if live:
            wf.effect(lambda: host.start_activity(wf, op))
        return PENDING

    def funcs_async(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        wf = _wf(task)
        try:
            seq, record, live = activity("funcs.async", task, target, ctx, opts, args)
        except WippyError as err:
            return (None, to_lua(err))
        future = DurableFuture(Channel(wf.scheduler, 1))  # type: ignore[arg-type]
        future.seq = seq
        make_payload = vm.make_payload

        def done(rec: dict[str, Any]) -> None:
            error = rec.get("e")
            if error is not None:
                future.settle(False, to_lua(error), make_payload)
            else:
                future.settle(True, to_lua(rec.get("v")), make_payload)

        op = wf.wait(seq, record, done, new=live)
        if live:
            wf.effect(lambda: host.start_activity(wf, op))
        return (future, future.channel)

    def future_cancel(task: LuaTask, future: Any) -> Any:
        wf = _wf(task)
        if not isinstance(future, DurableFuture):
            raise WippyError(INVALID, "future:cancel: not a future of this workflow")
        found = wf.replayed("future.cancel", future.seq)
        if found is None:
            wf.record({"op": "future.cancel", "key": future.seq})
        if future.state != b"pending":
            return (False, None)
        future.state = b"canceled"
        future.value = to_lua(WippyError(CANCELED, "operation was canceled", retryable=False))
        future.channel.push(future.value)
        op = wf.ops.pop(future.seq, None)
        if op is not None and found is None:
            wf.effect(lambda: host.cancel_op(wf, op))
        return (True, None)

    # Timers ----------------------------------------------------------------------------------
    def wall_ns() -> int:
        return time.time_ns()

    def sleep(task: LuaTask, ns: Any) -> Any:
        wf = _wf(task)
        if type(ns) is not int:
            raise WippyError(INVALID, "time.sleep: duration must be an integer number of nanoseconds")
        found = wf.replayed("time.sleep")
        if found is None:
            record = {"op": "time.sleep", "at": wall_ns() + max(ns, 0)}
            seq = wf.record(record)
        else:
            seq, record = found
        op = wf.wait(seq, record, lambda rec: wf.scheduler.resume(task), new=found is None)
        if found is None:
            wf.effect(lambda: host.arm_timer(wf, op))
        return PENDING

    def timer(op_name: str, period: bool) -> Any:
        def handler(task: LuaTask, ns: Any) -> Any:
            wf = _wf(task)
            if type(ns) is not int or (period and ns <= 0):
                raise WippyError(INVALID, f"{op_name}: duration must be a positive number of nanoseconds")
            found = wf.replayed(op_name)
            if found is None:
                record = {"op": op_name, "at": wall_ns() + max(ns, 0), "every": ns if period else 0}
                seq = wf.record(record)
            else:
                seq, record = found
            channel = Channel(wf.scheduler, 1)  # type: ignore[arg-type]

            def fired(rec: dict[str, Any]) -> bool:
                at = op.record["at"]
                channel.push(to_lua(time_value(*divmod(at, NS))))  # a full channel drops the tick
                if op.record["every"]:
                    op.record = {**op.record, "at": at + op.record["every"]}
                    return True  # tickers keep waiting
                return False

            op = wf.wait(seq, record, fired, new=found is None)
            if found is None:
                wf.effect(lambda: host.arm_timer(wf, op))
            return DurableTimer(op, channel), channel

        return handler

    def timer_stop(task: LuaTask, handle: Any) -> Any:
        wf = _wf(task)
        if not isinstance(handle, DurableTimer):
            raise WippyError(INVALID, "time.stop: not a timer or ticker")
        found = wf.replayed("time.stop", handle.op.seq)
        active = wf.ops.pop(handle.op.seq, None) is not None
        handle.channel.buffer.clear()
        if found is None:
            wf.record({"op": "time.stop", "key": handle.op.seq})
            wf.effect(lambda: host.cancel_op(wf, handle.op))
        return (active,)

    def timer_reset(task: LuaTask, handle: Any, ns: Any) -> Any:
        wf = _wf(task)
        if not isinstance(handle, DurableTimer) or type(ns) is not int:
            raise WippyError(INVALID, "time.reset: not a timer, or the duration is not an integer")
        op = handle.op
        found = wf.replayed("time.reset", op.seq)
        active = op.seq in wf.ops
        handle.channel.buffer.clear()
        at = found[1]["at"] if found else wall_ns() + max(ns, 0)
        op.record = {**op.record, "at": at, "every": ns if op.record["every"] else 0}
        wf.ops[op.seq] = op
        if found is None:
            wf.record({"op": "time.reset", "key": op.seq, "at": at})
            wf.effect(lambda: host.arm_timer(wf, op))
        return (active,)

    handlers.update({
        "funcs.call": funcs_call,
        "funcs.async": funcs_async,
        "future.cancel": future_cancel,
        "time.sleep": sleep,
        "time.timer": timer("time.timer", period=False),
        "time.ticker": timer("time.ticker", period=True),
        "time.stop": timer_stop,
        "time.reset": timer_reset,
    })

    # Processes and children ------------------------------------------------------------------
    def spawn(task: LuaTask, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        wf = _wf(task)
        entry_id, target_host = entry.decode(), host_id.decode()
        try:
            found = wf.replayed("process.spawn", entry_id)
        except RecordTooLarge as err:  # the child's arguments were too large to record
            return (None, to_lua(err))
        if found is not None:
            seq, record = found
            if record.get("child") is not None:
                wf.effect(lambda: host.ensure_child(wf, record, None, None))
            if record.get("e") is not None:
                return (None, to_lua(record["e"]))
            return (record["pid"].encode(),)
        try:
            target = router.host_for_spawn(target_host, kernel.registry)
            options = {} if opts is None else to_python(opts, "options")
            context = {**wf.context, **({} if ctx is None else to_python(ctx, "context"))}
            messages = [(item[1].decode(), to_python(item[2])) for item in msgs.values()] if msgs is not None else []
            child_name = None if name is None else name.decode()
            if target.kind == "workflow.host":
                StartOptions.parse(options).check_durable()
                seq = wf.seq
                child_id = str(options.get("temporal.workflow.id") or child_name or default_child_id(wf, seq))
                # A child workflow always reports its end to its parent (an EXIT event), as
                # Temporal children do: the docs wait for it after a plain process.spawn.
                record = {"op": "process.spawn", "key": entry_id, "host": target_host, "child": child_id,
                          "pid": make_pid(target_host, child_id), "mode": mode | 1, "args": packed_args(vm, args),
                          "ctx": context, "opts": options, "msgs": messages}
                wf.record(record)
                wf.effect(lambda: host.ensure_child(wf, record, None, None))
                return (record["pid"].encode(),)
            request = runtime_spawn_request(wf, entry_id, args, context, options, child_name, msgs, mode)
            pid = target.spawn(request)
        except WippyError as err:
            if not isinstance(err, RecordTooLarge):  # (that one left its own record)
                wf.record({"op": "process.spawn", "key": entry_id, "e": to_python(err)})
            return (None, to_lua(err))
        wf.record({"op": "process.spawn", "key": entry_id, "pid": pid})
        if mode & 1:
            wf.monitoring = (wf.monitoring or set()) | {pid}
        return (pid.encode(),)

    def exec_child(task: LuaTask, entry: bytes, host_id: bytes, ctx: Any, opts: Any, name: Any,
                   msgs: Any, args: Any) -> Any:
        wf = _wf(task)
        entry_id = entry.decode()
        try:  # deterministic: checked before the history is consulted, so a replay fails alike
            options = {} if opts is None else to_python(opts, "options")
            StartOptions.parse(options).check_durable()
        except WippyError as err:
            return (None, to_lua(err))
        found = wf.replayed("process.exec", entry_id)
        if found is None:
            try:
                target = router.host_for_spawn(host_id.decode(), kernel.registry)
            except WippyError as err:
                return (None, to_lua(err))
            if target.kind != "workflow.host":
                return (None, to_lua(WippyError(
                    INVALID, f"process.exec from a workflow needs a workflow host; {host_id.decode()} is a {target.kind}")))
            seq = wf.seq
            child_id = str(options.get("temporal.workflow.id") or (name.decode() if name else None)
                           or default_child_id(wf, seq))
            record = {"op": "process.exec", "key": entry_id, "host": host_id.decode(), "child": child_id,
                      "args": packed_args(vm, args), "opts": options,
                      "ctx": {**wf.context, **({} if ctx is None else to_python(ctx, "context"))},
                      "msgs": [(i[1].decode(), to_python(i[2])) for i in msgs.values()] if msgs is not None else []}
            wf.record(record)
        else:
            seq, record = found

        def done(rec: dict[str, Any]) -> None:
            wf.scheduler.resume(task, to_lua(rec.get("v")), err_lua(rec.get("e")))

        wf.wait(seq, record, done, new=True)  # ensure_child below covers both cases
        wf.effect(lambda: host.ensure_child(wf, record, None, seq))
        return PENDING

    def outward(op: str, key_of: Any, act: Any, *, in_memory: bool = False) -> Any:
        """A command with an effect outside the workflow: recorded, done once after commit.
        ``in_memory`` effects (the name registry) live only as long as the kernel, so a
        replay applies them again."""

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
                wf.record({"op": op, "key": key, "e": to_python(err)})
                return (None, to_lua(err))
            wf.record({"op": op, "key": key})
            if fx is not None:
                wf.effect(fx)
            return (True,)

        return handler

    def do_send(wf: Workflow, dest: bytes, topic: bytes, payload: Any) -> Any:
        pid = router.resolve(dest.decode())
        target = router.host_of(pid)
        if target is not None and target.kind == "workflow.host":  # the receiver records it: check now
            record = {"in": "msg", "topic": topic.decode(), "from": wf.pid, "v": to_python(payload, "message")}
            check_size(pack(record), f"message {topic.decode()!r} to {pid}")

        def fx() -> None:
            try:
                router.send(pid, topic.decode(), payload, wf.pid)
            except WippyError as err:  # the receiver refused it; the sender carries on
                log.warning("%s: process.send to %s failed: %s", wf.describe(), pid, err)

        return fx

    def do_terminate(wf: Workflow, dest: bytes) -> Any:
        pid = router.resolve(dest.decode())
        return lambda: (h := router.host_of(pid)) and h.terminate(pid, None)

    def do_cancel(wf: Workflow, dest: bytes, deadline: Any, reason: Any) -> Any:
        pid = router.resolve(dest.decode())
        seconds = 5.0 if deadline is None or isinstance(deadline, bytes) else float(deadline) / 1000
        why = reason.decode() if isinstance(reason, bytes) else "canceled"
        return lambda: (h := router.host_of(pid)) and h.cancel(pid, wf.pid, why, seconds)

    def do_watch(link: bool, on: bool) -> Any:
        def act(wf: Workflow, dest: bytes) -> Any:
            pid = router.resolve(dest.decode())
            group = "links" if link else "monitoring"
            current = getattr(wf, group) or set()
            setattr(wf, group, (current | {pid}) if on else (current - {pid}))

            def fx() -> None:
                if on:
                    if not router.watch(pid, wf.pid, link=link) and not link:
                        wf.deliver_event({"kind": "EXIT", "from": pid, "result": {
                            "value": None, "error": to_lua(WippyError("NOT_FOUND", f"process {pid} not found"))}})
                else:
                    router.unwatch(pid, wf.pid, link=link)

            return fx

        return act

    def do_register(wf: Workflow, name: bytes, target: Any) -> Any:
        owner = target.decode() if target is not None else wf.pid
        router.register(name.decode(), owner)
        return None

    def do_unregister(wf: Workflow, name: bytes) -> Any:
        router.unregister(name.decode())
        return None

    handlers.update({
        "process.spawn": spawn,
        "process.exec": exec_child,
        "process.send": outward("process.send", lambda d, t, p: [d.decode(), t.decode()], do_send),
        "process.terminate": outward("process.terminate", lambda d: d.decode(), do_terminate),
        "process.cancel": outward("process.cancel", lambda d, *_: d.decode(), do_cancel),
        "process.monitor": outward("process.monitor", lambda d: d.decode(), do_watch(False, True)),
        "process.unmonitor": outward("process.unmonitor", lambda d: d.decode(), do_watch(False, False)),
        "process.link": outward("process.link", lambda d: d.decode(), do_watch(True, True)),
        "process.unlink": outward("process.unlink", lambda d: d.decode(), do_watch(True, False)),
        "process.register": outward("process.register", lambda n, *_: n.decode(), do_register, in_memory=True),
        "process.unregister": outward("process.unregister", lambda n: n.decode(), do_unregister, in_memory=True),
    })

    # The workflow module -----------------------------------------------------------------------
    def info(task: LuaTask) -> Any:
        wf = _wf(task)
        run = wf.run
        return (to_lua({
            "workflow_id": run.workflow_id, "run_id": run.run_id, "workflow_type": run.entry,
            "task_queue": host.host_id, "namespace": "default", "attempt": wf.attempt,
            "start_time": time_value(*divmod(int(run.created * NS), NS)),
            "history_length": wf.position, "history_size": wf.sizes[wf.position - 1] if wf.position else 0,
        }),)

    def version(task: LuaTask, change_id: bytes, low: int, high: int) -> Any:
        wf = _wf(task)
        change = change_id.decode()
        if change in wf.versions:
            chosen = wf.versions[change]
        else:
            found = wf.replayed("workflow.version", change)
            chosen = found[1]["v"] if found is not None else high
            if found is None:
                wf.record({"op": "workflow.version", "key": change, "v": high})
            wf.versions[change] = chosen
        if not low <= chosen <= high:
            raise WippyError(INVALID, f"workflow.version({change!r}): this run uses version {chosen}, "
                                      f"outside the supported range {low}..{high}")
        return (chosen,)

    def attrs(task: LuaTask, search: Any, memo: Any) -> Any:
        wf = _wf(task)
        found = wf.replayed("workflow.attrs")
        run = wf.run
        if search is not None:
            run.search = {**run.search, **to_python(search, "search")}
        if memo is not None:
            run.memo = {**run.memo, **to_python(memo, "memo")}
        if found is None:
            wf.record({"op": "workflow.attrs"})
            # a write to the run itself, not an outside effect: queued behind the record, so
            # it is in the store no later than anything the workflow does next (its close)
            host.journal.set_attrs(run.run_id, dict(run.search), dict(run.memo))
        return (True,)

    def history_length(task: LuaTask) -> Any:
        return (_wf(task).position,)

    def history_size(task: LuaTask) -> Any:
        wf = _wf(task)
        return (wf.sizes[wf.position - 1] if wf.position else 0,)

    handlers.update({
        "workflow.info": info,
        "workflow.version": version,
        "workflow.attrs": attrs,
        "workflow.history_length": history_length,
        "workflow.history_size": history_size,
    })
    return Dispatcher(handlers)


def runtime_spawn_request(wf: Workflow, entry_id: str, args: Any, context: dict[str, Any],
                          options: dict[str, Any], name: str | None, msgs: Any, mode: int) -> Any:
    from wippy.actors.host import SpawnRequest

    messages = [(item[1].decode(), item[2]) for item in msgs.values()] if msgs is not None else []
    return SpawnRequest(entry_id, args, parent=wf.pid, context=context, options=options, name=name,
                        messages=messages, monitor=bool(mode & 1), link=bool(mode & 2))


def default_child_id(wf: Workflow, seq: int) -> str:
    """The ID of a child started without one: the parent's ID and the history position,
    with the run number for the later runs of a retried or cron workflow (whose histories
    start over at 0)."""
    if wf.run_no == 1:
        return f"{wf.workflow_id}/{seq}"
    return f"{wf.workflow_id}/run{wf.run_no}/{seq}"


def new_workflow_id() -> str:
    return uuid.uuid4().hex
