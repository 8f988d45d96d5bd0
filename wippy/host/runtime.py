"""The runtime: one registry, one Lua state, one scheduler, and the providers on top."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wippy.actors.scheduler import Dispatcher, Scheduler
from wippy.errors import WippyError
from wippy.host.functions import FunctionRunner
from wippy.host.lifecycle import Lifecycle
from wippy.host.router import Router
from wippy.lua.modules import default_commands
from wippy.lua.vm import LuaVM
from wippy.providers.base import SpawnRequest
from wippy.registry import Registry, load_project
from wippy.registry.kinds import KINDS


class Runtime:
    """Runs a loaded project. Create it, then ``await call(...)`` or use ``async with``."""

    def __init__(self, registry: Registry, *, output: Callable[[str], None] | None = None) -> None:
        self.registry = registry
        self.vm = LuaVM(output=output)
        self.scheduler = Scheduler(self.vm)
        self.router = Router()
        self.dispatcher = Dispatcher(default_commands(self))
        self.functions = FunctionRunner(self)
        self.lifecycle = Lifecycle(self)
        self._define_entries()
        _register_builtin_services()

    async def start(self) -> None:
        """Start ``auto_start`` entries (hosts, services) in dependency order."""
        self.scheduler.bind_loop(asyncio.get_running_loop())
        await self.lifecycle.start()

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

    def _define_entries(self) -> None:
        for entry in self.registry:
            if not KINDS[entry.kind].lua or entry.source is None:
                continue
            chunkname = "@" + _display_path(entry.source_path or entry.file, self.registry.root)
            chunk, err = self.vm.compile(entry.id, entry.source, chunkname)
            if chunk is None:  # the loader already rejects syntax errors; keep a clear message
                raise WippyError("INVALID", f"{entry.id}: {err}")
            self.vm.define(entry.id, chunk, entry.modules, entry.imports, entry.method)

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
        call = self.functions.start(entry_id, self.lua_args(args), context, options, done)
        try:
            return await result
        except asyncio.CancelledError:
            call.close()
            raise

    async def run(self, entry_id: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        """Call a function entry, or run a process entry to its exit on the first started
        ``process.host``; returns the result as Python data or raises WippyError."""
        entry = self.registry.get(entry_id)
        if entry is None or entry.kind != "process.lua":
            return await self.call(entry_id, *args, context=context)
        hosts = [h for h in self.router.hosts.values() if h.kind == "process.host" and h.running]
        if not hosts:
            raise WippyError(
                "UNAVAILABLE",
                f"no started process.host to run {entry_id} on: add a process.host entry with lifecycle.auto_start: true",
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
        request = SpawnRequest(entry_id, self.lua_args(args), parent=watcher, context=context or {}, monitor=True)
        pid = hosts[0].spawn(request)
        try:
            return await result
        except asyncio.CancelledError:
            hosts[0].terminate(pid, None)
            raise

    def lua_args(self, args: tuple[Any, ...] | list[Any]) -> Any:
        """Python arguments as the packed Lua table ``{n = count, ...}`` tasks expect."""
        table = self.vm.lua.table()
        for i, value in enumerate(args, 1):
            table[i] = self.vm.to_lua(value, f"argument #{i}")
        table[b"n"] = len(args)
        return table


def _register_builtin_services() -> None:
    from wippy.host.lifecycle import SERVICE_KINDS, register_service_kind
    from wippy.host.process_host import ProcessHost
    from wippy.providers.workflow.host import WorkflowHost

    if "process.host" not in SERVICE_KINDS:
        register_service_kind("process.host", ProcessHost)
    if "workflow.host" not in SERVICE_KINDS:
        register_service_kind("workflow.host", WorkflowHost)
    if "temporal.client" not in SERVICE_KINDS:  # imported on first use: temporalio is large
        register_service_kind("temporal.client", _temporal_client)
        register_service_kind("temporal.worker", _temporal_worker)
    if "process.service" not in SERVICE_KINDS:
        from wippy.host.supervisor import Supervisor

        register_service_kind("process.service", Supervisor)


def _temporal_client(runtime: Runtime, entry: Any) -> Any:
    from wippy.providers.temporal.client import TemporalClientService

    return TemporalClientService(runtime, entry)


def _temporal_worker(runtime: Runtime, entry: Any) -> Any:
    from wippy.providers.temporal.worker import TemporalWorkerHost

    return TemporalWorkerHost(runtime, entry)


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
