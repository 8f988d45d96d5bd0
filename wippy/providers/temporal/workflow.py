"""Lua workflows inside Temporal workflow runs.

One dynamic Temporal workflow class per ``temporal.worker`` runs every ``workflow.lua``
entry registered to it (workflow type = entry ID). The Lua code runs on Temporal's
deterministic event loop, in the worker's single workflow thread, in a Lua state of that
thread's own; Temporal's history and replay give durability, so nothing here records
anything: each command maps onto the SDK (activities, timers, child workflows, signals,
patches) and Temporal replays it.

Effects on the rest of the runtime (messages to ordinary processes, spawns on other
hosts, the name registry) go through local activities, so they happen once and are
replayed from history.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import (
    RawValue,
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from wippy.actors.channel import Channel
from wippy.actors.process import Process
from wippy.actors.scheduler import PENDING, Dispatcher, LuaTask
from wippy.errors import CANCELED, INVALID, WippyError
from wippy.host.functions import Future, check_target
from wippy.host.router import make_pid, parse_pid
from wippy.lua.modules.time import NS, time_value
from wippy.providers.temporal.context import CONTEXT
from wippy.providers.temporal.failures import from_failure, to_application_error
from wippy.providers.workflow.dispatch import INTERNAL_COMMANDS, packed_args
from wippy.providers.workflow.options import seconds

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime
    from wippy.providers.temporal.worker import TemporalWorkerHost

DEFAULT_ACTIVITY_TIMEOUT = timedelta(minutes=10)
LOCAL_TIMEOUT = timedelta(minutes=1)
EVENT_SIGNAL = "__wippy_event"
CANCEL_SIGNAL = "__wippy_cancel"

_thread = threading.local()


def thread_runtime(host: TemporalWorkerHost) -> Runtime:
    """The Lua runtime of the current workflow thread (one Lua state per thread)."""
    from wippy.host.runtime import Runtime

    rt = getattr(_thread, "runtimes", {}).get(host.host_id)
    if rt is None:
        rt = Runtime(host.runtime.registry)
        _thread.runtimes = {**getattr(_thread, "runtimes", {}), host.host_id: rt}
    return rt


class LoopQueue:
    """Scheduler interface for one Lua workflow: steps run on Temporal's workflow loop."""

    __slots__ = ("proc", "queue", "scheduled")

    def __init__(self, proc: TemporalProcess) -> None:
        self.proc = proc
        self.queue: deque[tuple[LuaTask, Any]] = deque()
        self.scheduled = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_event_loop()

    def start(self, task: LuaTask) -> None:
        self._add(task, None)

    def resume(self, task: LuaTask, *values: Any) -> None:
        self._add(task, (True, *values))

    def throw(self, task: LuaTask, error: Any) -> None:
        if isinstance(error, WippyError):
            error = self.proc.runtime.vm.to_lua(error)
        self._add(task, (False, error))

    def _add(self, task: LuaTask, payload: Any) -> None:
        self.queue.append((task, payload))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        step = self.proc.runtime.scheduler.step
        while self.queue:
            task, payload = self.queue.popleft()
            if task.finished:
                continue
            left = step(task, payload)
            if left is not None:
                self.queue.append((task, left))


class _HostView:
    """What a Process needs of its host, for a workflow living in a worker thread."""

    def __init__(self, runtime: Runtime, host_id: str, dispatcher: Dispatcher) -> None:
        self.runtime = runtime
        self.host_id = host_id
        self.dispatcher = dispatcher

    def forget(self, proc: Any) -> None:
        pass


class TemporalProcess(Process):
    """The Lua side of one Temporal workflow run."""

    __slots__ = ("outcome", "bg", "versions", "worker")

    def __init__(self, worker: TemporalWorkerHost, view: _HostView, workflow_id: str, entry_id: str,
                 context: dict[str, Any]) -> None:
        super().__init__(view, make_pid(view.host_id, workflow_id), entry_id, b"workflow", context)  # type: ignore[arg-type]
        self.worker = worker
        self.scheduler = LoopQueue(self)  # type: ignore[assignment]
        self.inbox.scheduler = self.scheduler
        self.outcome: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
        self.bg: set[asyncio.Task[Any]] = set()
        self.versions: dict[str, int] = {}

    def spawn_bg(self, coro: Any, on_done: Any) -> asyncio.Task[Any]:
        """A workflow-loop task owned by this process (cancelled when it ends)."""
        task = asyncio.get_event_loop().create_task(coro)
        self.bg.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.bg.discard(t)
            if not t.cancelled() and not self.closed:
                on_done(t)

        task.add_done_callback(done)
        return task

    def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
        if self.outcome.done():
            return
        vm = self.runtime.vm
        if ok and values[0]:
            self.outcome.set_result(vm.to_python(values[1][1], "result"))
        else:
            err = values[1] if ok else values[0]
            self.outcome.set_exception(to_application_error(vm.to_python(err, "error")))
        self.close()
        for task in list(self.bg):
            task.cancel()

    def terminate(self, error: Any) -> None:
        self.main_finished(False, (error,))


WORKERS: dict[str, TemporalWorkerHost] = {}
"""Started worker hosts by task queue: how a workflow run finds its project."""


@workflow.defn(dynamic=True, sandboxed=False)
class LuaWorkflow:
    """Runs the ``workflow.lua`` entry named by the workflow type."""

    def __init__(self) -> None:
        self.proc: TemporalProcess | None = None
        self.early: list[tuple[str, Sequence[RawValue]]] = []

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        info = workflow.info()
        host = WORKERS.get(info.task_queue)
        if host is None:
            raise RuntimeError(f"no wippy worker for task queue {info.task_queue}")  # retried by Temporal
        rt = thread_runtime(host)
        entry = rt.registry.get(info.workflow_type)
        if entry is None or entry.kind != "workflow.lua":
            raise to_application_error(WippyError(
                "NOT_FOUND", f"workflow type {info.workflow_type} is not a workflow.lua entry of this project"))
        conv = workflow.payload_converter()
        values = [conv.from_payload(a.payload) for a in args]
        view = _HostView(rt, host.host_id, dispatcher_for(rt, host))
        proc = TemporalProcess(host, view, info.workflow_id, entry.id, dict(CONTEXT.get() or {}))
        self.proc = proc
        for name, sargs in self.early:
            self._deliver(name, sargs)
        self.early.clear()
        task = proc.spawn_task(rt.vm.rt.entry_task, entry.id.encode(), b"workflow", rt.lua_args(values))
        proc.scheduler.start(task)
        return await proc.outcome

    @workflow.signal(dynamic=True)
    def signal(self, name: str, args: Sequence[RawValue]) -> None:
        if self.proc is None:
            self.early.append((name, args))
        else:
            self._deliver(name, args)

    def _deliver(self, name: str, args: Sequence[RawValue]) -> None:
        proc = self.proc
        assert proc is not None
        conv = workflow.payload_converter()
        values = [conv.from_payload(a.payload) for a in args]
        vm = proc.runtime.vm
        if name == EVENT_SIGNAL:
            event = dict(values[0])
            result = event.get("result")
            if result is not None:
                event["result"] = {"value": vm.to_lua(result.get("value")), "error": vm.to_lua(result.get("error"))}
            Process.deliver_event(proc, event)
        elif name == CANCEL_SIGNAL:
            Process.deliver_event(proc, {"kind": "CANCEL", **dict(values[0] if values else {})})
        else:
            payload = values[0] if values else None
            sender = values[1] if len(values) > 1 else None
            Process.deliver(proc, name.encode(), vm.to_lua(payload, "signal"), sender.encode() if sender else None)


# Commands ------------------------------------------------------------------------------------
def _proc(task: LuaTask) -> TemporalProcess:
    actor = task.actor
    assert isinstance(actor, TemporalProcess)
    return actor


def dispatcher_for(rt: Runtime, host: TemporalWorkerHost) -> Dispatcher:
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


def build_dispatcher(rt: Runtime, host: TemporalWorkerHost) -> Dispatcher:
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
        __slots__ = ("task", "channel", "period")

    def sleep(task: LuaTask, ns: Any) -> Any:
        if type(ns) is not int:
            raise WippyError(INVALID, "time.sleep: duration must be an integer number of nanoseconds")
        if ns <= 0:
            return ()
        return awaiting(task, workflow.sleep(ns / NS), lambda _: ())

    def arm(proc: TemporalProcess, handle: Any, ns: int) -> None:
        async def tick() -> None:
            await workflow.sleep(max(ns, 0) / NS)
            handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))
            while handle.period:
                await workflow.sleep(handle.period / NS)
                handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))

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
        active = not handle.task.done()
        handle.task.cancel()
        handle.channel.buffer.clear()
        return (active,)

    def reset(task: LuaTask, handle: Any, ns: Any) -> Any:
        active = not handle.task.done()
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
        make_payload = vm.rt.make_payload

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
            if mode & 1:
                async def watch() -> Any:
                    return await handle

                def exited(w: asyncio.Task[Any]) -> None:
                    exc = w.exception()
                    result = {"value": None if exc else to_lua(w.result()),
                              "error": to_lua(from_failure(exc)) if exc else None}
                    Process.deliver_event(proc, {"kind": "EXIT", "from": pid, "result": result})

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
            proc.versions[change] = high if workflow.patched(change) else low
        return (proc.versions[change],)

    def attrs(task: LuaTask, search: Any, memo: Any) -> Any:
        if search is not None:
            pairs = []
            for key, value in to_python(search, "search").items():
                if isinstance(value, bool):
                    pairs.append(SearchAttributePair(SearchAttributeKey.for_bool(key), value))
                elif isinstance(value, int):
                    pairs.append(SearchAttributePair(SearchAttributeKey.for_int(key), value))
                elif isinstance(value, float):
                    pairs.append(SearchAttributePair(SearchAttributeKey.for_float(key), value))
                else:
                    pairs.append(SearchAttributePair(SearchAttributeKey.for_keyword(key), str(value)))
            workflow.upsert_search_attributes(TypedSearchAttributes(pairs))
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
