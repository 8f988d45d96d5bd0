"""Handlers of the ``process`` commands. Routing goes through the router, so the same
handlers serve processes on every host and function-call frames; a durable provider
overrides the ones whose effects it must record.

Every actor that runs Lua is a :class:`Process` (a function call is a frame, see
:class:`~wippy.actors.functions.FunctionCall`), so each handler works for all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from wippy.actors.host import spawn_request
from wippy.actors.process import Process
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.durations import parse_duration
from wippy.errors import INVALID, NOT_FOUND, UNAVAILABLE, WippyError

if TYPE_CHECKING:
    from wippy.actors.host import Host
    from wippy.actors.kernel import Kernel
    from wippy.actors.table import ProcessTable

DEFAULT_CANCEL_DEADLINE = 5.0  # seconds a canceled process gets before it is terminated

Handlers = dict[str, Any]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _me(task: LuaTask) -> Process:
    actor = task.actor
    assert isinstance(actor, Process)
    return actor


def _not_found(pid: str) -> WippyError:
    return WippyError(NOT_FOUND, f"process {pid} not found", retryable=False)


def commands(kernel: Kernel) -> Handlers:
    return {**_identity(kernel), **_messaging(kernel), **_spawning(kernel), **_control(kernel),
            **_watching(kernel), **_channels(kernel), **_names(kernel)}


def _fail(kernel: Kernel, err: WippyError) -> tuple[None, Any]:
    return (None, kernel.vm.to_lua(err))


def _after_barrier(kernel: Kernel, task: LuaTask, host: Host | None, result: tuple[Any, ...]) -> Any:
    """Answer ``result`` once ``host`` has what it was handed on disk (durable hosts)."""
    barrier = host.barrier() if host is not None else None
    if barrier is None or barrier.done() and barrier.exception() is None:
        return result

    def durable(f: Any) -> None:
        exc = f.exception()
        if exc is not None:
            err = exc if isinstance(exc, WippyError) else WippyError(UNAVAILABLE, str(exc))
            task.actor.scheduler.resume(task, None, kernel.vm.to_lua(err))
        else:
            task.actor.scheduler.resume(task, *result)

    barrier.add_done_callback(durable)
    return PENDING


def _identity(kernel: Kernel) -> Handlers:
    def pid(task: LuaTask) -> Any:
        return (_me(task).own_pid().encode(),)

    def entry_id(task: LuaTask) -> Any:
        return (_me(task).entry_id.encode(),)

    def get_options(task: LuaTask) -> Any:
        return (kernel.vm.to_lua({"trap_links": _me(task).trap_links}),)

    def set_options(task: LuaTask, trap_links: Any) -> Any:
        if trap_links is not None:
            _me(task).trap_links = bool(trap_links)
        return (True,)

    def upgrade(task: LuaTask, entry: Any, args: Any) -> Any:
        me = _me(task)
        entry_id = me.entry_id if entry is None else entry.decode()
        found = kernel.registry.get(entry_id)
        if found is None or found.kind != "process.lua" or me.profile != b"process":
            raise WippyError(NOT_FOUND if found is None else INVALID,
                             f"process.upgrade: {entry_id} is not a process.lua entry", retryable=False)
        me.restart_with(entry_id, args)
        return PENDING

    return {"process.pid": pid, "process.id": entry_id, "process.get_options": get_options,
            "process.set_options": set_options, "process.upgrade": upgrade}


def _messaging(kernel: Kernel) -> Handlers:
    router, scheduler = kernel.router, kernel.scheduler

    def send(task: LuaTask, dest: bytes, topic: bytes, payload: Any) -> Any:
        host = None
        try:
            target, host = router.route(dest)
            if host is None or not host.deliver(target, topic.decode(), payload, _me(task).own_pid()):
                raise _not_found(target)
        except WippyError as err:
            return _fail(kernel, err)
        return _after_barrier(kernel, task, host, (True,))

    def direct_send(dest: bytes, topic: bytes, message: Any) -> Any:
        """``process.send`` as a direct call from Lua, where nothing can block: a sender
        on the kernel's own dispatcher to a host with instant delivery, handing over the
        message it built (this fills in the sender). ``false`` sends the Lua side down the
        command path (``send``) instead."""
        task = scheduler.current
        if task is None or task.actor.dispatcher.handlers.get(b"process.send") is not send:
            return False
        try:
            target, host = router.route(dest)
            if host is None:
                raise _not_found(target)
            if not host.instant_delivery or scheduler.used_up():
                return False
            me = _me(task)
            message[b"_f"] = me._pid_bytes or me.own_pid().encode()
            if not cast("ProcessTable[Any]", host).deliver_message(target, topic, message):
                raise _not_found(target)
        except WippyError as err:
            return _fail(kernel, err)
        return True

    kernel.vm.rt[b"direct_send"] = direct_send
    return {"process.send": send}


def _spawning(kernel: Kernel) -> Handlers:
    router, vm, scheduler = kernel.router, kernel.vm, kernel.scheduler

    def spawn(task: LuaTask, entry: bytes, host: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        me = _me(task)
        try:
            parent = me.own_pid() if mode or msgs is not None else me.pid
            host_id, req = spawn_request(vm, entry, host, mode, ctx, opts, name, msgs, args,
                                         parent=parent, context=me.context)
            target = router.host_for_spawn(host_id, kernel.registry)
            child = target.spawn(req)
        except WippyError as err:
            return _fail(kernel, err)
        if req.monitor:
            if me.monitoring is None:
                me.monitoring = set()
            me.monitoring.add(child)
        return _after_barrier(kernel, task, target, (child.encode(),))

    def exec_(task: LuaTask, entry: bytes, host: bytes, ctx: Any, opts: Any, name: Any, msgs: Any,
              args: Any) -> Any:
        me = _me(task)
        try:
            sender = me.own_pid() if msgs is not None else me.pid
            host_id, req = spawn_request(vm, entry, host, 0, ctx, opts, name, msgs, args,
                                         parent=sender, context=me.context)
            target = router.host_for_spawn(host_id, kernel.registry)
        except WippyError as err:
            return _fail(kernel, err)
        child: list[str] = []

        def on_exit(event: dict[str, Any]) -> None:
            router.drop_callback(watcher)
            me.discard_cleanup(cleanup_key)
            result = event["result"]
            scheduler.resume(task, result["value"], result["error"])

        watcher = router.callback_pid(on_exit)
        # The watcher is the child's monitoring "parent"; with_message messages still come
        # from the caller, so they are sent here, before the child's first step.
        messages = req.messages
        req.parent, req.monitor, req.messages = watcher, True, []
        try:
            child.append(target.spawn(req))
        except WippyError as err:
            router.drop_callback(watcher)
            return _fail(kernel, err)
        for topic, payload in messages:
            router.send(child[0], topic, payload, sender)

        def caller_gone() -> None:  # the exec'd process dies with its caller
            router.drop_callback(watcher)
            host = router.host_of(child[0])
            if host is not None:
                host.terminate(child[0], None)

        cleanup_key = me.on_close(caller_gone)
        return PENDING

    return {"process.spawn": spawn, "process.exec": exec_}


def _control(kernel: Kernel) -> Handlers:
    router = kernel.router

    def terminate(task: LuaTask, dest: bytes) -> Any:
        try:
            target = router.resolve(dest.decode())
            host = router.host_of(target)
            if host is None or not host.terminate(target, None):
                raise _not_found(target)
        except WippyError as err:
            return _fail(kernel, err)
        return (True,)

    def cancel(task: LuaTask, dest: bytes, deadline: Any, reason: Any) -> Any:
        try:
            target = router.resolve(dest.decode())
            if deadline is None:
                seconds = DEFAULT_CANCEL_DEADLINE
            elif isinstance(deadline, bytes):
                seconds = parse_duration(deadline.decode())
            else:
                seconds = float(deadline) / 1000
            host = router.host_of(target)
            why = _text(reason) if reason is not None else ""
            if host is None or not host.cancel(target, _me(task).own_pid(), why, seconds):
                raise _not_found(target)
        except WippyError as err:
            return _fail(kernel, err)
        return (True,)

    return {"process.terminate": terminate, "process.cancel": cancel}


def _watching(kernel: Kernel) -> Handlers:
    router, to_lua = kernel.router, kernel.vm.to_lua

    def monitor(task: LuaTask, dest: bytes) -> Any:
        me = _me(task)
        try:
            target = router.resolve(dest.decode())
        except WippyError as err:
            return _fail(kernel, err)
        if me.monitoring is None:
            me.monitoring = set()
        me.monitoring.add(target)
        if not router.watch(target, me.own_pid(), link=False):  # already gone: EXIT right away
            error = to_lua(_not_found(target))
            me.deliver_event({"kind": "EXIT", "from": target, "result": {"value": None, "error": error}})
        return (True,)

    def unwatch(task: LuaTask, dest: bytes, link: bool) -> Any:
        """Undo a monitor or a link, and drop its event if one is already queued."""
        me = _me(task)
        try:
            target = router.resolve(dest.decode())
        except WippyError as err:
            return _fail(kernel, err)
        if me.pid is not None:
            router.unwatch(target, me.pid, link=link)
        watched = me.links if link else me.monitoring
        if watched is not None:
            watched.discard(target)
        _drop_events(me, b"pid.link.down" if link else b"pid.exit", target)
        return (True,)

    def unmonitor(task: LuaTask, dest: bytes) -> Any:
        return unwatch(task, dest, link=False)

    def link(task: LuaTask, dest: bytes) -> Any:
        me = _me(task)
        try:
            target = router.resolve(dest.decode())
            if not router.watch(target, me.own_pid(), link=True):
                raise _not_found(target)
        except WippyError as err:
            return _fail(kernel, err)
        if me.links is None:
            me.links = set()
        me.links.add(target)
        return (True,)

    def unlink(task: LuaTask, dest: bytes) -> Any:
        return unwatch(task, dest, link=True)

    return {"process.monitor": monitor, "process.unmonitor": unmonitor, "process.link": link,
            "process.unlink": unlink}


def _drop_events(me: Process, kind: bytes, sender: str) -> None:
    """Once unmonitored/unlinked, queued events from that process are withdrawn too."""
    events = me._events
    if events is None or not events.buffer:
        return
    s = sender.encode()
    kept = [ev for ev in events.buffer if not (ev[b"kind"] == kind and ev[b"from"] == s)]
    events.buffer.clear()
    events.buffer.extend(kept)


def _channels(kernel: Kernel) -> Handlers:
    def inbox(task: LuaTask) -> Any:
        return (_me(task).inbox,)

    def events(task: LuaTask) -> Any:
        return (_me(task).events,)

    def listen(task: LuaTask, topic: bytes) -> Any:
        return (_me(task).listen(topic),)

    def unlisten(task: LuaTask, ch: Any) -> Any:
        if _me(task).unlisten(ch):
            return (True,)
        return _fail(kernel, WippyError(NOT_FOUND, "process.unlisten: that channel is not a topic listener"))

    return {"process.inbox": inbox, "process.events": events, "process.listen": listen,
            "process.unlisten": unlisten}


def _names(kernel: Kernel) -> Handlers:
    router = kernel.router

    def register(task: LuaTask, name: bytes, target: Any) -> Any:
        try:
            if target is None:
                owner = _me(task).own_pid()
            else:  # a name for a PID that never exits would never be released
                owner = router.resolve(target.decode()) if target.startswith(b"{") else ""
                if not owner:
                    raise WippyError(INVALID, f"process.registry.register: {_text(target)!r} is not a PID",
                                     retryable=False)
                host = router.host_of(owner)
                if host is None or not host.alive(owner):
                    raise _not_found(owner)
            router.register(name.decode(), owner)
        except WippyError as err:
            return _fail(kernel, err)
        return (True,)

    def lookup(task: LuaTask, name: bytes) -> Any:
        found = router.names.get(name.decode())
        if found is None:
            return _fail(kernel, WippyError(NOT_FOUND, f"no process is registered as {name.decode()!r}",
                                            retryable=False))
        return (found.encode(),)

    def unregister(task: LuaTask, name: bytes) -> Any:
        return (router.unregister(name.decode()),)

    return {"process.register": register, "process.lookup": lookup, "process.unregister": unregister}
