"""Durable workflows across restarts, against every provider (tests/conformance).

Each test runs a workflow, stops the runtime part-way (or kills the process), starts a
new runtime on the same store and lets it finish. What was recorded must be replayed,
never done again: activities report each execution to a counter that lives in the
runtime (so every runtime counts from zero), and the results must equal those of an
uninterrupted run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

from tests.conformance.harness import (  # noqa: F401  (fixtures)
    Conformance,
    Outcome,
    Provider,
    conformance_fixture,
    provider_fixture,
    until,
)
from wippy import Runtime

pytest_plugins = ["tests.temporal_server"]


def total_hits(phases: list[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in phases:
        total.update(counts["hits"])
    return total


# Everything recorded -----------------------------------------------------------------------
RECORDED_STEPS = ["recorded.values", "r.sync", "r.async", "r.executor", "r.child_exec", "r.child_spawn",
                  "recorded.more", "r.last"]


def test_recorded_commands_are_replayed_not_executed_again(conformance: Conformance) -> None:
    """Activities (call, async, executor), time.now, uuid, crypto.random_bytes,
    workflow.version, sleep/after/ticker, child exec and spawn, messages sent and received:
    stopped at three points and resumed, the run ends as an uninterrupted one, nothing
    recorded runs twice, and the message the workflow sent arrives once."""
    cf = conformance

    async def uninterrupted() -> tuple[Outcome, Outcome, dict[str, Any]]:
        async with cf.runtime() as rt:
            sink = await cf.start(rt, "conf:wf_sink")
            pid = await cf.start(rt, "conf:wf_recorded", {"sink": sink})
            for _ in range(3):
                await cf.signal(rt, pid, "go")
            return await cf.wait_closed(rt, pid), await cf.wait_closed(rt, sink), await cf.counts(rt)

    async def interrupted() -> tuple[Outcome, Outcome, list[dict[str, Any]]]:
        phases = []
        async with cf.runtime() as rt:
            sink = await cf.start(rt, "conf:wf_sink")
            pid = await cf.start(rt, "conf:wf_recorded", {"sink": sink})
            await cf.wait_hit(rt, "checkpoint:recorded.1")
            phases.append(await cf.counts(rt))
        for gate in (2, 3):
            async with cf.runtime() as rt:
                assert await cf.provider.status(rt, pid) == "running"
                await cf.signal(rt, pid, "go")
                await cf.wait_hit(rt, f"checkpoint:recorded.{gate}")
                phases.append(await cf.counts(rt))
        async with cf.runtime() as rt:
            await cf.signal(rt, pid, "go")
            done = await cf.wait_closed(rt, pid)
            sink_done = await cf.wait_closed(rt, sink)
            phases.append(await cf.counts(rt))
        return done, sink_done, phases

    base, base_sink, base_counts = asyncio.run(uninterrupted())
    assert base.status == "completed", base.error
    assert all(base_counts["hits"][k] == 1 for k in RECORDED_STEPS), base_counts["hits"]

    done, sink_done, phases = asyncio.run(interrupted())
    assert done.status == "completed", done.error
    assert done.value["trace"] == base.value["trace"]
    assert "history_grew:true" in done.value["trace"]
    # recorded values are those the first runtime saw, not new ones
    assert done.value["values"] == phases[0]["seen"]["recorded.values"]
    assert done.value["more"] == phases[2]["seen"]["recorded.more"]
    assert done.value["values"]["uuid"] != base.value["values"]["uuid"]  # they are random, though
    assert done.value["values"]["version"] == done.value["more"]["version"] == 2
    # every recorded step ran exactly once over four runtimes
    total = total_hits(phases)
    assert {k: total[k] for k in RECORDED_STEPS} == dict.fromkeys(RECORDED_STEPS, 1), total
    assert phases[0]["hits"]["r.sync"] == 1 and "r.sync" not in phases[1]["hits"]
    # the message the workflow sent arrived once
    assert sink_done.status == "completed" and sink_done.value == {"pings": 1} == base_sink.value


# Interleaving ------------------------------------------------------------------------------
def test_coroutines_channels_select_and_timers_replay_exactly(conformance: Conformance) -> None:
    """The order of coroutine wake-ups and select outcomes is the same after restarts,
    including timers that fell due while the runtime was down (they fire in due order)."""
    cf = conformance

    async def uninterrupted() -> Outcome:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_interleave")
            return await cf.wait_closed(rt, pid)

    async def interrupted() -> Outcome:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_interleave")
            # 4 timers armed, then the 30ms one fired
            await until(lambda: _timers(cf.provider, rt, pid, 4, 1), "the first timer")
        await asyncio.sleep(0.1)  # down while the 60ms and 90ms timers fall due
        async with cf.runtime() as rt:
            await until(lambda: _timers(cf.provider, rt, pid, 4, 3), "the overdue timers")
        async with cf.runtime() as rt:
            return await cf.wait_closed(rt, pid)

    base = asyncio.run(uninterrupted())
    assert base.status == "completed", base.error
    trace = base.value
    assert trace[:2] == ["t30", "w1 got a"] and trace[-2:] == ["t400", "drained"], trace
    assert trace.index("t60") < trace.index("t90") < trace.index("t400")
    resumed = asyncio.run(interrupted())
    assert resumed.status == "completed", resumed.error
    assert resumed.value == trace


async def _timers(provider: Provider, rt: Runtime, pid: str, started: int, fired: int = 0) -> bool | None:
    """True once ``pid`` has started at least ``started`` durable timers and ``fired`` fired."""
    now = await provider.timers(rt, pid)
    return True if now[0] >= started and now[1] >= fired else None


# Non-determinism ---------------------------------------------------------------------------
def test_code_that_disagrees_with_history_stops_and_resumes_once_fixed(conformance: Conformance) -> None:
    cf = conformance
    original = 'funcs.call("conf:step", key .. ".first", 1)'
    changed = 'funcs.call("conf:observe", key .. ".first", 1)'

    async def first() -> str:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_changing", "nd")
            await cf.wait_hit(rt, "checkpoint:nd")
            return pid

    async def mismatched(pid: str) -> tuple[str, str | None, dict[str, int]]:
        async with cf.runtime() as rt:
            async def reason() -> str | None:
                return await cf.provider.blocked(rt, pid)

            # the message is kept for when the run can go on again; it is also what makes a
            # Temporal worker replay the run (workflow.host replays every open run at start)
            await cf.signal(rt, pid, "go")
            why = await until(reason, "the non-determinism error")
            return why, await cf.provider.status(rt, pid), await cf.hits(rt)

    async def fixed(pid: str) -> tuple[Outcome, dict[str, int]]:
        async with cf.runtime() as rt:
            return await cf.wait_closed(rt, pid), await cf.hits(rt)

    pid = asyncio.run(first())
    cf.edit("src/wf/changing.lua", original, changed)
    why, status, hits = asyncio.run(mismatched(pid))
    assert "non-determinism" in why.lower() or "nondetermin" in why.lower(), why
    assert "conf:step" in why and "conf:observe" in why, why  # the event and the command
    assert status == "running"  # the run stays open
    assert "nd.first" not in hits and "nd.second" not in hits  # nothing ran
    cf.edit("src/wf/changing.lua", changed, original)
    done, hits = asyncio.run(fixed(pid))
    assert done.status == "completed" and done.value == {"first": 1, "second": 2}, done
    assert hits.get("nd.first", 0) == 0 and hits["nd.second"] == 1


def test_workflow_version_old_runs_keep_theirs_new_runs_get_the_new_one(conformance: Conformance) -> None:
    cf = conformance

    async def before() -> str:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_versioned", "old")
            await cf.wait_hit(rt, "checkpoint:old")
            return pid

    async def after(old: str) -> tuple[Outcome, Outcome]:
        async with cf.runtime() as rt:
            new = await cf.start(rt, "conf:wf_versioned", "new")
            await cf.wait_hit(rt, "checkpoint:new")
            await cf.signal(rt, old, "go")
            await cf.signal(rt, new, "go")
            return await cf.wait_closed(rt, old), await cf.wait_closed(rt, new)

    old = asyncio.run(before())
    cf.edit("src/wf/versioned.lua", 'workflow.version("versioned-change", 1, 1)',
            'workflow.version("versioned-change", 1, 2)')
    old_done, new_done = asyncio.run(after(old))
    assert old_done.value == {"version": 1, "step": "old.v1"}, old_done
    assert new_done.value == {"version": 2, "step": "new.v2"}, new_done


# Timers --------------------------------------------------------------------------------------
def test_a_sleep_that_fell_due_while_down_fires_right_after_restart(conformance: Conformance) -> None:
    cf = conformance

    async def main() -> tuple[Outcome, float]:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_sleeper", 400)
            await until(lambda: _timers(cf.provider, rt, pid, 1), "the sleep to be recorded")
        await asyncio.sleep(0.5)  # the runtime is down past the wake-up time
        async with cf.runtime() as rt:
            restarted = time.monotonic()
            done = await cf.wait_closed(rt, pid)
            return done, time.monotonic() - restarted

    done, took = asyncio.run(main())
    assert done.status == "completed", done.error
    assert done.value["elapsed"] >= 400
    assert took < 0.3, f"an overdue timer should fire at once, took {took:.3f}s"


def test_a_sleep_keeps_its_wake_up_time_across_a_restart(conformance: Conformance) -> None:
    cf = conformance

    async def main() -> tuple[Outcome, float]:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_sleeper", 500)
            await until(lambda: _timers(cf.provider, rt, pid, 1), "the sleep to be recorded")
        await asyncio.sleep(0.2)  # down, but back before the wake-up time
        async with cf.runtime() as rt:
            restarted = time.time()
            return await cf.wait_closed(rt, pid), restarted

    done, restarted = asyncio.run(main())
    assert done.status == "completed", done.error
    woke = done.value["after"] / 1e9
    assert done.value["elapsed"] >= 500, "not early"
    # due at `before + 500ms`, not 500ms after the restart
    assert woke < restarted + 0.45, f"woke {woke - restarted:.3f}s after the restart"


# Signals -------------------------------------------------------------------------------------
CRASH_AFTER_SEND = textwrap.dedent("""
    import asyncio, os, sys
    from wippy import Runtime, load_project

    async def main():
        rt = Runtime(load_project(sys.argv[1]))
        await rt.start()
        pid = await rt.call("conf:start", "conf:wf_approval", "in", {}, None)
        assert await rt.call("conf:signal", pid, "approve", {"by": "admin"}) is True
        print(pid, flush=True)
        os._exit(0)  # crash: nothing is flushed or closed after send returned

    asyncio.run(main())
""")


def test_a_message_is_durable_once_send_returns(conformance: Conformance) -> None:
    """The sending process dies the moment process.send returns; the next runtime still
    delivers the message."""
    cf = conformance
    proc = subprocess.run([sys.executable, "-c", CRASH_AFTER_SEND, str(cf.root)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = proc.stdout.strip().splitlines()[-1]

    async def main() -> Outcome:
        async with cf.runtime() as rt:
            return await cf.wait_closed(rt, pid)

    done = asyncio.run(main())
    assert done.status == "completed", done.error
    assert done.value == {"topic": "approve", "data": {"by": "admin"}, "input": "in"}


# Children and cancellation -------------------------------------------------------------------
def test_child_workflows_survive_restarts(conformance: Conformance) -> None:
    cf = conformance

    async def main() -> tuple[Outcome, list[dict[str, Any]]]:
        phases = []
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_gated_parent", {"child_id": "kid", "key": "kid"})
            await cf.wait_hit(rt, "checkpoint:kid")
            phases.append(await cf.counts(rt))
        async with cf.runtime() as rt:
            await cf.signal(rt, cf.provider.pid("kid"), "go")
            await cf.wait_hit(rt, "checkpoint:kid.spawned")
            phases.append(await cf.counts(rt))
        async with cf.runtime() as rt:
            await cf.signal(rt, cf.provider.pid("kid-spawned"), "go")
            done = await cf.wait_closed(rt, pid)
            phases.append(await cf.counts(rt))
        return done, phases

    done, phases = asyncio.run(main())
    assert done.status == "completed", done.error
    assert done.value == {"exec": {"step": "kid"}, "spawn": {"step": "kid.spawned"}, "spawn_from": True,
                          "last": "kid.parent"}
    total = total_hits(phases)
    assert (total["kid"], total["kid.spawned"], total["kid.parent"]) == (1, 1, 1), total


def test_a_cancellation_is_recorded(conformance: Conformance) -> None:
    cf = conformance

    async def main() -> tuple[Outcome, dict[str, int]]:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_cancellable", {"key": "cx", "gate": True})
            assert await rt.call("conf:cancel", pid, "10s") is True
            await cf.wait_hit(rt, "checkpoint:cx")
        async with cf.runtime() as rt:
            await cf.signal(rt, pid, "go")
            return await cf.wait_closed(rt, pid), await cf.hits(rt)

    done, hits = asyncio.run(main())
    assert done.status == "completed", done.error
    assert done.value == {"canceled": True, "reason": "", "cleanup": "cx.cleanup"}
    assert "cx.cleanup" not in hits  # the cleanup ran before the restart and is not run again


def test_results_survive_in_the_store(conformance: Conformance) -> None:
    """A closed run is not resumed by the next runtime; its outcome stays readable."""
    cf = conformance

    async def first() -> str:
        async with cf.runtime() as rt:
            pid = await cf.start(rt, "conf:wf_approval", "stored")
            await cf.signal(rt, pid, "approve", 1)
            await cf.wait_closed(rt, pid)
            return pid

    async def second(pid: str) -> tuple[Outcome | None, dict[str, int]]:
        async with cf.runtime() as rt:
            return await cf.provider.outcome(rt, pid), await cf.hits(rt)

    pid = asyncio.run(first())
    outcome, hits = asyncio.run(second(pid))
    assert outcome is not None and outcome.status == "completed"
    assert json.dumps(outcome.value, sort_keys=True) == json.dumps(
        {"topic": "approve", "data": 1, "input": "stored"}, sort_keys=True)
    assert hits == {}
