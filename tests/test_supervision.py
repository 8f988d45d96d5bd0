"""Supervised services (``process.service``): back-off, stable reset, giving up, ordering,
shutdown, clear errors, and ``wippy run`` end to end. Real Lua processes throughout."""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from wippy import Runtime, load_project
from wippy.errors import LoadError, WippyError
from wippy.host.lifecycle import start_levels
from wippy.host.supervisor import RestartPolicy, ServiceConfig, Supervisor
from wippy.registry import Entry, Registry

CRASH_NOW = "return { main = function() error('boom') end }"
# Crashes when told to; returns on CANCEL.
CRASH_ON_MESSAGE = """
local function main()
  local inbox, events = process.inbox(), process.events()
  while true do
    local r = channel.select({ inbox:case_receive(), events:case_receive() })
    if r.channel == events then
      if r.value.kind == process.event.CANCEL then return "canceled" end
    elseif r.value:topic() == "crash" then
      error("told to crash")
    elseif r.value:topic() == "return" then
      return "done"
    end
  end
end
return { main = main }
"""
# Returns as soon as it is canceled.
WAIT_FOR_CANCEL = """
local function main()
  local events = process.events()
  while true do
    local ev = events:receive()
    if ev.kind == process.event.CANCEL then return "bye" end
  end
end
return { main = main }
"""
# Ignores CANCEL: only the stop_timeout terminate ends it.
STUBBORN = """
local function main()
  local events = process.events()
  while true do events:receive() end
end
return { main = main }
"""


def service_project(project: Project, sources: dict[str, str], services: str, host_extra: str = "") -> None:
    """A host ``app:host`` (auto_start), one process.lua per source, and ``services`` YAML."""
    project.entries.append("  - name: host\n    kind: process.host\n    lifecycle:\n      auto_start: true" + host_extra)
    for name, source in sources.items():
        project.function(name, source, kind="process.lua")
    project.entries.append(textwrap.indent(textwrap.dedent(services).strip(), "  "))
    project.write()


class Recorder:
    """``lifecycle.on_change`` as a timestamped log that tests can wait on."""

    def __init__(self, runtime: Runtime) -> None:
        self.loop = asyncio.get_running_loop()
        self.changes: list[tuple[float, str, str, str | None]] = []
        self._changed = asyncio.Event()
        runtime.lifecycle.on_change = self.record

    def record(self, entry_id: str, state: str, detail: str | None) -> None:
        self.changes.append((self.loop.time(), entry_id, state, detail))
        self._changed.set()

    async def wait(self, pred: Callable[[], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self._changed.clear()
                await self._changed.wait()

    def times(self, entry_id: str, state: str) -> list[float]:
        return [t for t, eid, st, _ in self.changes if eid == entry_id and st == state]

    def count(self, entry_id: str, state: str) -> int:
        return len(self.times(entry_id, state))

    def order(self, *states: str) -> list[tuple[str, str]]:
        return [(eid, st) for _, eid, st, _ in self.changes if st in states]


def supervisor(runtime: Runtime, entry_id: str) -> Supervisor:
    service = runtime.lifecycle.services[entry_id]
    assert isinstance(service, Supervisor)
    return service


def assert_no_tasks_left() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


# Restart policy ----------------------------------------------------------------------------
def test_restart_policy_backoff_cap_and_jitter() -> None:
    policy = RestartPolicy(initial_delay=1.0, max_delay=90.0, backoff_factor=2.0, jitter=0.1)
    assert [policy.base_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert policy.base_delay(8) == 90.0
    assert policy.base_delay(100_000) == 90.0  # no overflow
    assert policy.delay(1, rand=lambda: 0.0) == pytest.approx(0.9)
    assert policy.delay(1, rand=lambda: 1.0) == pytest.approx(1.1)
    assert not policy.gives_up(10_000)  # max_attempts 0 = forever
    assert RestartPolicy(max_attempts=3).gives_up(3)


def test_service_config_defaults_follow_upstream(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: svc
          kind: process.service
          process: w
          host: host
          input: ["a", 2]
    """)
    config = ServiceConfig.from_entry(load_project(project.root).entries["app:svc"])
    assert (config.process, config.host, config.input) == ("app:w", "app:host", ["a", 2])
    assert (config.start_timeout, config.stop_timeout, config.stable_threshold) == (10.0, 10.0, 5.0)
    assert config.restart == RestartPolicy(1.0, 90.0, 2.0, 0.1, 0)


# Restarts ----------------------------------------------------------------------------------
def test_crashing_service_restarts_with_exponential_backoff(project: Project) -> None:
    service_project(project, {"crasher": CRASH_NOW}, """
        - name: svc
          kind: process.service
          process: crasher
          host: host
          lifecycle:
            auto_start: true
            restart: {initial_delay: 50ms, backoff_factor: 2, max_delay: 300ms, jitter: 0, max_attempts: 5}
    """)

    async def main() -> tuple[list[float], list[float]]:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        async with runtime:
            sv = supervisor(runtime, "app:svc")
            await rec.wait(lambda: sv.gave_up)
            assert sv.restarts == 4
        return rec.times("app:svc", "failed"), rec.times("app:svc", "running")

    failed, running = asyncio.run(main())
    assert len(failed) == 5 and len(running) == 5  # crashed 5 times; ran 5 times
    expected = [0.05, 0.1, 0.2, 0.3]  # 0.4 capped at max_delay
    gaps = [running[i + 1] - failed[i] for i in range(4)]
    for gap, want in zip(gaps, expected, strict=True):
        assert want - 0.005 <= gap <= want + 0.1, (gaps, expected)


def test_attempts_reset_after_stable_threshold(project: Project) -> None:
    service_project(project, {"worker": CRASH_ON_MESSAGE}, """
        - name: svc
          kind: process.service
          process: worker
          host: host
          lifecycle:
            auto_start: true
            stable_threshold: 200ms
            restart: {initial_delay: 20ms, backoff_factor: 5, jitter: 0}
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        async with runtime:
            sv = supervisor(runtime, "app:svc")

            async def crash_and_restart(expected_attempts: int) -> float:
                runs = rec.count("app:svc", "running")
                assert sv.pid is not None
                runtime.router.send(sv.pid, "crash", None, None)
                await rec.wait(lambda: rec.count("app:svc", "running") > runs)
                assert sv.attempts == expected_attempts
                return rec.times("app:svc", "running")[-1] - rec.times("app:svc", "failed")[-1]

            assert await crash_and_restart(1) < 0.1  # 20ms
            assert await crash_and_restart(2) >= 0.095  # 100ms: the back-off grew
            await asyncio.sleep(0.25)  # stay up past stable_threshold (the time itself is under test)
            gap = await crash_and_restart(1)  # counter reset: back to the initial delay
            assert gap < 0.09
            assert sv.restarts == 3

    asyncio.run(main())


def test_gives_up_after_max_attempts_and_logs_error(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    service_project(project, {"crasher": CRASH_NOW}, """
        - name: svc
          kind: process.service
          process: crasher
          host: host
          lifecycle:
            auto_start: true
            restart: {initial_delay: 10ms, max_attempts: 3}
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        async with runtime:
            sv = supervisor(runtime, "app:svc")
            await rec.wait(lambda: sv.gave_up)
            assert (sv.state, sv.pid, sv._timer) == ("failed", None, None)
            assert "gave up after 3 attempts" in (sv.detail or "")
            assert rec.count("app:svc", "running") == 3
        assert_no_tasks_left()

    with caplog.at_level(logging.INFO, logger="wippy.supervisor"):
        asyncio.run(main())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "app:svc" in errors[0].getMessage() and "gave up after 3 attempts" in errors[0].getMessage()


@pytest.mark.parametrize("how", ["return", "terminate"])
def test_intentional_exit_is_not_restarted(project: Project, how: str) -> None:
    service_project(project, {"worker": CRASH_ON_MESSAGE}, """
        - name: svc
          kind: process.service
          process: worker
          host: host
          lifecycle:
            auto_start: true
            restart: {initial_delay: 1ms}
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        async with runtime:
            sv = supervisor(runtime, "app:svc")
            assert sv.pid is not None
            if how == "return":
                runtime.router.send(sv.pid, "return", None, None)
            else:
                host = runtime.router.host_of(sv.pid)
                assert host is not None and host.terminate(sv.pid, None)
            await rec.wait(lambda: sv.state == "exited")
            assert "not restarted" in (sv.detail or "")
            assert (sv._timer, sv.restarts, rec.count("app:svc", "running")) == (None, 0, 1)
        assert sv.state == "exited"  # stopping leaves an exited service as it was

    asyncio.run(main())


# Ordering and shutdown ---------------------------------------------------------------------
def test_requires_orders_start_and_reverse_stop(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: db
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true}
        - name: cache
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, requires: [db]}
        - name: api
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, depends_on: [cache, db]}
    """)

    async def main() -> list[tuple[str, str]]:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        async with runtime:
            assert all(supervisor(runtime, s).state == "running" for s in ("app:db", "app:cache", "app:api"))
            assert len(runtime.router.hosts["app:host"].snapshot()) == 3
        assert_no_tasks_left()
        return rec.order("starting", "running", "stopping", "stopped")

    order = asyncio.run(main())
    ids = ["app:host", "app:db", "app:cache", "app:api"]
    started = [eid for eid, st in order if st == "running"]
    assert started == ids
    for before, after in zip(ids, ids[1:], strict=False):
        assert order.index((before, "running")) < order.index((after, "starting"))
    stopped = [eid for eid, st in order if st == "stopped"]
    assert stopped == ids[::-1]
    for dependent, dependency in zip(ids[::-1], ids[::-1][1:], strict=False):
        assert order.index((dependent, "stopped")) < order.index((dependency, "stopping"))


def test_stop_terminates_a_process_that_ignores_cancel(project: Project) -> None:
    service_project(project, {"stubborn": STUBBORN}, """
        - name: svc
          kind: process.service
          process: stubborn
          host: host
          lifecycle: {auto_start: true, stop_timeout: 100ms}
    """)

    async def main() -> float:
        runtime = Runtime(load_project(project.root))
        await runtime.start()
        sv = supervisor(runtime, "app:svc")
        host = runtime.router.hosts["app:host"]
        pid = sv.pid
        assert pid is not None and host.alive(pid)
        started = time.monotonic()
        await runtime.stop()
        took = time.monotonic() - started
        assert not host.alive(pid) and sv.state == "stopped"
        assert_no_tasks_left()
        return took

    took = asyncio.run(main())
    assert 0.09 <= took < 1.0


def test_no_restart_during_shutdown(project: Project) -> None:
    service_project(project, {"crasher": CRASH_NOW}, """
        - name: svc
          kind: process.service
          process: crasher
          host: host
          lifecycle:
            auto_start: true
            restart: {initial_delay: 10s}
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        rec = Recorder(runtime)
        await runtime.start()
        sv = supervisor(runtime, "app:svc")
        await rec.wait(lambda: sv.state == "failed")
        assert sv._timer is not None  # a restart is pending...
        await runtime.stop()
        assert sv._timer is None and sv.state == "stopped"  # ...and was dropped
        assert rec.count("app:svc", "running") == 1
        assert_no_tasks_left()

    asyncio.run(main())


# Clear errors ------------------------------------------------------------------------------
def _entry(name: str, kind: str, **data: Any) -> Entry:
    return Entry("app", name, kind, Path("_index.yaml"), data)


def test_dependency_cycle_is_a_clear_error(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: a
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, requires: [b]}
        - name: b
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, requires: [a]}
    """)
    with pytest.raises(LoadError, match="cycle"):
        load_project(project.root)

    # The lifecycle checks again (registries need not come from the loader), and a
    # service's host counts as a dependency there.
    registry = Registry(Path("."))
    for e in (
        _entry("host", "process.host", lifecycle={"auto_start": True, "requires": ["svc"]}),
        _entry("w", "process.lua"),
        _entry("svc", "process.service", process="w", host="host", lifecycle={"auto_start": True}),
    ):
        registry.entries[e.id] = e
    with pytest.raises(WippyError, match=r"dependency cycle among: app:host, app:svc"):
        start_levels(registry, [registry.entries["app:svc"]])


def test_missing_host_is_a_load_error(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: svc
          kind: process.service
          process: w
          host: nowhere
          lifecycle: {auto_start: true}
    """)
    with pytest.raises(LoadError, match="host.*app:nowhere, which does not exist"):
        load_project(project.root)


def test_service_on_a_host_that_is_not_started_fails_clearly(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: svc
          kind: process.service
          process: w
          host: host
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        sv = Supervisor(runtime.kernel, runtime.registry.entries["app:svc"])
        with pytest.raises(WippyError) as info:
            await sv.start()
        assert info.value.kind == "Unavailable"
        assert "service app:svc" in info.value.message and "host app:host is not started" in info.value.message
        assert sv.state == "failed" and sv._watcher is None

    asyncio.run(main())


def test_failed_start_rolls_back_what_started(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL}, """
        - name: ok
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true}
        - name: bad
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, requires: [ok]}
    """)

    async def main() -> None:
        runtime = Runtime(load_project(project.root))
        runtime.registry.entries["app:bad"].data["process"] = "app:host"  # not spawnable
        rec = Recorder(runtime)
        with pytest.raises(WippyError, match="service app:bad: app:host is a process.host entry"):
            await runtime.start()
        assert runtime.lifecycle.services == {}
        assert rec.order("stopped") == [("app:ok", "stopped"), ("app:host", "stopped")]
        assert_no_tasks_left()

    asyncio.run(main())


# wippy run ---------------------------------------------------------------------------------
def _reader(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def test_wippy_run_prints_states_and_stops_in_reverse_on_sigterm(project: Project) -> None:
    service_project(project, {"w": WAIT_FOR_CANCEL, "crasher": CRASH_NOW}, """
        - name: db
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true}
        - name: api
          kind: process.service
          process: w
          host: host
          lifecycle: {auto_start: true, requires: [db]}
        - name: flaky
          kind: process.service
          process: crasher
          host: host
          lifecycle:
            auto_start: true
            restart: {initial_delay: 10ms, max_attempts: 2}
    """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wippy.cli", "run", str(project.root), "--status", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []

    def read_until(pred: Callable[[str], bool], timeout: float = 10.0) -> None:
        """Until some line so far matches (lines of concurrent services may come in any order)."""
        deadline = time.monotonic() + timeout
        while not any(pred(s) for s in seen):
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, "wippy run ended early:\n" + "\n".join(seen)
            seen.append(line)

    try:
        read_until(lambda s: "press Ctrl-C" in s)
        read_until(lambda s: "gave up after 2 attempts" in s and s.startswith("wippy: app:flaky failed"))
        read_until(lambda s: s.startswith("SERVICE"))  # the --status table
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while (line := lines.get(timeout=5)) is not None:
        seen.append(line)
    out = "\n".join(seen)
    assert "wippy: app:flaky failed - Internal: " in out and "restarting in" in out
    # the log line (console format: time, level, logger, message, tab-separated)
    assert any("\tERROR\twippy.supervisor\tservice app:flaky gave up after 2 attempts" in s for s in seen), out
    table = seen.index(next(s for s in seen if s.startswith("SERVICE")))
    assert any(s.startswith("app:api") and "running" in s for s in seen[table:table + 6])
    assert any(s.startswith("PID") for s in seen[table:])

    def at(text: str) -> int:
        return next(i for i, s in enumerate(seen) if s.startswith(text))

    assert at("wippy: app:host running") < at("wippy: app:db starting") < at("wippy: app:db running")
    assert at("wippy: app:db running") < at("wippy: app:api starting")
    assert at("wippy: stopping") < at("wippy: app:api stopping") < at("wippy: app:api stopped")
    assert at("wippy: app:api stopped") < at("wippy: app:db stopping") < at("wippy: app:db stopped")
    assert at("wippy: app:db stopped") < at("wippy: app:host stopping") < at("wippy: stopped")
