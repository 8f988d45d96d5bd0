"""Handlers of the ``process`` commands. Routing goes through the runtime's router, so the
same handlers serve processes on every host; a durable provider overrides the ones whose
effects it must record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.host import SpawnRequest
from wippy.actors.process import Process
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.durations import parse_duration
from wippy.errors import INVALID, NOT_FOUND, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel

GLOBAL = True
DEFAULT_CANCEL_DEADLINE = 5.0  # seconds a canceled process gets before it is terminated


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _caller(task: LuaTask, what: str) -> Process:
    actor = task.actor
    if not isinstance(actor, Process):
        raise WippyError(INVALID, f"process.{what} is only available inside a process", retryable=False)
    return actor


def commands(kernel: Kernel) -> dict[str, Any]:
    router = kernel.router
    vm = kernel.vm
    to_lua, to_python = vm.to_lua, vm.to_python
    scheduler = kernel.scheduler

    def fail(err: WippyError) -> tuple[None, Any]:
        return (None, to_lua(err))

    def pid(task: LuaTask) -> Any:
        actor = task.actor
        return (actor._pid_bytes,) if isinstance(actor, Process) else (None,)

    def frame_id(task: LuaTask) -> Any:
        actor = task.actor
        if isinstance(actor, Process):
            return (actor._pid_bytes,)
        return (f"{actor.describe()}#{id(actor):x}".encode(),)

    def after_barrier(task: LuaTask, host: Any, result: tuple[Any, ...]) -> Any:
        """Answer ``result`` once ``host`` has what it was handed on disk (durable hosts)."""
        barrier = host.barrier() if host is not None else None
        if barrier is None or barrier.done() and barrier.exception() is None:
            return result

        def durable(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                err = exc if isinstance(exc, WippyError) else WippyError("UNAVAILABLE", str(exc))
                task.actor.scheduler.resume(task, None, to_lua(err))
            else:
                task.actor.scheduler.resume(task, *result)

        barrier.add_done_callback(durable)
        return PENDING

    def send(task: LuaTask, dest: bytes, topic: bytes, payload: Any) -> Any:
        actor = task.actor
        sender = actor.pid if isinstance(actor, Process) else None
        try:
            target = router.resolve(dest.decode())
            host = router.host_of(target)
            if host is not None:
                host.deliver(target, topic.decode(), payload, sender)
        except WippyError as err:
            return fail(err)
        return after_barrier(task, host, (True,))

    # Spawning ------------------------------------------------------------------------------
    def request(task: LuaTask, entry: bytes, ctx: Any, opts: Any, name: Any, msgs: Any, args: Any) -> SpawnRequest:
        context = dict(task.actor.context)
        if ctx is not None:
            context.update(to_python(ctx, "context"))
        messages = []
        if msgs is not None:
            for item in msgs.values():
                messages.append((_text(item[1]), item[2]))
        actor = task.actor
        return SpawnRequest(
            entry_id=entry.decode(),
            args=args,
            parent=actor.pid if isinstance(actor, Process) else None,
            context=context,
            options={} if opts is None else to_python(opts, "options"),
            name=None if name is None else name.decode(),
            messages=messages,
        )

    def host_for(host: bytes) -> Any:
        return router.host_for_spawn(host.decode(), kernel.registry)

    def spawn(task: LuaTask, entry: bytes, host: bytes, mode: int, ctx: Any, opts: Any,
              name: Any, msgs: Any, args: Any) -> Any:
        try:
            req = request(task, entry, ctx, opts, name, msgs, args)
            req.monitor, req.link = bool(mode & 1), bool(mode & 2)
            if (req.monitor or req.link) and req.parent is None:
                raise WippyError(INVALID, "spawn_monitored/spawn_linked need a calling process to notify", retryable=False)
            target = host_for(host)
            child = target.spawn(req)
        except WippyError as err:
            return fail(err)
        if req.monitor:
            caller = task.actor
            if caller.monitoring is None:
                caller.monitoring = set()
            caller.monitoring.add(child)
        return after_barrier(task, target, (child.encode(),))

    def exec_(task: LuaTask, entry: bytes, host: bytes, ctx: Any, opts: Any, name: Any, msgs: Any, args: Any) -> Any:
        actor = task.actor
        try:
            req = request(task, entry, ctx, opts, name, msgs, args)
            target = host_for(host)
        except WippyError as err:
            return fail(err)
        child: list[str] = []

        def on_exit(event: dict[str, Any]) -> None:
            router.drop_callback(watcher)
            actor.discard_cleanup(cleanup_key)
            result = event["result"]
            scheduler.resume(task, result["value"], result["error"])

        watcher = router.callback_pid(on_exit)
        # The watcher is the child's monitoring "parent"; with_message messages still come
        # from the caller, so they are sent here, before the child's first step.
        sender, messages = req.parent, req.messages
        req.parent, req.monitor, req.messages = watcher, True, []
        try:
            child.append(target.spawn(req))
        except WippyError as err:
            router.drop_callback(watcher)
            return fail(err)
        for topic, payload in messages:
            router.send(child[0], topic, payload, sender)

        def caller_gone() -> None:  # the exec'd process dies with its caller
            router.drop_callback(watcher)
            host = router.host_of(child[0])
            if host is not None:
                host.terminate(child[0], None)

        cleanup_key = actor.on_close(caller_gone)
        return PENDING

    # Control -------------------------------------------------------------------------------
    def terminate(task: LuaTask, dest: bytes) -> Any:
        try:
            target = router.resolve(dest.decode())
            host = router.host_of(target)
            if host is None or not host.terminate(target, None):
                raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)
        except WippyError as err:
            return fail(err)
        return (True,)

    def cancel(task: LuaTask, dest: bytes, deadline: Any, reason: Any) -> Any:
        actor = task.actor
        try:
            target = router.resolve(dest.decode())
            if deadline is None:
                seconds = DEFAULT_CANCEL_DEADLINE
            elif isinstance(deadline, bytes):
                seconds = parse_duration(deadline.decode())
            else:
                seconds = float(deadline) / 1000
            host = router.host_of(target)
            sender = actor.pid if isinstance(actor, Process) else None
            why = _text(reason) if reason is not None else "canceled"
            if host is None or not host.cancel(target, sender, why, seconds):
                raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)
        except WippyError as err:
            return fail(err)
        return (True,)

    def monitor(task: LuaTask, dest: bytes) -> Any:
        try:
            me = _caller(task, "monitor")
            target = router.resolve(dest.decode())
        except WippyError as err:
            return fail(err)
        if me.monitoring is None:
            me.monitoring = set()
        me.monitoring.add(target)
        if not router.watch(target, me.pid, link=False):  # already gone: EXIT right away
            not_found = to_lua(WippyError(NOT_FOUND, f"process {target} not found", retryable=False))
            me.deliver_event({"kind": "EXIT", "from": target, "result": {"value": None, "error": not_found}})
        return (True,)

    def unmonitor(task: LuaTask, dest: bytes) -> Any:
        try:
            me = _caller(task, "unmonitor")
            target = router.resolve(dest.decode())
        except WippyError as err:
            return fail(err)
        router.unwatch(target, me.pid, link=False)
        if me.monitoring is not None:
            me.monitoring.discard(target)
        _drop_events(me, "EXIT", target)
        return (True,)

    def link(task: LuaTask, dest: bytes) -> Any:
        try:
            me = _caller(task, "link")
            target = router.resolve(dest.decode())
            if not router.watch(target, me.pid, link=True):
                raise WippyError(NOT_FOUND, f"process {target} not found", retryable=False)
        except WippyError as err:
            return fail(err)
        if me.links is None:
            me.links = set()
        me.links.add(target)
        return (True,)

    def unlink(task: LuaTask, dest: bytes) -> Any:
        try:
            me = _caller(task, "unlink")
            target = router.resolve(dest.decode())
        except WippyError as err:
            return fail(err)
        router.unwatch(target, me.pid, link=True)
        if me.links is not None:
            me.links.discard(target)
        _drop_events(me, "LINK_DOWN", target)
        return (True,)

    def _drop_events(me: Process, kind: str, sender: str) -> None:
        """Once unmonitored/unlinked, queued events from that process are withdrawn too."""
        events = me._events
        if events is None or not events.buffer:
            return
        k, s = kind.encode(), sender.encode()
        kept = [ev for ev in events.buffer if not (ev[b"kind"] == k and ev[b"from"] == s)]
        events.buffer.clear()
        events.buffer.extend(kept)

    def get_options(task: LuaTask) -> Any:
        me = _caller(task, "get_options")
        return (to_lua({"trap_links": me.trap_links}),)

    def set_options(task: LuaTask, trap_links: Any) -> Any:
        me = _caller(task, "set_options")
        if trap_links is not None:
            me.trap_links = bool(trap_links)
        return (True,)

    def upgrade(task: LuaTask, entry: Any, args: Any) -> Any:
        me = _caller(task, "upgrade")
        entry_id = me.entry_id if entry is None else entry.decode()
        found = kernel.registry.get(entry_id)
        if found is None or found.kind != "process.lua":
            raise WippyError(NOT_FOUND if found is None else INVALID,
                             f"process.upgrade: {entry_id} is not a process.lua entry", retryable=False)
        me.restart_with(entry_id, args)
        return PENDING

    # Channels ------------------------------------------------------------------------------
    def inbox(task: LuaTask) -> Any:
        return (_caller(task, "inbox").inbox,)

    def events(task: LuaTask) -> Any:
        return (_caller(task, "events").events,)

    def listen(task: LuaTask, topic: bytes) -> Any:
        me = _caller(task, "listen")
        if me.listeners is None:
            me.listeners = {}
        if topic in me.listeners:
            raise WippyError(INVALID, f"process.listen: already listening on topic {topic.decode()!r}", retryable=False)
        ch = Channel(me.scheduler, None)
        me.listeners[topic] = ch
        return (ch,)

    def unlisten(task: LuaTask, ch: Any) -> Any:
        me = _caller(task, "unlisten")
        for topic, listener in list((me.listeners or {}).items()):
            if listener is ch:
                del me.listeners[topic]
                pending = list(listener.buffer)  # give undelivered messages back to the inbox
                listener.buffer.clear()
                listener.close()
                for message in pending:
                    me.inbox.push(message)
                return (True,)
        return fail(WippyError(NOT_FOUND, "process.unlisten: that channel is not a topic listener of this process"))

    # Names ---------------------------------------------------------------------------------
    def register(task: LuaTask, name: bytes, target: Any) -> Any:
        try:
            if target is None:
                owner = _caller(task, "registry.register").pid
            else:  # a name for a PID that never exits would never be released
                owner = router.resolve(target.decode()) if target.startswith(b"{") else ""
                if not owner:
                    raise WippyError(INVALID, f"process.registry.register: {_text(target)!r} is not a PID",
                                     retryable=False)
                host = router.host_of(owner)
                if host is None or not host.alive(owner):
                    raise WippyError(NOT_FOUND, f"process {owner} not found", retryable=False)
            router.register(name.decode(), owner)
        except WippyError as err:
            return fail(err)
        return (True,)

    def lookup(task: LuaTask, name: bytes) -> Any:
        found = router.names.get(name.decode())
        if found is None:
            return fail(WippyError(NOT_FOUND, f"no process is registered as {name.decode()!r}", retryable=False))
        return (found.encode(),)

    def unregister(task: LuaTask, name: bytes) -> Any:
        return (router.unregister(name.decode()),)

    return {
        "process.pid": pid,
        "process.id": frame_id,
        "process.send": send,
        "process.spawn": spawn,
        "process.exec": exec_,
        "process.terminate": terminate,
        "process.cancel": cancel,
        "process.monitor": monitor,
        "process.unmonitor": unmonitor,
        "process.link": link,
        "process.unlink": unlink,
        "process.get_options": get_options,
        "process.set_options": set_options,
        "process.upgrade": upgrade,
        "process.inbox": inbox,
        "process.events": events,
        "process.listen": listen,
        "process.unlisten": unlisten,
        "process.register": register,
        "process.lookup": lookup,
        "process.unregister": unregister,
    }
