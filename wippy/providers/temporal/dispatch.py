"""How a Lua workflow's commands map onto the Temporal workflow API.

Values come from Temporal's deterministic sources (``workflow.time_ns``, ``uuid4``,
``random``); blocking commands become workflow-loop tasks (activities, timers, child
workflows, external signals) that resume the Lua task when they finish. Effects on the
rest of the runtime run as local activities, so Temporal records them once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
)

from wippy.actors.channel import Channel
from wippy.actors.functions import Future, check_target
from wippy.actors.process import Process
from wippy.actors.router import make_pid, parse_pid
from wippy.actors.scheduler import PENDING, Dispatcher, LuaTask
from wippy.errors import CANCELED, INVALID, WippyError
from wippy.lua.modules.time import NS, time_value
from wippy.providers.temporal.context import CONTEXT
from wippy.providers.temporal.converter import typed_search_attributes
from wippy.providers.temporal.failures import from_failure
from wippy.providers.workflow.dispatch import INTERNAL_COMMANDS, packed_args
from wippy.providers.workflow.options import seconds

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.providers.temporal.worker import TemporalWorkerHost
    from wippy.providers.temporal.workflow import TemporalProcess

DEFAULT_ACTIVITY_TIMEOUT = timedelta(minutes=10)
LOCAL_TIMEOUT = timedelta(minutes=1)


def chosen_version(change: str, low: int, high: int) -> int:
    """``workflow.version(change, low, high)`` as patches: the version a run takes is
    recorded as the patch ``<change>@<version>``. A new run records ``high``; a replay finds
    the version it recorded (probing ``high`` down to ``low``; a patch of another version in
    the history is reported as out of range), and a run from before the call gets ``low``."""
    for v in range(high, low - 1, -1):
        if workflow.patched(f"{change}@{v}"):  # outside a replay: records ``high`` and is True
            return v
    seen = getattr(workflow._Runtime.current(), "_patches_notified", ())
    for patch in seen:
        name, _, recorded = str(patch).rpartition("@")
        if name == change and recorded.lstrip("-").isdigit():
            return int(recorded)
    return low


# Commands ------------------------------------------------------------------------------------
def _proc(task: LuaTask) -> TemporalProcess:
    return task.actor  # type: ignore[return-value]  # only TemporalProcess actors use this dispatcher


def dispatcher_for(rt: Kernel, host: TemporalWorkerHost) -> Dispatcher:
    cached = getattr(rt, "_temporal_dispatchers", {}).get(host.host_id)
    if cached is None:
        cached = build_dispatcher(rt, host)
        rt._temporal_dispatchers = {**getattr(rt, "_temporal_dispatchers", {}), host.host_id: cached}  # type: ignore[attr-defined]
    return cached


def activity_options(host: TemporalWorkerHost, opts: dict[str, Any]) -> dict[str, Any]:
    policy = opts.get("activity.retry_policy")
    out: dict[str, Any] = {}
    stc = seconds("activity.start_to_close_timeout", opts.get("activity.start_to_close_timeout"))
    sch = seconds("activity.schedule_to_close_timeout", opts.get("activity.schedule_to_close_timeout"))
    hb = seconds("activity.heartbeat_timeout", opts.get("activity.heartbeat_timeout"))
    if stc:
        out["start_to_close_timeout"] = timedelta(seconds=stc)
    if sch:
        out["schedule_to_close_timeout"] = timedelta(seconds=sch)
    if hb:
        out["heartbeat_timeout"] = timedelta(seconds=hb)
    if not stc and not sch:
        out["start_to_close_timeout"] = DEFAULT_ACTIVITY_TIMEOUT
    if isinstance(policy, dict):
        interval = seconds("initial_interval", policy.get("initial_interval"))
        maximum = seconds("maximum_interval", policy.get("maximum_interval"))
        out["retry_policy"] = RetryPolicy(
            initial_interval=timedelta(seconds=interval or 1.0),
            backoff_coefficient=float(policy.get("backoff_coefficient", 2.0)),
            maximum_interval=timedelta(seconds=maximum) if maximum else None,
            maximum_attempts=int(policy.get("maximum_attempts", 0)),
            non_retryable_error_types=list(policy.get("non_retryable_error_types") or []),
        )
    return out


def build_dispatcher(rt: Kernel, host: TemporalWorkerHost) -> Dispatcher:
    base = rt.dispatcher.handlers
    handlers: dict[str, Any] = {op: base[op.encode()] for op in INTERNAL_COMMANDS if op.encode() in base}
    vm = rt.vm
    to_lua, to_python = vm.to_lua, vm.to_python

    def awaiting(task: LuaTask, coro: Any, on_ok: Any) -> Any:
        """Run ``coro`` on the workflow loop; resume ``task`` with ``on_ok(result)`` or
        ``(nil, err)``."""
        proc = _proc(task)

        def done(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                proc.scheduler.resume(task, None, to_lua(from_failure(exc)))
            else:
                proc.scheduler.resume(task, *on_ok(t.result()))

        proc.spawn_bg(coro, done)
        return PENDING

    def local(name: str, *args: Any) -> Any:
        return workflow.execute_local_activity(name, args=list(args), start_to_close_timeout=LOCAL_TIMEOUT)

    # Values --------------------------------------------------------------------------------
    def now(task: LuaTask) -> Any:
        return divmod(workflow.time_ns(), NS)

    handlers.update({
        "time.now": now,
        "crypto.now": now,
        "uuid.v4": lambda task: (str(workflow.uuid4()).encode(),),
        "uuid.v7": lambda task: (str(workflow.uuid7()).encode(),),
        "uuid.v1": lambda task: (str(workflow.uuid4()).encode(),),
        "crypto.random_bytes": lambda task, n: (workflow.random().randbytes(int(n)),),
    })

    # Timers --------------------------------------------------------------------------------
    class TimerHandle:
        __slots__ = ("task", "channel", "period", "fired")

    def sleep(task: LuaTask, ns: Any) -> Any:
        if type(ns) is not int:
            raise WippyError(INVALID, "time.sleep: duration must be an integer number of nanoseconds")
        if ns <= 0:
            return ()
        return awaiting(task, workflow.sleep(ns / NS), lambda _: ())

    def arm(proc: TemporalProcess, handle: Any, ns: int) -> None:
        async def tick() -> None:
            await workflow.sleep(max(ns, 0) / NS)
            handle.fired = not handle.period  # (the Lua code may stop it while it is pushed)
            handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))
            while handle.period:
                await workflow.sleep(handle.period / NS)
                handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))

        handle.fired = False
        handle.task = proc.spawn_bg(tick(), lambda t: None)

    def new_timer(period: bool) -> Any:
        def handler(task: LuaTask, ns: Any) -> Any:
            proc = _proc(task)
            if type(ns) is not int or (period and ns <= 0):
                raise WippyError(INVALID, "time: duration must be a positive number of nanoseconds")
            handle = TimerHandle()
            handle.channel = Channel(proc.scheduler, 1)  # type: ignore[arg-type]
            handle.period = ns if period else 0
            arm(proc, handle, ns)
            return handle, handle.channel

        return handler

    def stop(task: LuaTask, handle: Any) -> Any:
        active = not handle.task.done() and not handle.fired
        handle.task.cancel()
        handle.channel.buffer.clear()
        return (active,)

    def reset(task: LuaTask, handle: Any, ns: Any) -> Any:
        active = not handle.task.done() and not handle.fired
        handle.task.cancel()
        handle.channel.buffer.clear()
        if handle.period:
            handle.period = ns
        arm(_proc(task), handle, ns)
        return (active,)

    handlers.update({"time.sleep": sleep, "time.timer": new_timer(False), "time.ticker": new_timer(True),
                     "time.stop": stop, "time.reset": reset})

    # Activities ------------------------------------------------------------------------------
    def start_activity(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        proc = _proc(task)
        name = check_target(target)
        entry = rt.registry.get(name)
        options = activity_options(host, {} if opts is None else to_python(opts, "options"))
        context = {**proc.context, **({} if ctx is None else to_python(ctx, "context"))}
        CONTEXT.set(context)
        values = packed_args(vm, args)
        activity_meta = ((entry.meta.get("temporal") or {}).get("activity") or {}) if entry else {}
        if activity_meta.get("local"):
            return workflow.execute_local_activity(name, args=values, **options)
        return workflow.execute_activity(name, args=values, task_queue=host.task_queue, **options)

    def funcs_call(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        try:
            coro = start_activity(task, target, ctx, opts, args)
        except WippyError as err:
            return (None, to_lua(err))
        return awaiting(task, coro, lambda value: (to_lua(value, "activity result"), None))

    def funcs_async(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        proc = _proc(task)
        try:
            coro = start_activity(task, target, ctx, opts, args)
        except WippyError as err:
            return (None, to_lua(err))
        future = Future(Channel(proc.scheduler, 1))  # type: ignore[arg-type]
        make_payload = vm.make_payload

        def done(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                future.settle(False, to_lua(from_failure(exc)), make_payload)
            else:
                future.settle(True, to_lua(t.result()), make_payload)

        future.call = proc.spawn_bg(coro, done)  # type: ignore[assignment]
        return (future, future.channel)

    def future_cancel(task: LuaTask, future: Any) -> Any:
        if future.state != b"pending":
            return (False, None)
        future.state = b"canceled"
        future.value = to_lua(WippyError(CANCELED, "operation was canceled", retryable=False))
        future.channel.push(future.value)
        if future.call is not None:
            future.call.cancel()
        return (True, None)

    handlers.update({"funcs.call": funcs_call, "funcs.async": funcs_async, "future.cancel": future_cancel})

    # Processes -------------------------------------------------------------------------------
    def is_here(host_id: str) -> bool:
        return host_id == host.host_id

    def child_options(proc: TemporalProcess, options: dict[str, Any], name: str | None, seq_hint: str) -> dict[str, Any]:
        from wippy.providers.workflow.options import StartOptions

        parsed = StartOptions.parse(options)
        out: dict[str, Any] = {"id": parsed.workflow_id or name or f"{workflow.info().workflow_id}/{seq_hint}",
                               "task_queue": host.task_queue}
        if parsed.execution_timeout:
            out["execution_timeout"] = timedelta(seconds=parsed.execution_timeout)
        if parsed.run_timeout:
            out["run_timeout"] = timedelta(seconds=parsed.run_timeout)
        raw = parsed.raw
        task_timeout = seconds("task_timeout", raw.get("temporal.workflow.task_timeout", raw.get("task_timeout")))
        if task_timeout or host.task_timeout:
            out["task_timeout"] = timedelta(seconds=task_timeout or host.task_timeout)
        if parsed.memo:
            out["memo"] = parsed.memo
        pcp = {"terminate": workflow.ParentClosePolicy.TERMINATE, "abandon": workflow.ParentClosePolicy.ABANDON,
               "request_cancel": workflow.ParentClosePolicy.REQUEST_CANCEL}[parsed.parent_close_policy]
        out["parent_close_policy"] = pcp
        return out

    def spawn(task: LuaTask, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        proc = _proc(task)
        target_host = host_id.decode()
        options = {} if opts is None else to_python(opts, "options")
        context = {**proc.context, **({} if ctx is None else to_python(ctx, "context"))}
        messages = [(i[1].decode(), to_python(i[2])) for i in msgs.values()] if msgs is not None else []
        values = packed_args(vm, args)
        if not is_here(target_host):
            return awaiting(task, local("wippy.spawn", entry.decode(), target_host, mode, context, options,
                                        None if name is None else name.decode(), messages, values, proc.pid),
                            lambda pid: (pid.encode(),))
        kwargs = child_options(proc, options, None if name is None else name.decode(), str(workflow.uuid4())[:8])
        CONTEXT.set(context)

        async def start() -> Any:
            handle = await workflow.start_child_workflow(entry.decode(), args=values, **kwargs)
            for topic, payload in messages:
                await handle.signal(topic, args=[payload, proc.pid])
            return handle

        def started(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                proc.scheduler.resume(task, None, to_lua(from_failure(exc)))
                return
            handle = t.result()
            pid = make_pid(host.host_id, handle.id)

            # A child workflow always reports its end to its parent (an EXIT event), as on
            # workflow.host; a linked one that fails also takes the parent down (LINK_DOWN)
            async def watch() -> Any:
                return await handle

            def exited(w: asyncio.Task[Any]) -> None:
                exc = w.exception()
                result = {"value": None if exc else to_lua(w.result()),
                          "error": to_lua(from_failure(exc)) if exc else None}
                Process.deliver_event(proc, {"kind": "EXIT", "from": pid, "result": result})
                if mode & 2 and exc is not None and not proc.closed:
                    Process.deliver_event(proc, {"kind": "LINK_DOWN", "from": pid, "result": result})

            proc.spawn_bg(watch(), exited)
            proc.scheduler.resume(task, pid.encode())

        proc.spawn_bg(start(), started)
        return PENDING

    def exec_child(task: LuaTask, entry: bytes, host_id: bytes, ctx: Any, opts: Any, name: Any,
                   msgs: Any, args: Any) -> Any:
        proc = _proc(task)
        target_host = host_id.decode()
        options = {} if opts is None else to_python(opts, "options")
        context = {**proc.context, **({} if ctx is None else to_python(ctx, "context"))}
        values = packed_args(vm, args)
        if not is_here(target_host):
            return (None, to_lua(WippyError(INVALID, f"process.exec from a workflow needs a workflow host; "
                                                     f"{target_host} is not this worker")))
        kwargs = child_options(proc, options, None if name is None else name.decode(), str(workflow.uuid4())[:8])
        CONTEXT.set(context)
        return awaiting(task, workflow.execute_child_workflow(entry.decode(), args=values, **kwargs),
                        lambda value: (to_lua(value, "child result"), None))

    def send(task: LuaTask, dest: bytes, topic: bytes, payload: Any) -> Any:
        proc = _proc(task)
        target = dest.decode()
        value = to_python(payload, "message")
        if target.startswith("{"):
            try:
                target_host, workflow_id = parse_pid(target)
            except WippyError as err:
                return (None, to_lua(err))
            if is_here(target_host):
                handle = workflow.get_external_workflow_handle(workflow_id)
                return awaiting(task, handle.signal(topic.decode(), args=[value, proc.pid]), lambda _: (True,))
        return awaiting(task, local("wippy.send", target, topic.decode(), value, proc.pid), lambda _: (True,))

    def effect(op: str) -> Any:
        def handler(task: LuaTask, *args: Any) -> Any:
            proc = _proc(task)
            plain = [a.decode() if isinstance(a, bytes) else a for a in args]
            if op in ("register", "unregister") and workflow.unsafe.is_replaying():
                host.replayed_name_op(op, plain, proc.pid)  # names live in the runtime
            return awaiting(task, local("wippy.control", op, plain, proc.pid), lambda ok: (ok, None))

        return handler

    def lookup(task: LuaTask, name: bytes) -> Any:
        return awaiting(task, local("wippy.control", "lookup", [name.decode()], _proc(task).pid),
                        lambda pid: (pid.encode(),) if pid else (None, to_lua(WippyError("NOT_FOUND", f"no process is registered as {name.decode()!r}"))))

    handlers.update({
        "process.spawn": spawn, "process.exec": exec_child, "process.send": send,
        "process.terminate": effect("terminate"), "process.cancel": effect("cancel"),
        "process.monitor": effect("monitor"), "process.unmonitor": effect("unmonitor"),
        "process.link": effect("link"), "process.unlink": effect("unlink"),
        "process.register": effect("register"), "process.unregister": effect("unregister"),
        "process.lookup": lookup,
    })

    # The workflow module -------------------------------------------------------------------
    def info(task: LuaTask) -> Any:
        i = workflow.info()
        return (to_lua({
            "workflow_id": i.workflow_id, "run_id": i.run_id, "workflow_type": i.workflow_type,
            "task_queue": i.task_queue, "namespace": i.namespace, "attempt": i.attempt,
            "start_time": time_value(*divmod(int(i.start_time.timestamp() * NS), NS)),
            "history_length": i.get_current_history_length(), "history_size": i.get_current_history_size(),
        }),)

    def version(task: LuaTask, change_id: bytes, low: int, high: int) -> Any:
        proc = _proc(task)
        change = change_id.decode()
        if change not in proc.versions:
            proc.versions[change] = chosen_version(change, int(low), int(high))
        chosen = proc.versions[change]
        if not low <= chosen <= high:
            raise WippyError(INVALID, f"workflow.version({change!r}): this run uses version {chosen}, "
                                      f"outside the supported range {low}..{high}")
        return (chosen,)

    def attrs(task: LuaTask, search: Any, memo: Any) -> Any:
        if search is not None:
            workflow.upsert_search_attributes(typed_search_attributes(to_python(search, "search")))
        if memo is not None:
            workflow.upsert_memo(to_python(memo, "memo"))
        return (True,)

    handlers.update({
        "workflow.info": info,
        "workflow.version": version,
        "workflow.attrs": attrs,
        "workflow.history_length": lambda task: (workflow.info().get_current_history_length(),),
        "workflow.history_size": lambda task: (workflow.info().get_current_history_size(),),
    })
    return Dispatcher(handlers)
