"""Start options that shape a workflow's runs on workflow.host: execution_timeout,
run_timeout, start_delay, retry_policy, cron_schedule and parent_close_policy -- each
durable (re-armed from the store after a restart) -- and the cron parser they rely on.

Workflows are real Lua; they are started from Python through the host (as process.spawn
does) with a Python callback PID as the monitor, or by a Lua parent workflow. Waits poll
the store with a deadline; the few plain sleeps let wall-clock time pass (a delay, a
runtime that is down), they never stand in for an event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wippy import Runtime, load_project
from wippy.actors.router import make_pid
from wippy.errors import WippyError
from wippy.providers import ExitResult, SpawnRequest
from wippy.providers._durable import cron
from wippy.providers.workflow.execution import RUN_KEY
from wippy.providers.workflow.journal import JournalReader, RunRecord

T = TypeVar("T")
HOST = "app:wfs"
DEADLINE = 5.0  # seconds any single wait may take

INDEX = """\
namespace: app
entries:
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}
  - {name: kids, kind: workflow.host, store: data/kids.db, lifecycle: {auto_start: true}}
  - {name: procs, kind: process.host, lifecycle: {auto_start: true}}
  - {name: waiter, kind: workflow.lua, source: file://wf.lua, method: waiter, modules: [time, workflow, channel]}
  - {name: flaky, kind: workflow.lua, source: file://wf.lua, method: flaky, modules: [time, workflow, channel]}
  - {name: stall_after, kind: workflow.lua, source: file://wf.lua, method: stall_after, modules: [time, workflow, channel]}
  - {name: tick, kind: workflow.lua, source: file://wf.lua, method: tick, modules: [time, workflow, channel]}
  - {name: parent, kind: workflow.lua, source: file://wf.lua, method: parent, modules: [time, workflow, channel]}
  - {name: child, kind: workflow.lua, source: file://wf.lua, method: child, modules: [time, workflow, channel]}
  - {name: retry_parent, kind: workflow.lua, source: file://wf.lua, method: retry_parent, modules: [time, workflow, channel]}
"""

WF = """\
local time = require("time")
local workflow = require("workflow")

-- Notes when its code started, then waits for a message.
local function waiter()
  local started = time.now():unix_nano()
  local msg = process.inbox():receive()
  return {started = started, got = msg:payload():data(), topic = msg:topic()}
end

-- Fails (with an error of `kind`, retryable or not) until attempt `succeed_on`.
local function flaky(succeed_on, kind, retryable)
  local info = workflow.info()
  if succeed_on == 0 or info.attempt < succeed_on then
    return nil, errors.new({kind = kind or "Unavailable", retryable = retryable ~= false,
                            message = "attempt " .. info.attempt .. " failed"})
  end
  return {attempt = info.attempt, started = time.now():unix_nano()}
end

-- Fails (retryably) on its first attempt; later attempts wait forever.
local function stall_after()
  if workflow.info().attempt == 1 then
    return nil, errors.new({kind = "Unavailable", retryable = true, message = "first attempt"})
  end
  process.inbox():receive()
  return "unreachable"
end

-- One cron run: fails if asked to, else reports its attempt and start time.
local function tick(fail)
  if fail then return nil, errors.new({kind = "Invalid", message = "tick failed"}) end
  return {attempt = workflow.info().attempt, started = time.now():unix_nano()}
end

-- Starts one child per parent_close_policy, waits for "finish", then ends as `how` says.
local function parent(tag, how, child_host)
  for _, policy in ipairs({"terminate", "request_cancel", "abandon", "default"}) do
    local opts = {["temporal.workflow.id"] = tag .. "-" .. policy}
    if policy ~= "default" then opts["temporal.workflow.parent_close_policy"] = policy end
    local _, err = process.with_options(opts):spawn("app:child", child_host or "app:wfs", policy)
    if err then error(err) end
  end
  process.inbox():receive()
  if how == "fail" then
    return nil, errors.new({kind = "Invalid", message = "parent failed"})
  end
  return "parent done"
end

-- Ends on a CANCEL event or on a message, whichever comes first.
local function child(policy)
  local channel = require("channel")
  local events, inbox = process.events(), process.inbox()
  local r = channel.select({events:case_receive(), inbox:case_receive()})
  if r.channel == events then return {policy = policy, got = r.value.kind} end
  return {policy = policy, got = "message"}
end

-- Waits for a child (abandoned if this run closes first) that is told which attempt started it.
local function retry_parent()
  local attempt = workflow.info().attempt
  local result, err = process.with_options({["temporal.workflow.parent_close_policy"] = "abandon"})
    :exec("app:child", "app:wfs", attempt)
  return {attempt = attempt, result = result, err = err and tostring(err)}
end

return {waiter = waiter, flaky = flaky, stall_after = stall_after, tick = tick, parent = parent, child = child,
        retry_parent = retry_parent}
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "_index.yaml").write_text(INDEX)
    (tmp_path / "wf.lua").write_text(WF)
    return tmp_path


@pytest.fixture
def fast_cron() -> Iterator[None]:
    """One cron minute lasts 0.1 s (the real schedule computation on a faster clock)."""
    cron.set_minute(0.1)
    yield
    cron.set_minute(None)


def runtime(root: Path) -> Runtime:
    return Runtime(load_project(root))


class Exits:
    """A monitor: a PID whose EXIT events are kept, results as Python data."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.events: list[dict[str, Any]] = []
        self.pid = rt.router.callback_pid(self._got)

    def _got(self, event: dict[str, Any]) -> None:
        if event["kind"] == "EXIT":
            vm = self.rt.vm
            result = event["result"]
            self.events.append({"from": event["from"], "value": vm.to_python(result["value"]),
                                "error": vm.to_python(result["error"])})

    async def next(self) -> dict[str, Any]:
        await until(lambda: self.events or None, "an EXIT event")
        return self.events[0]


async def until(check: Callable[[], T | None | Awaitable[T | None]], what: str, timeout: float = DEADLINE) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def start(rt: Runtime, entry: str, *args: Any, options: dict[str, Any] | None = None,
                monitor: Exits | None = None, messages: list[tuple[str, Any]] | None = None,
                host: str = HOST) -> str:
    """process.spawn of a workflow, from Python; returns once the start is durable."""
    provider = rt.router.hosts[host]
    request = SpawnRequest(entry, rt.kernel.lua_args(list(args)), parent=monitor.pid if monitor else None,
                           options=options or {}, monitor=monitor is not None,
                           messages=[(t, rt.vm.to_lua(v)) for t, v in messages or ()])
    pid = provider.spawn(request)
    await provider.barrier()
    return pid


async def send(rt: Runtime, pid: str, topic: str, payload: Any) -> None:
    assert rt.router.send(pid, topic, rt.vm.to_lua(payload), None)
    await rt.router.host_of(pid).barrier()


def runs(root: Path, workflow_id: str, store: str = "data/wf.db") -> list[RunRecord]:
    """Every run of ``workflow_id``, oldest first."""
    reader = JournalReader(str(root / store))
    try:
        return [r for r in reader.runs() if r.workflow_id == workflow_id]
    finally:
        reader.close()


def meta(run: RunRecord) -> dict[str, Any]:
    return run.options[RUN_KEY]


def wid(pid: str) -> str:
    return pid.split("|", 1)[1].rstrip("}")


def closed_with(root: Path, workflow_id: str, count: int, status: str | None = None,
                store: str = "data/wf.db") -> Callable[[], list[RunRecord] | None]:
    """A check: the runs of ``workflow_id`` once there are ``count`` and the last is closed
    (with ``status``, if given)."""
    def check() -> list[RunRecord] | None:
        found = runs(root, workflow_id, store)
        if len(found) >= count and found[-1].status != "running" and (status is None or found[-1].status == status):
            return found
        return None
    return check


# Timeouts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["run_timeout", "execution_timeout"])
def test_a_timeout_fails_the_workflow_with_timeout_and_monitors_get_it(root: Path, option: str) -> None:
    async def main() -> tuple[dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:waiter", options={f"temporal.workflow.{option}": "300ms"}, monitor=exits)
            event = await exits.next()
            return event, runs(root, wid(pid))

    event, found = asyncio.run(main())
    err = event["error"]
    assert isinstance(err, WippyError) and err.kind == "Timeout", event
    assert option.replace("_", " ") in err.message and "0.3s" in err.message
    assert event["value"] is None
    (run,) = found
    assert run.status == "failed" and run.error.kind == "Timeout"
    assert 0.3 <= run.closed - meta(run)["start_at"] < 1.0


def test_timeouts_are_rearmed_from_the_stored_start_time_after_a_restart(root: Path) -> None:
    """Down from 0.1 s to past 0.6 s: the timeouts still fire 1 s after the start, not 1 s
    after the restart."""
    async def first() -> tuple[str, str]:
        async with runtime(root) as rt:
            a = await start(rt, "app:waiter", options={"temporal.workflow.run_timeout": 1000})
            b = await start(rt, "app:waiter", options={"temporal.workflow.execution_timeout": "1s"})
            await asyncio.sleep(0.1)
            return a, b

    async def second(pids: tuple[str, str]) -> list[RunRecord]:
        async with runtime(root) as rt:
            assert all(rt.router.hosts[HOST].alive(pid) for pid in pids)
            done = []
            for pid in pids:
                done += await until(closed_with(root, wid(pid), 1, "failed"), f"{pid} to time out")
            return done

    pids = asyncio.run(first())
    time.sleep(0.5)  # the runtime is down for a while
    for run in asyncio.run(second(pids)):
        assert run.error.kind == "Timeout", run.error
        took = run.closed - meta(run)["start_at"]
        assert 1.0 <= took < 1.45, took  # re-armed from the restart it would be >= 1.6


def test_the_execution_timeout_spans_retries_and_ends_the_workflow(root: Path) -> None:
    """Attempt 1 fails, attempt 2 waits forever: the execution timeout (counted from the
    first start) ends attempt 2 and no retry follows, although the policy allows more."""
    async def main() -> tuple[dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:stall_after", monitor=exits, options={
                "temporal.workflow.execution_timeout": "500ms",
                "temporal.workflow.retry_policy": {"initial_interval": 50, "maximum_attempts": 10}})
            event = await exits.next()
            return event, runs(root, wid(pid))

    event, found = asyncio.run(main())
    assert event["error"].kind == "Timeout" and "execution timeout" in event["error"].message
    assert [r.status for r in found] == ["failed", "failed"]
    assert found[0].error.kind == "Unavailable" and found[1].error.kind == "Timeout"
    assert 0.5 <= found[1].closed - meta(found[0])["start_at"] < 1.0


def test_run_timeouts_are_retried_by_the_retry_policy(root: Path) -> None:
    async def main() -> tuple[dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:waiter", monitor=exits, options={
                "temporal.workflow.run_timeout": "150ms",
                "temporal.workflow.retry_policy": {"initial_interval": "20ms", "maximum_attempts": 3}})
            event = await exits.next()
            return event, runs(root, wid(pid))

    event, found = asyncio.run(main())
    assert event["error"].kind == "Timeout" and "run timeout" in event["error"].message
    assert [meta(r)["attempt"] for r in found] == [1, 2, 3]
    assert all(r.status == "failed" and r.error.kind == "Timeout" for r in found)


# Start delay -----------------------------------------------------------------------------------
def test_start_delay_starts_the_code_late_and_keeps_messages_for_it(root: Path) -> None:
    async def main() -> tuple[float, dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            spawned = time.time()
            pid = await start(rt, "app:waiter", options={"temporal.workflow.start_delay": "400ms"}, monitor=exits)
            await send(rt, pid, "early", {"n": 1})  # kept until the code runs
            assert rt.router.hosts[HOST].snapshot()[0]["status"] == "waiting to start"
            event = await exits.next()
            return spawned, event, runs(root, wid(pid))

    spawned, event, (run,) = asyncio.run(main())
    assert event["error"] is None, event
    value = event["value"]
    assert value["topic"] == "early" and value["got"] == {"n": 1}
    assert value["started"] / 1e9 - spawned >= 0.4
    assert run.status == "completed" and meta(run)["start_at"] - run.created == pytest.approx(0.4, abs=0.01)


def test_start_delay_survives_a_restart(root: Path) -> None:
    """Stopped during the delay, restarted after a while: the code starts when the delay
    ends (not at the restart, not a full delay after it) and gets the early message."""
    async def first() -> tuple[str, float]:
        async with runtime(root) as rt:
            spawned = time.time()
            pid = await start(rt, "app:waiter", options={"temporal.workflow.start_delay": 1000})
            await send(rt, pid, "early", "kept")
            return pid, spawned

    async def second(pid: str) -> list[RunRecord]:
        async with runtime(root) as rt:
            assert rt.router.hosts[HOST].snapshot()[0]["status"] == "waiting to start"
            return await until(closed_with(root, wid(pid), 1), "the delayed workflow")

    pid, spawned = asyncio.run(first())
    time.sleep(0.3)  # down part of the delay
    (run,) = asyncio.run(second(pid))
    assert run.status == "completed", run.error
    assert run.result["got"] == "kept"
    started = run.result["started"] / 1e9 - spawned
    assert 1.0 <= started < 1.4, started


# Retry policy ----------------------------------------------------------------------------------
def test_a_failed_run_is_retried_with_backoff_and_only_the_outcome_reaches_monitors(root: Path) -> None:
    async def main() -> tuple[list[dict[str, Any]], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:flaky", 3, monitor=exits, options={"temporal.workflow.retry_policy": {
                "initial_interval": 100, "backoff_coefficient": 2.0, "maximum_interval": "1s",
                "maximum_attempts": 5}})
            await exits.next()
            found = await until(closed_with(root, wid(pid), 3, "completed"), "the third run")
            return exits.events, found

    events, found = asyncio.run(main())
    assert len(events) == 1 and events[0]["error"] is None, events
    assert events[0]["value"]["attempt"] == 3
    assert [(r.status, meta(r)["attempt"]) for r in found] == [("failed", 1), ("failed", 2), ("completed", 3)]
    assert [r.error.message for r in found[:2]] == ["attempt 1 failed", "attempt 2 failed"]
    assert len({r.run_id for r in found}) == 3 and all(r.input == [3] for r in found)
    gaps = [meta(b)["start_at"] - a.closed for a, b in zip(found, found[1:], strict=False)]
    assert 0.09 <= gaps[0] < 0.15 and 0.19 <= gaps[1] < 0.25, gaps  # (closed is stamped just after)


@pytest.mark.parametrize(("policy", "args", "attempts"), [
    ({"initial_interval": 10, "maximum_attempts": 3}, (0,), 3),
    ({"initial_interval": 10, "non_retryable_error_types": ["Unavailable"]}, (0,), 1),
    ({"initial_interval": 10}, (0, "Invalid", False), 1),  # retryable() is false
], ids=["maximum_attempts", "non_retryable_error_types", "not_retryable"])
def test_the_final_failure_reaches_monitors_when_no_retry_remains(
        root: Path, policy: dict[str, Any], args: tuple[Any, ...], attempts: int) -> None:
    async def main() -> tuple[list[dict[str, Any]], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:flaky", *args, monitor=exits,
                              options={"temporal.workflow.retry_policy": policy})
            await exits.next()
            return exits.events, runs(root, wid(pid))

    events, found = asyncio.run(main())
    assert len(events) == 1
    assert events[0]["error"].message == f"attempt {attempts} failed"
    assert [r.status for r in found] == ["failed"] * attempts


def test_terminate_during_a_retry_backoff_ends_the_workflow(root: Path) -> None:
    async def main() -> tuple[dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            pid = await start(rt, "app:flaky", 0, monitor=exits,
                              options={"temporal.workflow.retry_policy": {"initial_interval": "10s"}})
            await until(lambda: len(runs(root, wid(pid))) == 2 or None, "the retry to be scheduled")
            assert not exits.events
            assert rt.router.hosts[HOST].terminate(pid, None)
            event = await exits.next()
            return event, runs(root, wid(pid))

    event, found = asyncio.run(main())
    assert event["error"].kind == "Canceled"
    assert [r.status for r in found] == ["failed", "terminated"]


def test_a_retry_backoff_survives_a_restart(root: Path) -> None:
    async def first() -> str:
        async with runtime(root) as rt:
            pid = await start(rt, "app:flaky", 2, options={"temporal.workflow.retry_policy": {"initial_interval": 800}})
            await until(lambda: len(runs(root, wid(pid))) == 2 or None, "the retry to be scheduled")
            return pid

    async def second(pid: str) -> list[RunRecord]:
        async with runtime(root) as rt:
            assert rt.router.hosts[HOST].snapshot()[0]["status"] == "waiting to start"
            return await until(closed_with(root, wid(pid), 2, "completed"), "attempt 2")

    pid = asyncio.run(first())
    time.sleep(0.2)
    failed, done = asyncio.run(second(pid))
    assert done.result["attempt"] == 2
    waited = done.result["started"] / 1e9 - failed.closed
    assert 0.79 <= waited < 1.2, waited


@pytest.mark.parametrize("what", ["message", "terminate"])
def test_what_arrives_while_a_run_closes_into_a_retry_goes_to_the_workflow(root: Path, what: str) -> None:
    """A message or a terminate that reaches the workflow between a failed run's close and
    the commit of the next run is not lost: the message reaches the next run, the
    terminate ends the workflow (the next run never starts)."""
    async def main() -> tuple[dict[str, Any], list[RunRecord]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            host = rt.router.hosts[HOST]
            pid = await start(rt, "app:waiter", monitor=exits,
                              options={"temporal.workflow.retry_policy": {"initial_interval": 10}})
            error = rt.vm.to_lua(WippyError("Unavailable", "fail this run", retryable=True))
            host.actors[pid].close_run(ExitResult(error=error), "failed")  # as if the code had failed ...
            if what == "message":  # ... and in the same instant
                await send(rt, pid, "late", "kept")
            else:
                assert host.terminate(pid, None)
            event = await exits.next()
            return event, runs(root, wid(pid))

    event, found = asyncio.run(main())
    if what == "message":
        assert event["error"] is None and event["value"]["got"] == "kept"
        assert [r.status for r in found] == ["failed", "completed"]
    else:
        assert event["error"].kind == "Canceled"
        assert [r.status for r in found] == ["failed", "terminated"]


def test_a_retried_run_does_not_get_the_result_of_an_earlier_runs_child(root: Path) -> None:
    """Attempt 1 waits on a child (process.exec, abandon) and times out; attempt 2 waits on
    a child of its own (a new default ID, same history position). The first child ends
    first, but it was detached when attempt 1 closed: attempt 2 gets its own child's result."""
    async def main() -> tuple[RunRecord, list[RunRecord]]:
        async with runtime(root) as rt:
            await start(rt, "app:retry_parent", options={
                "temporal.workflow.id": "rp", "temporal.workflow.run_timeout": "600ms",
                "temporal.workflow.retry_policy": {"initial_interval": 10}})
            kids = await until(lambda: k if len(k := _children(root, "rp")) == 2 else None, "both children")
            first, second = sorted(kids, key=lambda r: r.created)
            assert first.workflow_id == "rp/0" and second.workflow_id == "rp/run2/0"
            await send(rt, make_pid(HOST, first.workflow_id), "go", None)
            await until(closed_with(root, first.workflow_id, 1, "completed"), "the first child")
            assert rt.router.hosts[HOST].alive(make_pid(HOST, "rp"))  # attempt 2 still waits ...
            await send(rt, make_pid(HOST, second.workflow_id), "go", None)  # ... for this one
            found = await until(closed_with(root, "rp", 2, "completed"), "attempt 2")
            return found[-1], [first, second]

    run, _ = asyncio.run(main())
    assert run.result == {"attempt": 2, "result": {"policy": 2, "got": "message"}}


def _children(root: Path, parent: str) -> list[RunRecord]:
    reader = JournalReader(str(root / "data/wf.db"))
    try:
        return [r for r in reader.runs() if r.workflow_id.startswith(parent + "/")]
    finally:
        reader.close()


# Cron ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fail", [False, True], ids=["completing", "failing"])
def test_cron_runs_start_at_scheduled_times_until_terminated(root: Path, fast_cron: None, fail: bool) -> None:
    schedule = cron.parse("*/2 * * * *")  # every 0.2 s on the fast clock

    async def main() -> tuple[float, list[RunRecord], list[dict[str, Any]]]:
        async with runtime(root) as rt:
            exits = Exits(rt)
            spawned = time.time()
            pid = await start(rt, "app:tick", fail, monitor=exits,
                              options={"temporal.workflow.cron_schedule": "*/2 * * * *"})
            await until(lambda: len(runs(root, wid(pid))) >= 4 or None, "three cron runs")
            assert not exits.events  # the workflow goes on
            assert rt.router.hosts[HOST].terminate(pid, None)
            await exits.next()
            return spawned, runs(root, wid(pid)), exits.events

    spawned, found, events = asyncio.run(main())
    assert len(events) == 1 and events[0]["error"].kind == "Canceled"
    starts = [meta(r)["start_at"] for r in found]
    assert spawned < starts[0] <= spawned + 0.21  # the first run waited for the first slot
    assert starts[0] == pytest.approx(cron.next_fire(schedule, starts[0] - 0.01), abs=1e-3)
    for before, after in zip(starts, starts[1:], strict=False):
        assert after == pytest.approx(cron.next_fire(schedule, before), abs=1e-3)
        assert after - before == pytest.approx(0.2, abs=0.01)
    done = found[:-1]
    assert all(r.status == ("failed" if fail else "completed") for r in done)
    assert found[-1].status == "terminated"
    if not fail:
        assert all(r.result["attempt"] == 1 and r.result["started"] / 1e9 >= meta(r)["start_at"] for r in done)


def test_cron_goes_on_after_a_restart(root: Path, fast_cron: None) -> None:
    schedule = cron.parse("*/3 * * * *")  # every 0.3 s on the fast clock

    async def first() -> str:
        async with runtime(root) as rt:
            pid = await start(rt, "app:tick", False, options={"temporal.workflow.cron_schedule": "*/3 * * * *"})
            await until(lambda: len(runs(root, wid(pid))) >= 2 or None, "the first cron run")
            return pid

    async def second(pid: str) -> list[RunRecord]:
        async with runtime(root) as rt:
            found = await until(lambda: r if len(r := runs(root, wid(pid))) >= 4 else None, "two more cron runs")
            assert rt.router.hosts[HOST].terminate(pid, None)
            return found

    pid = asyncio.run(first())
    found = asyncio.run(second(pid))
    assert [r.status for r in found[:3]] == ["completed"] * 3
    starts = [meta(r)["start_at"] for r in found]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    for at in starts:  # each on the schedule (one may be skipped if the runtime was down over it)
        assert at == pytest.approx(cron.next_fire(schedule, at - 0.01), abs=1e-3)
    assert all(r.result["started"] / 1e9 >= meta(r)["start_at"] for r in found[:3])


# Parent close policy ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["complete", "fail", "terminate"])
def test_parent_close_policy_applies_when_the_parent_closes(root: Path, how: str) -> None:
    tag = f"p-{how}"

    async def main() -> dict[str, list[RunRecord]]:
        async with runtime(root) as rt:
            pid = await start(rt, "app:parent", tag, how)
            host = rt.router.hosts[HOST]
            await until(lambda: host.alive(make_pid(HOST, f"{tag}-default")) or None, "the children")
            if how == "terminate":
                host.terminate(pid, None)
            else:
                await send(rt, pid, "finish", None)
            for policy in ("terminate", "default", "request_cancel"):
                await until(closed_with(root, f"{tag}-{policy}", 1), f"child {policy} to close")
            abandoned = make_pid(HOST, f"{tag}-abandon")
            assert host.alive(abandoned)  # it carries on
            await send(rt, abandoned, "go", None)
            await until(closed_with(root, f"{tag}-abandon", 1), "the abandoned child")
            return {p: runs(root, f"{tag}-{p}") for p in ("terminate", "default", "request_cancel", "abandon")}

    children = asyncio.run(main())
    assert children["terminate"][0].status == "terminated"
    assert children["default"][0].status == "terminated"
    assert "parent_close_policy terminate" in children["default"][0].error.message
    assert children["request_cancel"][0].status == "completed"
    assert children["request_cancel"][0].result == {"policy": "request_cancel", "got": "pid.cancel"}
    assert children["abandon"][0].result == {"policy": "abandon", "got": "message"}


def test_parent_close_policy_is_applied_after_a_restart_when_it_could_not_be_before(root: Path) -> None:
    """The children live on another workflow host, which is down when the parent closes:
    the next start of the runtime applies the policies (once)."""
    tag = "px"

    async def first() -> None:
        async with runtime(root) as rt:
            pid = await start(rt, "app:parent", tag, "complete", "app:kids", options={"temporal.workflow.id": tag})
            kids = rt.router.hosts["app:kids"]
            await until(lambda: kids.alive(make_pid("app:kids", f"{tag}-default")) or None, "the children")
            await kids.stop(1.0)
            await send(rt, pid, "finish", None)
            await until(closed_with(root, tag, 1, "completed"), "the parent")

    async def second() -> None:
        async with runtime(root) as rt:
            for policy in ("terminate", "default", "request_cancel"):
                await until(closed_with(root, f"{tag}-{policy}", 1, store="data/kids.db"), f"child {policy}")
            assert rt.router.hosts["app:kids"].alive(make_pid("app:kids", f"{tag}-abandon"))

    asyncio.run(first())
    assert all(runs(root, f"{tag}-{p}", "data/kids.db")[0].status == "running"
               for p in ("terminate", "default", "request_cancel", "abandon"))
    asyncio.run(second())
    kids = {p: runs(root, f"{tag}-{p}", "data/kids.db")[0] for p in ("terminate", "default", "request_cancel")}
    assert kids["terminate"].status == kids["default"].status == "terminated"
    assert kids["request_cancel"].result == {"policy": "request_cancel", "got": "pid.cancel"}


# Bad options -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"temporal.workflow.cron_schedule": "61 * * * *"}, "minute 61 is outside 0-59"),
    ({"temporal.workflow.cron_schedule": "0 0 31 2 *"}, "never matches"),
    ({"temporal.workflow.retry_policy": {"maximum_attempts": -1}}, "temporal.workflow.retry_policy.maximum_attempts"),
    ({"temporal.workflow.cron_schedule": "* * * * *", "temporal.workflow.start_delay": "1s"}, "cannot be used together"),
    ({"temporal.workflow.parent_close_policy": "orphan"}, "parent_close_policy 'orphan'"),
])
def test_unusable_options_are_refused_at_the_start(root: Path, options: dict[str, Any], message: str) -> None:
    async def main() -> None:
        async with runtime(root) as rt:
            with pytest.raises(WippyError) as info:
                await start(rt, "app:waiter", options=options)
            assert info.value.kind == "Invalid" and message in info.value.message, info.value

    asyncio.run(main())


# The cron parser -------------------------------------------------------------------------------
def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(value: float) -> str:
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("* * * * *", "2024-05-01 10:00:00", ["2024-05-01 10:01", "2024-05-01 10:02"]),
    ("* * * * *", "2024-05-01 10:00:30", ["2024-05-01 10:01"]),  # strictly after, whole minutes
    ("*/15 * * * *", "2024-05-01 10:07:00", ["2024-05-01 10:15", "2024-05-01 10:30", "2024-05-01 10:45",
                                             "2024-05-01 11:00"]),
    ("0 */6 * * *", "2024-05-01 05:59:00", ["2024-05-01 06:00", "2024-05-01 12:00", "2024-05-01 18:00",
                                            "2024-05-02 00:00"]),
    ("5,10-12 3 * * *", "2024-05-01 03:06:00", ["2024-05-01 03:10", "2024-05-01 03:11", "2024-05-01 03:12",
                                                "2024-05-02 03:05"]),
    ("10-30/10 * * * *", "2024-05-01 00:00:00", ["2024-05-01 00:10", "2024-05-01 00:20", "2024-05-01 00:30",
                                                 "2024-05-01 01:10"]),
    ("50/5 * * * *", "2024-05-01 00:00:00", ["2024-05-01 00:50", "2024-05-01 00:55", "2024-05-01 01:50"]),
    ("0 0 1 * *", "2024-01-31 12:00:00", ["2024-02-01 00:00", "2024-03-01 00:00"]),
    ("0 0 31 * *", "2024-04-01 00:00:00", ["2024-05-31 00:00", "2024-07-31 00:00"]),  # skips 30-day months
    ("0 0 29 2 *", "2024-03-01 00:00:00", ["2028-02-29 00:00"]),  # leap years only
    ("0 0 29 2 *", "2097-01-01 00:00:00", ["2104-02-29 00:00"]),  # 2100 is not a leap year
    ("0 12 * * 1-5", "2024-05-03 12:00:00", ["2024-05-06 12:00", "2024-05-07 12:00"]),  # Fri -> Mon
    ("0 0 * * 0", "2024-05-01 00:00:00", ["2024-05-05 00:00", "2024-05-12 00:00"]),  # Sundays
    ("0 0 * * 7", "2024-05-01 00:00:00", ["2024-05-05 00:00"]),  # 7 is Sunday too
    ("0 0 * * SAT,sun", "2024-05-01 00:00:00", ["2024-05-04 00:00", "2024-05-05 00:00", "2024-05-11 00:00"]),
    ("0 0 1 jan,JUL *", "2024-02-01 00:00:00", ["2024-07-01 00:00", "2025-01-01 00:00"]),
    ("0 0 13 * 5", "2024-09-01 00:00:00", ["2024-09-06 00:00", "2024-09-13 00:00", "2024-09-20 00:00"]),  # either
    ("0 0 13 * *", "2024-09-01 00:00:00", ["2024-09-13 00:00", "2024-10-13 00:00"]),
    ("0 0 ? * 5", "2024-09-01 00:00:00", ["2024-09-06 00:00", "2024-09-13 00:00"]),  # ? is *
    ("0 0 */10 * 1", "2024-09-01 00:00:00", ["2024-09-02 00:00", "2024-09-09 00:00", "2024-09-11 00:00"]),
    ("59 23 31 12 *", "2024-12-31 23:59:00", ["2025-12-31 23:59"]),
    ("@hourly", "2024-05-01 10:30:00", ["2024-05-01 11:00"]),
    ("@daily", "2024-05-01 10:30:00", ["2024-05-02 00:00"]),
    ("@weekly", "2024-05-01 10:30:00", ["2024-05-05 00:00"]),
    ("@monthly", "2024-05-01 10:30:00", ["2024-06-01 00:00"]),
    ("@yearly", "2024-05-01 10:30:00", ["2025-01-01 00:00"]),
])
def test_cron_next_times(expr: str, after: str, expected: list[str]) -> None:
    schedule = cron.parse(expr)
    got, at = [], ts(after)
    for _ in expected:
        at = schedule.next_after(at)
        got.append(iso(at))
    assert got == expected


@pytest.mark.parametrize(("expr", "message"), [
    ("* * * *", "must have 5 fields"),
    ("* * * * * *", "must have 5 fields"),
    ("60 * * * *", "minute 60 is outside 0-59"),
    ("* 24 * * *", "hour 24 is outside 0-23"),
    ("* * 0 * *", "day of month 0 is outside 1-31"),
    ("* * * 13 *", "month 13 is outside 1-12"),
    ("* * * * 8", "day of week 8 is outside 0-7"),
    ("*/0 * * * *", "bad step '0'"),
    ("*/ * * * *", "bad step ''"),
    ("5-1 * * * *", "runs backwards"),
    ("1,,2 * * * *", "empty item"),
    ("x * * * *", "'x' is not a number"),
    ("* * * FOO *", "'FOO' is not a number"),
    ("0 0 30 2 *", "never matches"),
])
def test_cron_parse_errors(expr: str, message: str) -> None:
    with pytest.raises(WippyError) as info:
        cron.parse(expr)
    assert info.value.kind == "Invalid" and message in info.value.message, info.value.message


def test_cron_clock_is_injectable_and_a_shorter_minute_only_scales_time(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = cron.parse("*/5 * * * *")
    now = ts("2024-05-01 10:02:00")
    monkeypatch.setattr(cron, "clock", lambda: now)
    assert iso(cron.next_fire(schedule)) == "2024-05-01 10:05"  # "now" is the injected clock
    cron.set_minute(1.0)  # anchored at the injected now
    try:
        # one cron minute is a second: */5 fires every 5 s, on the same computation
        first = cron.next_fire(schedule)
        assert first - now == pytest.approx(3.0)  # 10:02 -> 10:05 is three cron minutes
        assert cron.next_fire(schedule, first) - first == pytest.approx(5.0)
    finally:
        cron.set_minute(None)
    assert iso(cron.next_fire(schedule, now)) == "2024-05-01 10:05"


# ---------------------------------------------------------------------------------------
# Option names and retry rules shared by both durable providers
# ---------------------------------------------------------------------------------------
def test_workflow_options_take_canonical_legacy_and_short_names() -> None:
    from wippy.providers._durable.options import StartOptions

    assert StartOptions.parse({"workflow.id": "a"}).workflow_id == "a"
    assert StartOptions.parse({"temporal.workflow.id": "b"}).workflow_id == "b"
    assert StartOptions.parse({"id": "c"}).workflow_id == "c"
    # upstream's canonical key wins over its legacy alias, whichever comes first
    both = {"temporal.workflow.id": "legacy", "workflow.id": "canonical"}
    assert StartOptions.parse(both).workflow_id == "canonical"
    assert StartOptions.parse(dict(reversed(both.items()))).workflow_id == "canonical"
    options = StartOptions.parse({"workflow.id_conflict_policy": "fail", "workflow.start_delay": "2s"})
    assert (options.conflict_policy, options.start_delay) == ("fail", 2.0)


def test_activity_options_take_the_legacy_prefix_and_camel_case_policy_fields() -> None:
    from wippy.providers._durable.options import ActivityOptions, RetryPolicy

    options = ActivityOptions.parse({
        "temporal.activity.retry_policy": {"maximumAttempts": 3, "initialInterval": "2s",
                                           "BackoffCoefficient": 1.5, "nonRetryableErrorTypes": "Invalid"},
        "temporal.activity.start_to_close_timeout": "5s",
    })
    assert options.start_to_close == 5.0
    assert options.retry_policy == RetryPolicy(initial_interval=2.0, backoff_coefficient=1.5, maximum_attempts=3,
                                               non_retryable_error_types=("Invalid",))
    # the canonical key wins
    both = ActivityOptions.parse({"activity.retry_policy": {"maximum_attempts": 1},
                                  "temporal.activity.retry_policy": {"maximum_attempts": 9}})
    assert both.retry_policy is not None and both.retry_policy.maximum_attempts == 1


@pytest.mark.parametrize(("retryable", "kind", "attempt", "expected"), [
    (True, "Unavailable", 1, True),
    (None, "Unavailable", 1, True),  # unspecified is retried, as Temporal does
    (False, "Unavailable", 1, False),
    (True, "Invalid", 1, False),  # listed as non-retryable
    (True, "Unavailable", 3, False),  # out of attempts
])
def test_retry_policy_retries_unless_the_error_says_no(retryable: bool | None, kind: str, attempt: int,
                                                      expected: bool) -> None:
    from wippy.providers._durable.options import RetryPolicy

    policy = RetryPolicy(maximum_attempts=3, non_retryable_error_types=("Invalid",))
    assert policy.retries(WippyError(kind, "x", retryable=retryable), attempt) is expected
