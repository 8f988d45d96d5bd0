"""``process.service``: keep one process running on its host, restarting it with back-off.

A :class:`Supervisor` is the lifecycle service for one ``process.service`` entry. It spawns
the entry's ``process`` on its ``host`` with ``input`` as arguments, watches it through a
router callback PID (an EXIT monitor, no Lua process in between) and decides what each
exit means. States and their meaning follow the upstream supervisor:

``unknown``   registered, not started yet
``starting``  spawning the process
``running``   the process is alive
``failed``    it crashed; a restart is scheduled, or the supervisor gave up (``gave_up``)
``exited``    it ended on purpose: returned normally, or was canceled/terminated
``stopping``  the runtime is stopping it (CANCEL, then terminate at ``stop_timeout``)
``stopped``   stopped by the runtime

Decisions where upstream leaves room:

* A normal return is ``exited`` and is not restarted (upstream reports a returned process
  as a terminal exit; a one-shot migration service relies on that).
* An exit with a ``CANCELED`` error (``process.terminate``, a cancel from another process)
  is an explicit termination request: ``exited``, not restarted.
* Every other error is a crash and is retried. Upstream also treats errors marked
  non-retryable as terminal, but this runtime marks *every* plain Lua ``error(...)`` as
  non-retryable, so honouring the flag would disable restarts altogether.
* ``max_attempts`` counts consecutive failed runs, as upstream does: with 3 the process
  runs at most three times in a row before the supervisor gives up (0 = forever). A run
  that lasted ``stable_threshold`` resets the count, and with it the back-off.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wippy.actors.host import SpawnRequest
from wippy.errors import CANCELED, INVALID, WippyError
from wippy.host.lifecycle import DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT, seconds
from wippy.registry.kinds import HOST, SERVICE, KindSpec, all_of, require_ref
from wippy.registry.schema import ENTRY, LIST, Field

if TYPE_CHECKING:
    from wippy.actors.host import Host
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry

log = logging.getLogger("wippy.supervisor")

UNKNOWN, STARTING, RUNNING, FAILED = "unknown", "starting", "running", "failed"
EXITED, STOPPING, STOPPED = "exited", "stopping", "stopped"
STATES = (UNKNOWN, STARTING, RUNNING, STOPPING, STOPPED, EXITED, FAILED)

DEFAULT_STABLE_THRESHOLD = 5.0

# (state, detail) -> None; detail explains the change ("restarting in 50ms ...").
StateListener = Callable[[str, str | None], None]


@dataclass(frozen=True)
class RestartPolicy:
    """``lifecycle.restart``; defaults are upstream's."""

    initial_delay: float = 1.0
    max_delay: float = 90.0
    backoff_factor: float = 2.0
    jitter: float = 0.1
    max_attempts: int = 0  # 0 = retry forever

    @classmethod
    def from_config(cls, raw: Any, where: str) -> RestartPolicy:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise WippyError(INVALID, f"{where}: lifecycle.restart must be a mapping", retryable=False)
        d = cls()
        return cls(
            initial_delay=seconds(raw.get("initial_delay"), d.initial_delay, f"{where}: lifecycle.restart.initial_delay"),
            max_delay=seconds(raw.get("max_delay"), d.max_delay, f"{where}: lifecycle.restart.max_delay"),
            backoff_factor=float(raw.get("backoff_factor", d.backoff_factor)),
            jitter=float(raw.get("jitter", d.jitter)),
            max_attempts=int(raw.get("max_attempts", d.max_attempts)),
        )

    def base_delay(self, attempt: int) -> float:
        """``initial_delay * backoff_factor^(attempt-1)``, capped at ``max_delay``."""
        try:
            delay = self.initial_delay * self.backoff_factor ** max(attempt - 1, 0)
        except OverflowError:
            delay = self.max_delay
        return min(delay, self.max_delay)

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before restart number ``attempt`` (1-based), with ±``jitter`` applied."""
        delay = self.base_delay(attempt)
        if self.jitter:
            delay *= 1 + self.jitter * (2 * rand() - 1)
        return max(delay, 0.0)

    def gives_up(self, attempt: int) -> bool:
        return self.max_attempts > 0 and attempt >= self.max_attempts


@dataclass(frozen=True)
class ServiceConfig:
    """A ``process.service`` entry's fields, parsed once."""

    process: str
    host: str
    input: list[Any] = field(default_factory=list)
    start_timeout: float = DEFAULT_START_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    stable_threshold: float = DEFAULT_STABLE_THRESHOLD
    restart: RestartPolicy = field(default_factory=RestartPolicy)

    @classmethod
    def from_entry(cls, entry: Entry) -> ServiceConfig:
        refs: dict[str, str] = {}
        for key in ("process", "host"):
            ref = entry.data.get(key)
            if not isinstance(ref, str) or not ref:
                raise WippyError(INVALID, f"{entry.id}: process.service needs `{key}` (an entry ID)", retryable=False)
            refs[key] = entry.resolve(ref)
        raw_input = entry.data.get("input")
        args = [] if raw_input is None else list(raw_input) if isinstance(raw_input, list) else [raw_input]
        lc = entry.lifecycle
        return cls(
            process=refs["process"],
            host=refs["host"],
            input=args,
            start_timeout=seconds(lc.get("start_timeout"), DEFAULT_START_TIMEOUT, f"{entry.id}: lifecycle.start_timeout"),
            stop_timeout=seconds(lc.get("stop_timeout"), DEFAULT_STOP_TIMEOUT, f"{entry.id}: lifecycle.stop_timeout"),
            stable_threshold=seconds(
                lc.get("stable_threshold"), DEFAULT_STABLE_THRESHOLD, f"{entry.id}: lifecycle.stable_threshold"
            ),
            restart=RestartPolicy.from_config(lc.get("restart"), entry.id),
        )


def format_delay(delay: float) -> str:
    return f"{delay * 1000:.0f}ms" if delay < 1 else f"{delay:.3g}s"


class Supervisor:
    """The lifecycle service of one ``process.service`` entry.

    Owns at most one restart timer and one callback PID; :meth:`stop` cancels the timer,
    stops the process and drops the callback, so nothing outlives the service."""

    reports_state = True  # Lifecycle leaves state notifications to us

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        self.kernel = kernel
        self.entry = entry
        self.config = ServiceConfig.from_entry(entry)
        self.state = UNKNOWN
        self.detail: str | None = None
        self.pid: str | None = None
        self.attempts = 0  # consecutive failed runs; reset by a stable run
        self.restarts = 0  # restarts since start(), for status tables
        self.gave_up = False
        self.listeners: list[StateListener] = []
        self._host: Host | None = None
        self._watcher: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started_at = 0.0
        self._stopping = False
        self._gone: asyncio.Event | None = None  # set when the process being stopped exits

    def __repr__(self) -> str:
        return f"<Supervisor {self.entry.id} {self.state}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.kernel.scheduler.loop

    # Starting ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Spawn the process. A first start that cannot spawn (host missing or not started,
        bad process entry) raises, naming the service; later restarts retry instead."""
        self._stopping = False
        self.attempts = self.restarts = 0
        self.gave_up = False
        try:
            self._launch()
        except WippyError as err:
            self._set(FAILED, str(err))
            self._drop_watcher()
            raise WippyError(err.kind, f"service {self.entry.id}: {err.message}", retryable=err.retryable) from None

    def _launch(self) -> None:
        self._set(STARTING, f"attempt {self.attempts + 1}")
        kernel = self.kernel
        host = kernel.router.host_for_spawn(self.config.host, kernel.registry)
        if self._watcher is None:
            self._watcher = kernel.router.callback_pid(self._on_event)
        request = SpawnRequest(
            self.config.process,
            kernel.lua_args(self.config.input),
            parent=self._watcher,
            monitor=True,
        )
        self.pid = host.spawn(request)
        self._host = host
        self._started_at = self.loop.time()
        self._set(RUNNING, f"pid {self.pid}")

    def _restart(self) -> None:
        self._timer = None
        if self._stopping:
            return
        self.restarts += 1
        try:
            self._launch()
        except Exception as err:  # a timer callback: count it as a failed attempt, never lose it
            self._failed(str(err), ran=None)

    # Exits ---------------------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") != "EXIT" or event.get("from") != self.pid:
            return
        self.pid = None
        ran = self.loop.time() - self._started_at
        if self._gone is not None:
            self._gone.set()
        if self._stopping:
            return
        error = event["result"]["error"]
        if error is None:
            self._set(EXITED, "process returned normally; not restarted")
            return
        err = self._as_error(error)
        if err.kind == CANCELED:
            self._set(EXITED, f"{err}; not restarted")
            return
        self._failed(str(err), ran)

    def _as_error(self, error: Any) -> WippyError:
        try:
            value = self.kernel.vm.to_python(error, "exit error")
        except WippyError as exc:
            return exc
        return value if isinstance(value, WippyError) else WippyError("", str(value))

    def _failed(self, reason: str, ran: float | None) -> None:
        """A crash after ``ran`` seconds (None: a restart that could not spawn): schedule
        the next run or give up."""
        if ran is not None and ran >= self.config.stable_threshold:
            self.attempts = 0
        self.attempts += 1
        policy = self.config.restart
        if policy.gives_up(self.attempts):
            self.gave_up = True
            log.error("service %s gave up after %d attempts (max_attempts %d): %s",
                      self.entry.id, self.attempts, policy.max_attempts, reason)
            self._set(FAILED, f"{reason}; gave up after {self.attempts} attempts")
            return
        delay = policy.delay(self.attempts)
        limit = f" of {policy.max_attempts}" if policy.max_attempts else ""
        log.info("service %s failed (%s); restarting in %s (attempt %d%s)",
                    self.entry.id, reason, format_delay(delay), self.attempts + 1, limit)
        self._set(FAILED, f"{reason}; restarting in {format_delay(delay)} (attempt {self.attempts + 1}{limit})")
        self._timer = self.loop.call_later(delay, self._restart)

    # Stopping ------------------------------------------------------------------------------
    async def stop(self, timeout: float) -> None:
        """Cancel any pending restart, send the process CANCEL, terminate it when
        ``timeout`` runs out, and wait for it to be gone."""
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pid, host = self.pid, self._host
        try:
            if pid is not None and host is not None and host.alive(pid):
                self._set(STOPPING, f"pid {pid}")
                self._gone = asyncio.Event()
                host.cancel(pid, None, "service stopping", timeout)
                try:
                    # the host terminates the process at the deadline; the margin covers that hop
                    await asyncio.wait_for(self._gone.wait(), timeout + 1.0)
                except TimeoutError:
                    host.terminate(pid, None)
            if self.state != EXITED:
                self._set(STOPPED, None)
        finally:
            self._gone = None
            self.pid = None
            self._drop_watcher()

    def _drop_watcher(self) -> None:
        if self._watcher is not None:
            self.kernel.router.drop_callback(self._watcher)
            self._watcher = None

    # Observing -----------------------------------------------------------------------------
    def _set(self, state: str, detail: str | None) -> None:
        self.state, self.detail = state, detail
        for listener in list(self.listeners):
            listener(state, detail)
        self.kernel.notify(self.entry.id, state, detail)

    def status(self) -> dict[str, Any]:
        """A row for ``wippy run --status``."""
        detail = self.detail
        if self.state == RUNNING:
            detail = f"up {self.loop.time() - self._started_at:.1f}s"
        return {
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restarts,
            "attempts": self.attempts,
            "detail": detail,
        }


SPEC = KindSpec(
    "process.service",
    role=SERVICE,
    factory=Supervisor,
    validate=all_of(require_ref("process", ("process.lua",)), require_ref("host", role=HOST)),
    description="supervised process",
    starts_after=("host",),
    fields={"process": Field(ENTRY), "host": Field(ENTRY), "input": Field(LIST)},
)

__all__ = ["SPEC", "STATES", "RestartPolicy", "ServiceConfig", "Supervisor"]
