"""How a Lua workflow's commands map onto the Temporal workflow API.

Values come from Temporal's deterministic sources (``workflow.time_ns``, ``uuid4``,
``random``); blocking commands become workflow-loop tasks (activities, timers, child
workflows, external signals) that resume the Lua task when they finish. Effects on the
rest of the runtime run as local activities, so Temporal records them once.

Each kind of command is one handler group below (a small class over the worker host and
the workflow thread's kernel); :func:`build_dispatcher` combines them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow

from wippy.actors.channel import Channel
from wippy.actors.functions import Future, check_target
from wippy.actors.host import spawn_request
from wippy.actors.process import Process
from wippy.actors.router import make_pid, parse_pid
from wippy.actors.scheduler import PENDING, Dispatcher, Handler, LuaTask
from wippy.errors import CANCELED, INVALID, NOT_FOUND, WippyError
from wippy.lua.modules.crypto import NONCE_BYTES, seal
from wippy.lua.modules.time import NS, time_value
from wippy.providers._durable.commands import (
    internal_handlers,
    packed_args,
    plain_messages,
    refusals,
)
from wippy.providers._durable.options import StartOptions
from wippy.providers.temporal.context import CONTEXT
from wippy.providers.temporal.failures import from_failure
from wippy.providers.temporal.options import activity_options, child_options
from wippy.providers.temporal.search import UNCHECKED, search_attribute_updates

if TYPE_CHECKING:
    from wippy.actors.host import SpawnRequest
    from wippy.actors.kernel import Kernel
    from wippy.providers.temporal.worker import TemporalWorkerHost
    from wippy.providers.temporal.workflow import TemporalProcess

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


def _proc(task: LuaTask) -> TemporalProcess:
    return task.actor  # type: ignore[return-value]  # only TemporalProcess actors use this dispatcher


def dispatcher_for(rt: Kernel, host: TemporalWorkerHost) -> Dispatcher:
    """The dispatcher of ``host``'s workflows in the kernel ``rt`` of a workflow thread."""
    cached = getattr(rt, "_temporal_dispatchers", {}).get(host.host_id)
    if cached is None:
        cached = build_dispatcher(rt, host)
        rt._temporal_dispatchers = {**getattr(rt, "_temporal_dispatchers", {}), host.host_id: cached}  # type: ignore[attr-defined]
    return cached


def build_dispatcher(rt: Kernel, host: TemporalWorkerHost) -> Dispatcher:
    groups = (Values, Timers, Activities, Children, Control, WorkflowModule)
    return Dispatcher(internal_handlers(rt.dispatcher.handlers), refusals(),
                      *(group(rt, host).handlers() for group in groups))


class _Group:
    """What every handler group uses: the worker host, the thread's kernel, and how to wait
    for workflow-loop work."""

    def __init__(self, rt: Kernel, host: TemporalWorkerHost) -> None:
        self.rt = rt
        self.host = host
        self.vm = rt.vm
        self.to_lua = rt.vm.to_lua
        self.to_python = rt.vm.to_python

    def handlers(self) -> dict[str, Handler]:
        raise NotImplementedError

    def failure(self, err: WippyError) -> tuple[None, Any]:
        return (None, self.to_lua(err))

    def awaiting(self, task: LuaTask, coro: Any, on_ok: Callable[[Any], tuple[Any, ...]]) -> Any:
        """Run ``coro`` on the workflow loop; resume ``task`` with ``on_ok(result)`` or
        ``(nil, err)``."""
        proc = _proc(task)
        to_lua = self.to_lua

        def done(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                proc.scheduler.resume(task, None, to_lua(from_failure(exc)))
            else:
                proc.scheduler.resume(task, *on_ok(t.result()))

        proc.spawn_bg(coro, done)
        return PENDING

    @staticmethod
    def local(name: str, *args: Any) -> Any:
        """A local activity of the worker (``wippy.send``, ``wippy.spawn``, ``wippy.control``)."""
        return workflow.execute_local_activity(name, args=list(args), start_to_close_timeout=LOCAL_TIMEOUT)


class Values(_Group):
    """Clock, UUIDs, random bytes and encryption nonces from Temporal's deterministic sources."""

    def handlers(self) -> dict[str, Handler]:
        return {
            "time.now": self.now,
            "crypto.now": self.now,
            "uuid.v4": lambda task: (str(workflow.uuid4()).encode(),),
            "uuid.v7": lambda task: (str(workflow.uuid7()).encode(),),
            "uuid.v1": lambda task: (str(workflow.uuid4()).encode(),),
            "crypto.random_bytes": lambda task, n: (workflow.random().randbytes(int(n)),),
            "crypto.encrypt": self.encrypt,
        }

    @staticmethod
    def encrypt(task: LuaTask, cipher: bytes, data: bytes, key: bytes, aad: bytes | None) -> Any:
        """Encryption with a nonce from the run's deterministic random source (seeded by
        Temporal and replayed with the history), so a replay makes the same ciphertext."""
        return (seal(cipher.decode(), data, key, aad, workflow.random().randbytes(NONCE_BYTES)),)

    @staticmethod
    def now(task: LuaTask) -> Any:
        return divmod(workflow.time_ns(), NS)


class TimerHandle:
    """A ``time.timer`` / ``time.ticker`` of a Temporal workflow: a workflow-loop task
    that sleeps on Temporal timers and pushes each tick to ``channel``."""

    __slots__ = ("task", "channel", "period", "fired")

    def __init__(self, channel: Channel, period: int) -> None:
        self.channel = channel
        self.period = period  # ns between ticks; 0 for a timer
        self.fired = False
        self.task: asyncio.Task[Any] | None = None

    def active(self) -> bool:
        return self.task is not None and not self.task.done() and not self.fired

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.channel.buffer.clear()


class Timers(_Group):
    def handlers(self) -> dict[str, Handler]:
        return {"time.sleep": self.sleep, "time.timer": self.new_timer(False), "time.ticker": self.new_timer(True),
                "time.stop": self.stop, "time.reset": self.reset}

    def sleep(self, task: LuaTask, ns: Any) -> Any:
        if type(ns) is not int:
            raise WippyError(INVALID, "time.sleep: duration must be an integer number of nanoseconds")
        if ns <= 0:
            return ()
        return self.awaiting(task, workflow.sleep(ns / NS), lambda _: ())

    def arm(self, proc: TemporalProcess, handle: TimerHandle, ns: int) -> None:
        to_lua = self.to_lua

        async def tick() -> None:
            await workflow.sleep(max(ns, 0) / NS)
            handle.fired = not handle.period  # (the Lua code may stop it while it is pushed)
            handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))
            while handle.period:
                await workflow.sleep(handle.period / NS)
                handle.channel.push(to_lua(time_value(*divmod(workflow.time_ns(), NS))))

        handle.fired = False
        handle.task = proc.spawn_bg(tick(), lambda t: None)

    def new_timer(self, period: bool) -> Handler:
        def handler(task: LuaTask, ns: Any) -> Any:
            proc = _proc(task)
            if type(ns) is not int or (period and ns <= 0):
                raise WippyError(INVALID, "time: duration must be a positive number of nanoseconds")
            handle = TimerHandle(Channel(proc.scheduler, 1), ns if period else 0)
            self.arm(proc, handle, ns)
            return handle, handle.channel

        return handler

    def stop(self, task: LuaTask, handle: TimerHandle) -> Any:
        active = handle.active()
        handle.cancel()
        return (active,)

    def reset(self, task: LuaTask, handle: TimerHandle, ns: Any) -> Any:
        active = handle.active()
        handle.cancel()
        if handle.period:
            handle.period = ns
        self.arm(_proc(task), handle, ns)
        return (active,)


class ActivityFuture(Future):
    """A ``funcs.async`` future whose activity runs as a workflow-loop task."""

    __slots__ = ("task",)

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.task: asyncio.Task[Any] | None = None


class Activities(_Group):
    """``funcs.call`` / ``funcs.async`` as Temporal activities (local ones for entries with
    ``meta.temporal.activity.local``); ``future:cancel()``."""

    def handlers(self) -> dict[str, Handler]:
        return {"funcs.call": self.call, "funcs.async": self.call_async, "future.cancel": self.cancel}

    def _start(self, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Coroutine[Any, Any, Any]:
        proc = _proc(task)
        name = check_target(target)
        entry = self.rt.registry.get(name)
        options = activity_options(None if opts is None else self.to_python(opts, "options"))
        CONTEXT.set({**proc.context, **({} if ctx is None else self.to_python(ctx, "context"))})
        values = packed_args(self.vm, args)
        activity_meta = ((entry.meta.get("temporal") or {}).get("activity") or {}) if entry else {}
        if activity_meta.get("local"):
            return workflow.execute_local_activity(name, args=values, **options)
        return workflow.execute_activity(name, args=values, task_queue=self.host.task_queue, **options)

    def call(self, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        try:
            coro = self._start(task, target, ctx, opts, args)
        except WippyError as err:
            return self.failure(err)
        to_lua = self.to_lua
        return self.awaiting(task, coro, lambda value: (to_lua(value, "activity result"), None))

    def call_async(self, task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        proc = _proc(task)
        try:
            coro = self._start(task, target, ctx, opts, args)
        except WippyError as err:
            return self.failure(err)
        future = ActivityFuture(Channel(proc.scheduler, 1))
        to_lua, make_payload = self.to_lua, self.vm.make_payload

        def done(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                future.settle(False, to_lua(from_failure(exc)), make_payload)
            else:
                future.settle(True, to_lua(t.result()), make_payload)

        future.task = proc.spawn_bg(coro, done)
        return (future, future.channel)

    def cancel(self, task: LuaTask, future: Any) -> Any:
        if not isinstance(future, ActivityFuture):
            raise WippyError(INVALID, "future:cancel: not a future of this workflow")
        if future.state != b"pending":
            return (False, None)
        future.state = b"canceled"
        future.value = self.to_lua(WippyError(CANCELED, "operation was canceled", retryable=False))
        future.channel.push(future.value)
        if future.task is not None:
            future.task.cancel()
        return (True, None)


class Children(_Group):
    """``process.spawn`` / ``process.exec``: on this worker a Temporal child workflow; a
    spawn on another host goes through the ``wippy.spawn`` local activity."""

    def handlers(self) -> dict[str, Handler]:
        return {"process.spawn": self.spawn, "process.exec": self.exec}

    def _request(self, proc: TemporalProcess, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
                 name: Any, msgs: Any, args: Any) -> tuple[str, SpawnRequest]:
        return spawn_request(self.vm, entry, host_id, mode, ctx, opts, name, msgs, args,
                             parent=proc.pid, context=proc.context)

    def _child_options(self, request: SpawnRequest, queue: str) -> dict[str, Any]:
        # the uuid is drawn even when unused: it advances the run's deterministic random
        # source, which later uuid.v4 calls of the run (replayed from history) depend on
        hint = str(workflow.uuid4())[:8]
        options = StartOptions.parse(request.options)
        workflow_id = options.workflow_id or request.name or f"{workflow.info().workflow_id}/{hint}"
        return {**child_options(self.host, options, workflow_id), "task_queue": queue}

    def child_queue(self, target_host: str) -> tuple[str, str] | None:
        """Where a workflow's spawn of ``target_host`` starts a child workflow: ``(the host
        of the child's PID, the task queue)``; None for a host of another kind (a process
        host: the spawn goes through ``wippy.spawn``). As upstream, a name that is no entry
        is a task queue (a worker of this runtime polling it gives the PID its host)."""
        host = self.host
        if target_host in (host.host_id, host.queue_name, host.task_queue):
            return host.host_id, host.task_queue
        workers = [h for h in host.kernel.router.hosts.values() if h.kind == host.kind]
        for worker in workers:
            if target_host == worker.host_id:
                return worker.host_id, getattr(worker, "task_queue", target_host)
        if self.rt.registry.get(target_host) is not None:
            return None  # another kind of host (or not started: wippy.spawn says which)
        for worker in workers:
            if target_host in (getattr(worker, "queue_name", None), getattr(worker, "task_queue", None)):
                return worker.host_id, getattr(worker, "task_queue", target_host)
        return target_host, target_host

    def spawn(self, task: LuaTask, entry: bytes, host_id: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        proc = _proc(task)
        try:
            target_host, request = self._request(proc, entry, host_id, mode, ctx, opts, name, msgs, args)
            messages = plain_messages(self.vm, request.messages)
            values = packed_args(self.vm, request.args)
            where = self.child_queue(target_host)
            if where is None:
                return self.awaiting(task, self.local(
                    "wippy.spawn", request.entry_id, target_host, mode, request.context, request.options,
                    request.name, messages, values, proc.pid), lambda pid: (pid.encode(),))
            child_host, queue = where
            kwargs = self._child_options(request, queue)
        except WippyError as err:
            return self.failure(err)
        CONTEXT.set(request.context)

        async def start() -> Any:
            handle = await workflow.start_child_workflow(request.entry_id, args=values, **kwargs)
            for topic, payload in messages:
                await handle.signal(topic, args=[payload, proc.pid])
            return handle

        def started(t: asyncio.Task[Any]) -> None:
            exc = t.exception()
            if exc is not None:
                proc.scheduler.resume(task, None, self.to_lua(from_failure(exc)))
                return
            handle = t.result()
            pid = make_pid(child_host, handle.id)
            self._watch_child(proc, handle, pid, bool(mode & 2))
            proc.scheduler.resume(task, pid.encode())

        proc.spawn_bg(start(), started)
        return PENDING

    def _watch_child(self, proc: TemporalProcess, handle: Any, pid: str, linked: bool) -> None:
        """A child workflow always reports its end to its parent (an EXIT event), as on
        workflow.host; a linked one that fails also takes the parent down (LINK_DOWN)."""
        to_lua = self.to_lua

        async def watch() -> Any:
            return await handle

        def exited(w: asyncio.Task[Any]) -> None:
            exc = w.exception()
            result = {"value": None if exc else to_lua(w.result()),
                      "error": to_lua(from_failure(exc)) if exc else None}
            Process.deliver_event(proc, {"kind": "EXIT", "from": pid, "result": result})
            if linked and exc is not None and not proc.closed:
                Process.deliver_event(proc, {"kind": "LINK_DOWN", "from": pid, "result": result})

        proc.spawn_bg(watch(), exited)

    def exec(self, task: LuaTask, entry: bytes, host_id: bytes, ctx: Any, opts: Any, name: Any,
             msgs: Any, args: Any) -> Any:
        proc = _proc(task)
        try:
            target_host, request = self._request(proc, entry, host_id, 0, ctx, opts, name, msgs, args)
            where = self.child_queue(target_host)
            if where is None:
                raise WippyError(INVALID, f"process.exec from a workflow needs a workflow host or task "
                                          f"queue; {target_host} is neither")
            values = packed_args(self.vm, request.args)
            kwargs = self._child_options(request, where[1])
        except WippyError as err:
            return self.failure(err)
        CONTEXT.set(request.context)
        to_lua = self.to_lua
        return self.awaiting(task, workflow.execute_child_workflow(request.entry_id, args=values, **kwargs),
                             lambda value: (to_lua(value, "child result"), None))


class Control(_Group):
    """Messages, control of other processes and names: signals to workflows of this
    worker, local activities for everything else. (Monitors and links are refused in
    workflows, see :func:`wippy.providers._durable.commands.refusals`.)"""

    def handlers(self) -> dict[str, Handler]:
        effect = self.effect
        return {
            "process.send": self.send, "process.lookup": self.lookup,
            "process.terminate": effect("terminate"), "process.cancel": effect("cancel"),
            "process.register": effect("register"), "process.unregister": effect("unregister"),
        }

    def send(self, task: LuaTask, dest: bytes, topic: bytes, payload: Any) -> Any:
        """To a workflow of this worker: a Temporal signal (the task waits for the server).
        To any other PID: handed to the runtime at once and not waited for, like upstream's
        send in a side effect -- done when the code runs live, skipped when it replays, so
        at least once (a failed workflow task runs it again), and in order. To a name: the
        name is looked up in the runtime, through the ``wippy.send`` local activity, whose
        recorded outcome (an unknown name is NotFound) a replay reads back."""
        proc = _proc(task)
        target = dest.decode()
        value = self.to_python(payload, "message")
        if not target.startswith("{"):
            return self.awaiting(task, self.local("wippy.send", target, topic.decode(), value, proc.pid),
                                 lambda _: (True,))
        try:
            target_host, workflow_id = parse_pid(target)
        except WippyError as err:
            return self.failure(err)
        if target_host == self.host.host_id:
            handle = workflow.get_external_workflow_handle(workflow_id)
            return self.awaiting(task, handle.signal(topic.decode(), args=[value, proc.pid]), lambda _: (True,))
        if not workflow.unsafe.is_replaying():
            self.host.send_from_workflow(target, topic.decode(), value, proc.pid)
        return (True,)

    def effect(self, op: str) -> Handler:
        host = self.host

        def handler(task: LuaTask, *args: Any) -> Any:
            proc = _proc(task)
            plain = [a.decode() if isinstance(a, bytes) else a for a in args]
            if op in ("register", "unregister") and workflow.unsafe.is_replaying():
                host.replayed_name_op(op, plain, proc.pid)  # names live in the runtime
            return self.awaiting(task, self.local("wippy.control", op, plain, proc.pid), lambda ok: (ok, None))

        return handler

    def lookup(self, task: LuaTask, name: bytes) -> Any:
        text = name.decode()
        missing = WippyError(NOT_FOUND, f"no process is registered as {text!r}")
        return self.awaiting(task, self.local("wippy.control", "lookup", [text], _proc(task).pid),
                             lambda pid: (pid.encode(),) if pid else self.failure(missing))


class WorkflowModule(_Group):
    """The ``workflow`` module: run info, versions (as patches), search attributes, memo."""

    def handlers(self) -> dict[str, Handler]:
        return {
            "workflow.info": self.info,
            "workflow.version": self.version,
            "workflow.attrs": self.attrs,
            "workflow.history_length": lambda task: (workflow.info().get_current_history_length(),),
            "workflow.history_size": lambda task: (workflow.info().get_current_history_size(),),
        }

    def info(self, task: LuaTask) -> Any:
        i = workflow.info()
        return (self.to_lua({
            "workflow_id": i.workflow_id, "run_id": i.run_id, "workflow_type": i.workflow_type,
            "task_queue": i.task_queue, "namespace": i.namespace, "attempt": i.attempt,
            "start_time": time_value(*divmod(int(i.start_time.timestamp() * NS), NS)),
            "history_length": i.get_current_history_length(), "history_size": i.get_current_history_size(),
        }),)

    def version(self, task: LuaTask, change_id: bytes, low: int, high: int) -> Any:
        proc = _proc(task)
        change = change_id.decode()
        if change not in proc.versions:
            proc.versions[change] = chosen_version(change, int(low), int(high))
        chosen = proc.versions[change]
        if not low <= chosen <= high:
            raise WippyError(INVALID, f"workflow.version({change!r}): this run uses version {chosen}, "
                                      f"outside the supported range {low}..{high}")
        return (chosen,)

    def attrs(self, task: LuaTask, search: Any, memo: Any) -> Any:
        """Upsert search attributes and memo; ``(true)``, or ``(nil, Invalid)`` naming each
        search attribute the namespace does not have or whose value is not of its type
        (then nothing is upserted). The types come from the ``wippy.search_types`` local
        activity the first time a run names an attribute, so a replay decides the same."""
        proc = _proc(task)
        values = {} if search is None else self.to_python(search, "search")
        memo_values = None if memo is None else self.to_python(memo, "memo")
        if not isinstance(values, dict):  # (a Lua list)
            return self.failure(WippyError(INVALID, "workflow.attrs: search must be a table of name = value"))

        def finish(types: dict[str, str | None] | None, asked: list[str]) -> tuple[Any, ...]:
            proc.search_types.update({name: UNCHECKED for name in asked} if types is None else types)
            try:
                updates = search_attribute_updates(values, proc.search_types, workflow.info().namespace,
                                                   "workflow.attrs")
            except WippyError as err:
                return self.failure(err)
            if updates:
                workflow.upsert_search_attributes(updates)
            if memo_values is not None:
                workflow.upsert_memo(memo_values)
            return (True,)

        unknown = sorted(str(name) for name in values if isinstance(name, str) and name not in proc.search_types)
        if not unknown:
            return finish({}, [])
        return self.awaiting(task, self.local("wippy.search_types", unknown), lambda types: finish(types, unknown))
