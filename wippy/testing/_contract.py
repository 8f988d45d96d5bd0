"""The host-contract tests, as a class a provider package subclasses."""

from __future__ import annotations

import asyncio
import time

import pytest

from wippy.testing._project import ConformanceProject, HostUnderTest, scenario_names

SCENARIOS = scenario_names()


@pytest.mark.wippy_conformance
class HostContract:
    """The host-contract conformance tests. Subclass it in a test module as ``Test...``
    and provide the ``wippy_host`` fixture (in the class or a ``conftest.py``)::

        from wippy.testing import HostContract, HostUnderTest

        class TestMyHost(HostContract):
            @pytest.fixture
            def wippy_host(self) -> HostUnderTest:
                return HostUnderTest(host="kind: my.host", actors={...})

    Every scenario runs in a fresh runtime, driven from a Lua process on a
    ``process.host``; a scenario in ``HostUnderTest.skip`` is skipped with its reason.
    """

    @pytest.mark.parametrize("scenario", SCENARIOS)
    def test_scenario(self, scenario: str, wippy_host: HostUnderTest,
                      wippy_conformance: ConformanceProject) -> None:
        reason = wippy_host.skip.get(scenario)
        if reason is not None:
            pytest.skip(reason)
        wippy_conformance.run(scenario)

    def test_stop_ends_live_actors(self, wippy_conformance: ConformanceProject) -> None:
        """Stopping the runtime ends actors left running (an echo ignores CANCEL, so the
        host must force it once its stop timeout passes) within the stop timeouts."""

        async def main() -> float:
            rt = wippy_conformance.runtime()
            await rt.start()
            try:
                await wippy_conformance.run_in(rt, "leave_running")
            finally:
                started = time.monotonic()
                await asyncio.wait_for(rt.stop(), 10)
            host = wippy_conformance.host_id
            assert host not in rt.router.hosts, f"{host} is still registered with the router after stop"
            return time.monotonic() - started

        assert asyncio.run(main()) < 5.0
