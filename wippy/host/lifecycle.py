"""Starting and stopping ``auto_start`` entries in dependency order.

Every startable kind has a ``factory`` on its :class:`~wippy.registry.KindSpec` (plugins
register them through the ``wippy.providers`` entry points). Dependencies come from
``lifecycle.depends_on`` / ``lifecycle.requires`` plus the references a kind implies (a
``process.service`` needs its host). Entries start level by level, each level in
parallel, and stop in the reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from wippy.durations import parse_duration
from wippy.errors import INVALID, UNAVAILABLE, WippyError
from wippy.registry import Entry, Registry
from wippy.registry.kinds import KINDS, lookup_kind
from wippy.registry.lifecycle import dependencies

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel

log = logging.getLogger("wippy.lifecycle")

DEFAULT_START_TIMEOUT = 10.0  # upstream's defaults
DEFAULT_STOP_TIMEOUT = 10.0


class Service(Protocol):
    """Anything the runtime starts and stops for an entry."""

    entry: Entry

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...




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


def seconds(raw: Any, default: float, where: str) -> float:
    """A lifecycle duration: a Go-style string ("5s", "250ms") or a number of seconds;
    ``default`` when absent. Raises INVALID naming ``where``."""
    if raw is None:
        return default
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return parse_duration(raw)
        except WippyError as err:
            raise WippyError(INVALID, f"{where}: {err.message}", retryable=False) from None
    raise WippyError(INVALID, f"{where}: expected a duration such as \"5s\", got {raw!r}", retryable=False)


def _timeout(entry: Entry, key: str, default: float) -> float:
    return seconds(entry.lifecycle.get(key), default, f"{entry.id}: lifecycle.{key}")


# (entry ID, state, detail or None)
ChangeCallback = Callable[[str, str, str | None], None]


class Lifecycle:
    """The started services of one runtime, and the order to stop them in.

    Services that track their own state (``reports_state = True``, e.g. the supervisor of a
    ``process.service``) call :meth:`notify` themselves; for the others the lifecycle
    reports starting/running/stopping/stopped."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.services: dict[str, Service] = {}
        kernel.services = self.services
        kernel.notify = self.notify
        self.states: dict[str, str] = {}
        self._levels: list[list[Entry]] = []
        self.on_change: ChangeCallback | None = None

    def notify(self, entry_id: str, state: str, detail: str | None = None) -> None:
        self.states[entry_id] = state
        if self.on_change is not None:
            self.on_change(entry_id, state, detail)

    def _notify(self, service: Service, state: str, detail: str | None = None) -> None:
        if not getattr(service, "reports_state", False):
            self.notify(service.entry.id, state, detail)

    async def start(self, entries: list[Entry] | None = None) -> None:
        """Start ``entries`` (default: every ``auto_start`` entry) and what they require,
        level by level; a level starts in parallel and must be fully running before the
        next one begins. On an error, what this call started is stopped again (in reverse)
        and the first error is raised."""
        registry = self.kernel.registry
        wanted = entries if entries is not None else [e for e in registry if e.lifecycle.get("auto_start")]
        levels = start_levels(registry, wanted)
        for level in levels:
            for entry in level:
                spec = lookup_kind(entry.kind)
                why = spec.missing() if spec is not None else None
                if why is not None:
                    raise WippyError(UNAVAILABLE, f"{entry.id}: {why}", retryable=False)
        first_new = len(self._levels)
        try:
            for level in levels:
                level = [e for e in level if _startable(e) and e.id not in self.services]
                self._levels.append(level)
                results = await asyncio.gather(*(self._start_one(e) for e in level), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
        except BaseException:
            await self._stop_levels(self._levels[first_new:])
            del self._levels[first_new:]
            raise

    async def _start_one(self, entry: Entry) -> None:
        factory = KINDS[entry.kind].factory
        assert factory is not None
        service = factory(self.kernel, with_env(self.kernel, entry))
        self._notify(service, "starting")
        timeout = _timeout(entry, "start_timeout", DEFAULT_START_TIMEOUT)
        try:
            await asyncio.wait_for(service.start(), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            # an interrupted start must not leak what it did start (a start that raised
            # cleaned up after itself)
            with contextlib.suppress(Exception):
                await service.stop(_timeout(entry, "stop_timeout", DEFAULT_STOP_TIMEOUT))
            if isinstance(exc, TimeoutError):
                self._notify(service, "failed", f"did not start within {timeout:g}s")
                raise WippyError("Timeout", f"{entry.id} did not start within {timeout:g}s") from None
            raise
        except Exception as exc:  # the start raised (and cleaned up after itself)
            self._notify(service, "failed", exc.message if isinstance(exc, WippyError) else str(exc))
            raise
        self.services[entry.id] = service
        self._notify(service, "running")

    async def stop(self) -> None:
        """Stop started services in reverse start order: a level finishes stopping before
        the level it depends on begins."""
        await self._stop_levels(self._levels)
        self._levels.clear()

    async def _stop_levels(self, levels: list[list[Entry]]) -> None:
        for level in reversed(levels):
            started = [e for e in level if e.id in self.services]
            results = await asyncio.gather(*(self._stop_one(e) for e in started), return_exceptions=True)
            for entry, result in zip(started, results, strict=True):
                if isinstance(result, Exception):
                    log.error("stopping %s failed: %s", entry.id, result)

    async def _stop_one(self, entry: Entry) -> None:
        service = self.services.pop(entry.id)
        self._notify(service, "stopping")
        timeout = _timeout(entry, "stop_timeout", DEFAULT_STOP_TIMEOUT)
        try:
            await asyncio.wait_for(service.stop(timeout), timeout + 2)
        except TimeoutError:
            log.warning("%s did not stop within %gs", entry.id, timeout)
        self._notify(service, "stopped")

    def status_table(self) -> str:
        """Services (state, pid, restarts) and live processes (pid, entry, host, inbox)."""
        rows = [("SERVICE", "STATE", "PID", "RESTARTS", "DETAIL")]
        for eid in sorted(self.services):
            info = getattr(self.services[eid], "status", None)
            st = info() if callable(info) else {"state": self.states.get(eid, "running")}
            rows.append((eid, st.get("state", "?"), st.get("pid") or "-",
                         str(st.get("restarts", "-")), st.get("detail") or ""))
        procs = [("PID", "ENTRY", "HOST", "INBOX")]
        for host in list(self.kernel.router.hosts.values()):
            for p in host.snapshot():
                procs.append((p["pid"], p["entry"], p["host"], str(p.get("inbox", "-"))))
        return _table(rows) + "\n\n" + _table(procs) + "\n"


def with_env(kernel: Kernel, entry: Entry) -> Entry:
    """``entry`` with its ``${env:NAME}`` placeholders resolved (the registry keeps the
    text); INVALID/NOT_FOUND naming the entry when one cannot be resolved."""
    from wippy.actors.commands.env import env_system
    from wippy.registry.env import resolved_entry

    try:
        return resolved_entry(env_system(kernel), entry)
    except WippyError as err:
        raise WippyError(err.kind, f"{entry.id}: {err.message}", retryable=False) from None


def _startable(entry: Entry) -> bool:
    spec = lookup_kind(entry.kind)
    return spec is not None and spec.startable


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _format_change(entry_id: str, state: str, detail: str | None) -> str:
    return f"wippy: {entry_id} {state}" + (f" - {detail}" if detail else "")


async def _print_status(lifecycle: Lifecycle, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        print(lifecycle.status_table(), flush=True)


async def run_forever(registry: Registry, *, status: float | None = None) -> int:
    """``wippy run``: start everything, print state changes (and a status table every
    ``status`` seconds), stop in reverse order on SIGINT/SIGTERM."""
    from wippy.host.runtime import Runtime

    runtime = Runtime(registry, tune_gc=True)
    runtime.lifecycle.on_change = lambda eid, state, detail: print(_format_change(eid, state, detail), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reporter: asyncio.Task[None] | None = None
    try:
        await runtime.start()
        for host in list(runtime.router.hosts.values()):
            note = host.start_note()
            if note:
                print(f"wippy: {host.host_id} {note}", flush=True)
        print(f"wippy: {len(registry)} entries loaded, {len(runtime.lifecycle.services)} started; "
              "press Ctrl-C to stop", flush=True)
        if status:
            reporter = asyncio.create_task(_print_status(runtime.lifecycle, status))
        await stop.wait()
    finally:
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _exit_now)  # a second Ctrl-C does not wait for the stop
        print("wippy: stopping", flush=True)
        try:
            await runtime.stop()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    print("wippy: stopped", flush=True)
    return 0


def _exit_now() -> None:
    """A second SIGINT/SIGTERM while stopping: end the process at once, as a crash would.
    Nothing acknowledged is lost (the journal syncs every commit before acknowledging);
    open workflows resume on the next start."""
    from wippy.interrupt import EXIT_INTERRUPTED, hard_exit

    hard_exit(EXIT_INTERRUPTED, "wippy: interrupted again; exiting without waiting for the stop (open "
                                "workflows resume on the next start)")


__all__: list[Any] = ["Lifecycle", "run_forever", "seconds", "start_levels"]
