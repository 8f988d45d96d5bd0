"""Starting and stopping ``auto_start`` entries in dependency order.

Every startable kind registers a factory in :data:`SERVICE_KINDS`. Dependencies come from
``lifecycle.depends_on`` / ``lifecycle.requires`` plus the references a kind implies (a
``process.service`` needs its host). Entries start level by level, each level in
parallel, and stop in the reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from wippy.durations import parse_duration
from wippy.errors import INVALID, NotSupportedError, WippyError
from wippy.registry import Entry, Registry

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime

log = logging.getLogger("wippy.lifecycle")

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 10.0


class Service(Protocol):
    """Anything the runtime starts and stops for an entry."""

    entry: Entry

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


ServiceFactory = Callable[["Runtime", Entry], Service]
SERVICE_KINDS: dict[str, ServiceFactory] = {}
IMPLIED_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "process.service": ("host",),
    "temporal.worker": ("client",),
}


def register_service_kind(kind: str, factory: ServiceFactory) -> None:
    SERVICE_KINDS[kind] = factory


def dependencies(entry: Entry, registry: Registry) -> list[str]:
    deps: list[str] = []
    for key in ("depends_on", "requires"):
        for ref in entry.lifecycle.get(key) or []:
            deps.append(entry.resolve(str(ref)))
    for field in IMPLIED_DEPENDENCIES.get(entry.kind, ()):
        ref = entry.data.get(field)
        if isinstance(ref, str):
            deps.append(entry.resolve(ref))
    return [d for d in dict.fromkeys(deps) if d in registry.entries]


def start_levels(registry: Registry, wanted: list[Entry]) -> list[list[Entry]]:
    """``wanted`` plus what they depend on, grouped so each level depends only on earlier
    ones. Raises INVALID naming the entries caught in a dependency cycle."""
    needed: dict[str, Entry] = {}
    stack = list(wanted)
    while stack:
        e = stack.pop()
        if e.id in needed:
            continue
        needed[e.id] = e
        stack.extend(registry.entries[d] for d in dependencies(e, registry))
    remaining = {eid: set(dependencies(e, registry)) for eid, e in needed.items()}
    levels: list[list[Entry]] = []
    while remaining:
        ready = sorted(eid for eid, deps in remaining.items() if not deps)
        if not ready:
            raise WippyError(INVALID, "lifecycle dependency cycle among: " + ", ".join(sorted(remaining)))
        levels.append([needed[eid] for eid in ready])
        for eid in ready:
            del remaining[eid]
        for deps in remaining.values():
            deps.difference_update(ready)
    return levels


def _timeout(entry: Entry, key: str, default: float) -> float:
    raw = entry.lifecycle.get(key)
    if raw is None:
        return default
    if isinstance(raw, (int, float)):
        return float(raw)
    return parse_duration(str(raw))


class Lifecycle:
    """The started services of one runtime, and the order to stop them in."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.services: dict[str, Service] = {}
        self._levels: list[list[Entry]] = []
        self.on_change: Callable[[str, str], None] | None = None

    def _notify(self, entry_id: str, state: str) -> None:
        if self.on_change is not None:
            self.on_change(entry_id, state)

    async def start(self, entries: list[Entry] | None = None) -> None:
        registry = self.runtime.registry
        wanted = entries if entries is not None else [e for e in registry if e.lifecycle.get("auto_start")]
        levels = start_levels(registry, wanted)
        for level in levels:
            for entry in level:
                if entry.kind not in SERVICE_KINDS and entry.kind in ("process.lua", "function.lua", "library.lua", "workflow.lua", "registry.entry"):
                    continue
                if entry.kind not in SERVICE_KINDS:
                    raise NotSupportedError(f"starting {entry.kind} entries ({entry.id})")
        for level in levels:
            level = [e for e in level if e.kind in SERVICE_KINDS and e.id not in self.services]
            self._levels.append(level)
            await asyncio.gather(*(self._start_one(e) for e in level))

    async def _start_one(self, entry: Entry) -> None:
        service = SERVICE_KINDS[entry.kind](self.runtime, entry)
        self._notify(entry.id, "starting")
        timeout = _timeout(entry, "start_timeout", DEFAULT_START_TIMEOUT)
        try:
            await asyncio.wait_for(service.start(), timeout)
        except TimeoutError:
            raise WippyError("TIMEOUT", f"{entry.id} did not start within {timeout:g}s") from None
        self.services[entry.id] = service
        self._notify(entry.id, "running")

    async def stop(self) -> None:
        for level in reversed(self._levels):
            await asyncio.gather(*(self._stop_one(e) for e in level if e.id in self.services))
        self._levels.clear()

    async def _stop_one(self, entry: Entry) -> None:
        service = self.services.pop(entry.id)
        self._notify(entry.id, "stopping")
        timeout = _timeout(entry, "stop_timeout", DEFAULT_STOP_TIMEOUT)
        try:
            await asyncio.wait_for(service.stop(timeout), timeout + 1)
        except TimeoutError:
            log.warning("%s did not stop within %gs", entry.id, timeout)
        self._notify(entry.id, "stopped")


async def run_forever(registry: Registry, *, status: bool = False) -> int:
    """``wippy run``: start everything, print state changes, stop on SIGINT/SIGTERM."""
    from wippy.host.runtime import Runtime

    runtime = Runtime(registry)
    runtime.lifecycle.on_change = lambda eid, state: print(f"wippy: {eid} {state}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        print(f"wippy: {len(registry)} entries loaded, {len(runtime.lifecycle.services)} started; "
              "press Ctrl-C to stop", flush=True)
        await stop.wait()
    finally:
        print("wippy: stopping", flush=True)
        await runtime.stop()
    print("wippy: stopped", flush=True)
    return 0


__all__: list[Any] = ["Lifecycle", "SERVICE_KINDS", "register_service_kind", "run_forever", "start_levels"]
