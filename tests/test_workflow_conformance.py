"""Workflow conformance: the Lua suite in tests/conformance against every provider.

The Lua test entries (``meta.type: test``) cover activities, timers, signals, children,
monitors and links, start options, the workflow module, the saga pattern and the
determinism guards; each runs here as its own pytest case, per provider, and once more
through ``wippy test`` exactly as a user would run it. The rest checks what Lua cannot
see: the run record in the store and pairs() order across separate processes.
Restart and replay behaviour is in test_workflow_replay.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.harness import (  # noqa: F401  (fixtures)
    PROJECT,
    Conformance,
    Provider,
    conformance_fixture,
    provider_fixture,
)
from wippy import load_project
from wippy.runner import TestResult, discover, run_tests

pytest_plugins = ["tests.temporal_server"]

LUA_TESTS = [e.id for e in discover(load_project(PROJECT))]


@pytest.fixture(scope="module")
def lua_results(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TestResult]:
    """Every Lua test entry, run once per provider in one runtime (as `wippy test` does)."""
    project = Conformance(tmp_path_factory.mktemp("lua") / "project", provider)

    async def main() -> list[TestResult]:
        runtime = project.runtime()
        async with runtime:
            tests = discover(runtime.registry)
            return await run_tests(runtime, tests, timeout=10)

    return {r.entry_id: r for r in asyncio.run(main())}


@pytest.mark.parametrize("entry_id", LUA_TESTS)
def test_lua(entry_id: str, lua_results: dict[str, TestResult]) -> None:
    result = lua_results[entry_id]
    assert result.passed, f"{entry_id}: {result.error}\n{result.stack or ''}"


def test_the_suite_has_every_area() -> None:
    suites = {e.meta.get("suite") for e in discover(load_project(PROJECT))}
    assert suites == {"activities", "timers", "signals", "children", "workflow", "patterns"}


def test_wippy_test_runs_the_suite() -> None:
    """`wippy test tests/conformance` as committed (embedded host, in-memory store)."""
    proc = subprocess.run([sys.executable, "-m", "wippy.cli", "test", str(PROJECT), "--timeout", "10"],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1] == f"{len(LUA_TESTS)} passed, 0 failed", proc.stdout + proc.stderr
    assert proc.returncode == 0


def test_attrs_are_stored_with_the_run(conformance: Conformance) -> None:
    async def main() -> tuple[Any, tuple[dict[str, Any], dict[str, Any]]]:
        async with conformance.runtime() as rt:
            result = await conformance.run(rt, "conf:wf_info", {"key": "attrs", "customer": "cust-9"},
                                           options={"temporal.workflow.id": "attrs-1"})
            pid = conformance.provider.pid("attrs-1")
            return result, await conformance.provider.attributes(rt, pid)

    result, (search, memo) = asyncio.run(main())
    assert result["workflow_id"] == "attrs-1"
    assert search == {"status": "done", "customer_id": "cust-9"}  # the second call updated status
    assert memo == {"notes": "priority customer", "source": "conformance"}


def test_start_options_set_attrs_and_memo(conformance: Conformance) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with conformance.runtime() as rt:
            pid = await conformance.start(rt, "conf:wf_waiter", "x", options={
                "temporal.workflow.id": "with-attrs",
                "temporal.workflow.search_attributes": {"customer_id": "cust-1"},
                "temporal.workflow.memo": {"source": "api"},
            })
            search, memo = await conformance.provider.attributes(rt, pid)
            await conformance.signal(rt, pid, "stop")
            await conformance.wait_closed(rt, pid)
            return search, memo

    assert asyncio.run(main()) == ({"customer_id": "cust-1"}, {"source": "api"})


PAIRS_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from wippy import Runtime, load_project

    async def main():
        async with Runtime(load_project(sys.argv[1])) as rt:
            workflow = await rt.call("conf:run", "conf:wf_pairs", 300, {}, None)
            async def plain():  # the same loop in a plain function, for contrast
                return await rt.call("conf:run_ephemeral", "conf:wf_pairs", 300)
            print(json.dumps({"workflow": workflow, "ephemeral": await plain()}))

    asyncio.run(main())
""")


def test_pairs_order_is_the_same_in_every_process(conformance: Conformance, tmp_path: Path) -> None:
    """Lua seeds its string hashes per state: only a deterministic pairs() agrees across
    processes. Two processes, one table of 600 string keys, the same order. (Each process
    has a project copy and store of its own: two embedded hosts do not share a store.)"""
    second = Conformance(tmp_path / "second" / "project", conformance.provider)
    procs = [subprocess.Popen([sys.executable, "-c", PAIRS_SCRIPT, str(cf.root)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cf in (conformance, second)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    first, second = outputs
    assert len(first["workflow"]) == 600
    assert first["workflow"] == second["workflow"]
    # the workflow's order does not depend on the process host either
    assert first["ephemeral"] == first["workflow"]


def test_project_is_provider_neutral() -> None:
    """Workflows and activities name only `conf:worker`; the provider lives in worker.yaml."""
    registry = load_project(PROJECT)
    for entry in registry:
        if entry.kind == "workflow.lua":
            assert entry.meta["temporal"]["workflow"]["worker"] == "conf:worker", entry.id
    hosts = [e.id for e in registry if e.kind in ("workflow.host", "temporal.worker")]
    assert hosts == ["conf:worker"]
    assert (Path(PROJECT) / "worker.yaml").read_text().count("- name:") == 1
