"""The runtime: a kernel (Lua state, run queue, router) and the lifecycle of what it starts."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wippy.actors.host import SpawnRequest
from wippy.actors.kernel import Kernel
from wippy.actors.router import Router
from wippy.actors.scheduler import Scheduler
from wippy.errors import UNAVAILABLE, WippyError
from wippy.host.lifecycle import Lifecycle
from wippy.lua.vm import LuaVM
from wippy.registry import Registry, load_project

GC_THRESHOLDS = (10_000, 20, 50)  # Python's defaults are (700, 10, 10)


def tune_collector() -> None:
    """Tune Python's cyclic garbage collector for a process that runs the runtime: what
    start-up allocated (modules, entry prototypes, hosts) is frozen out of every later
    collection, and young collections come less often: a message or a step allocates
    short-lived tuples and Lua wrappers that reference counting frees, so frequent young
    collections only rescan survivors (see docs/performance.md for the figures)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Runtime:
    """Runs a loaded project. Create it, then ``await call(...)`` or use ``async with``.

    The runtime owns a :class:`~wippy.actors.kernel.Kernel` (Lua state, run queue, router)
    and the :class:`Lifecycle` of the entries it starts."""

    def __init__(self, registry: Registry, *, output: Callable[[str], None] | None = None,
                 max_memory: int | None = None, tune_gc: bool = False) -> None:
        """``max_memory``: bytes of Lua heap for all actors together (None: the
        ``WIPPY_LUA_MAX_MEMORY`` environment variable, else 1 GiB; 0: no limit).
        ``tune_gc``: tune Python's collector once started (:func:`tune_collector`); for a
        process that is the runtime (the CLI), not for one that embeds it."""
        self.registry = registry
        self.tune_gc = tune_gc
        self.kernel = Kernel(registry, LuaVM(output=output, max_memory=max_memory))
        self.lifecycle = Lifecycle(self.kernel)

    @property
    def vm(self) -> LuaVM:
        return self.kernel.vm

    @property
    def router(self) -> Router:
        return self.kernel.router

    @property
    def scheduler(self) -> Scheduler:
        return self.kernel.scheduler

    async def start(self) -> None:
        """Start ``auto_start`` entries (hosts, services) in dependency order."""
        self.scheduler.bind_loop(asyncio.get_running_loop())
        await self.lifecycle.start()
        if self.tune_gc:
            tune_collector()

    async def stop(self) -> None:
        """Stop what :meth:`start` started, in reverse order."""
        await self.lifecycle.stop()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    def from_path(cls, root: str | os.PathLike[str], **kwargs: Any) -> Runtime:
        return cls(load_project(Path(root)), **kwargs)

    async def call(
        self,
        entry_id: str,
        *args: Any,
        context: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run a function entry with Python arguments; returns its first result as Python
        data or raises :class:`WippyError` with the function's error."""
        loop = asyncio.get_running_loop()
        self.scheduler.bind_loop(loop)
        result: asyncio.Future[Any] = loop.create_future()
        vm = self.vm

        def done(ok: bool, value: Any) -> None:
            if result.done():
                return
            try:
                converted = vm.to_python(value, "result")
            except WippyError as err:
                result.set_exception(err)
                return
            if ok:
                result.set_result(converted)
            else:
                result.set_exception(converted)

        options = {"timeout": timeout * 1000} if timeout is not None else None
        call = self.kernel.functions.start(entry_id, self.kernel.lua_args(args), context, options, done)
        try:
            return await result
        except asyncio.CancelledError:
            call.close()
            raise

    async def run(self, entry_id: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        """Call a function entry, or run a process entry to its exit on the first started
        host that runs ``process.lua`` entries; returns the result as Python data or raises
        WippyError."""
        entry = self.registry.get(entry_id)
        if entry is None or entry.kind != "process.lua":
            return await self.call(entry_id, *args, context=context)
        hosts = [h for h in self.router.hosts.values() if h.running and h.accepts(entry.kind)]
        if not hosts:
            raise WippyError(
                UNAVAILABLE,
                f"no started host runs {entry_id}: add a process.host entry with lifecycle.auto_start: true",
            )
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()

        def on_exit(event: dict[str, Any]) -> None:
            self.router.drop_callback(watcher)
            if result.done():
                return
            outcome = event["result"]
            if outcome["error"] is not None:
                result.set_exception(self.vm.to_python(outcome["error"], "error"))
            else:
                result.set_result(self.vm.to_python(outcome["value"], "result"))

        watcher = self.router.callback_pid(on_exit)
        request = SpawnRequest(entry_id, self.kernel.lua_args(args), parent=watcher, context=context or {}, monitor=True)
        pid = hosts[0].spawn(request)
        try:
            return await result
        except asyncio.CancelledError:
            hosts[0].terminate(pid, None)
            raise


