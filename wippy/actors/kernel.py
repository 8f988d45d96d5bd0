"""The kernel: what every actor, command handler and provider shares.

One Lua state, one run queue, one router, the registry, the function runner and the base
command handlers. :class:`wippy.Runtime` builds it and owns the lifecycle around it; code
below the runtime takes a kernel, never the runtime, so the layers point one way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from wippy.actors.functions import FunctionFrames, FunctionRunner
from wippy.actors.router import Router
from wippy.actors.scheduler import Dispatcher, Scheduler
from wippy.errors import INVALID, WippyError
from wippy.registry.kinds import KINDS, lookup_kind

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM
    from wippy.registry import Registry

# notify(entry_id, state, detail): a service reports a state change to the lifecycle.
Notify = Callable[[str, str, "str | None"], None]


class Kernel:
    """Shared machinery of one kernel. ``services`` and ``notify`` are filled in by the
    lifecycle that owns the started entries (a provider looks up a service it depends on,
    e.g. a worker its client, and a supervisor reports its state)."""

    def __init__(self, registry: Registry, vm: LuaVM) -> None:
        from wippy.actors.commands import default_commands

        self.registry = registry
        self.root: Path = registry.root
        self.vm = vm
        self.scheduler = Scheduler(vm)
        self.router = Router()
        self._attached: dict[str, WeakKeyDictionary[Any, Any]] = {}
        self.dispatcher = Dispatcher(default_commands(self))
        self.frames = FunctionFrames(self)
        self.functions = FunctionRunner(self)
        self.services: Mapping[str, Any] = {}
        self.notify: Notify = lambda entry_id, state, detail: None
        self._define_entries()

    def attached(self, key: str) -> WeakKeyDictionary[Any, Any]:
        """State a service keeps for the actors it started, under ``key``, for the command
        handlers of its Lua module to find by ``task.actor`` (e.g. the HTTP server puts the
        request a function call answers under ``"http"``). Keyed weakly by the actor, so it
        goes when the actor does; a service above the core hands state to the core's
        handlers this way without either importing the other."""
        table = self._attached.get(key)
        if table is None:
            table = self._attached[key] = WeakKeyDictionary()
        return table

    def _define_entries(self) -> None:
        """Compile every Lua entry once into the Lua state (instances share the prototype)."""
        for entry in self.registry:
            if not lookup_kind(entry.kind) or not KINDS[entry.kind].lua or entry.source is None:
                continue
            chunkname = "@" + _display_path(entry.source_path or entry.file, self.root)
            chunk, err = self.vm.compile(entry.id, entry.source, chunkname)
            if chunk is None:  # the loader already rejects syntax errors; keep a clear message
                raise WippyError(INVALID, f"{entry.id}: {err}")
            self.vm.define(entry.id, chunk, entry.modules, entry.imports, entry.method)

    def lua_args(self, args: tuple[Any, ...] | list[Any]) -> Any:
        """Python arguments as the packed Lua table ``{n = count, ...}`` tasks expect."""
        table = self.vm.lua.table()
        for i, value in enumerate(args, 1):
            table[i] = self.vm.to_lua(value, f"argument #{i}")
        table[b"n"] = len(args)
        return table


def _display_path(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
