"""The provider SDK's public surface and the shipped conformance plugin: the pytest11
entry point, its fixtures, a clear error without ``wippy_host``, scenario discovery, and a
broken provider failing with a message that says what differed."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import wippy.providers
from wippy.testing import (
    SCENARIOS,
    STANDARD_ACTORS,
    ConformanceFailure,
    ConformanceProject,
    HostUnderTest,
    WippyProject,
    read_resource,
)

pytest_plugins = ["pytester"]


def test_every_export_is_public_and_importable() -> None:
    for name in wippy.providers.__all__:
        assert not name.startswith("_")
        assert getattr(wippy.providers, name) is not None


def test_the_plugin_is_published_and_loaded(pytestconfig: pytest.Config) -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("wippy") == "wippy.testing.plugin"
    assert pytestconfig.pluginmanager.has_plugin("wippy")


def test_the_project_fixture(wippy_project: WippyProject) -> None:
    wippy_project.lua_function("double", "return { main = function(x) return x * 2 end }")
    assert wippy_project.call("app:double", 21) == 42
    assert wippy_project.lua("local a, b = ...\nreturn a .. b", "con", "cat") == "concat"


def test_the_scenarios_are_the_ones_in_the_lua_file(wippy_project: WippyProject) -> None:
    wippy_project.file("scenarios.lua", read_resource("scenarios.lua"))
    wippy_project.add("names", {"kind": "function.lua", "source": "file://scenarios.lua",
                                "method": "scenarios", "modules": ["time"]})
    in_lua = wippy_project.call("app:names")
    assert sorted(SCENARIOS) == sorted(n for n in in_lua if n != "leave_running")
    assert len(SCENARIOS) >= 25


def test_host_under_test_must_declare_the_standard_actors(tmp_path: Path) -> None:
    subject = HostUnderTest("kind: process.host", actors={"echo": "kind: process.lua"})
    with pytest.raises(ValueError, match="missing: \\['fail', 'cancellable', 'watcher'\\]"):
        ConformanceProject(tmp_path, subject)
    with pytest.raises(ValueError, match="kind"):
        HostUnderTest.lua("max_actors: 3").check()


def test_a_broken_provider_fails_with_what_differed(tmp_path: Path) -> None:
    reference = HostUnderTest.lua("kind: process.host")
    # `fail` that ends normally: an EXIT without an error
    actors = {**reference.actors, "fail": {"kind": "process.lua", "source": "file://ok.lua", "method": "main"}}
    files = {**reference.files, "ok.lua": "return { main = function() return true end }"}
    project = ConformanceProject(tmp_path, HostUnderTest(reference.host, actors, files=files))
    with pytest.raises(ConformanceFailure) as info:
        project.run("monitor_exit_error")
    message = str(info.value)
    assert message.startswith("monitor_exit_error: scenarios.lua:")
    assert "EXIT of an actor that failed carries no error" in message
    project.run("monitor_exit_value")  # the other actors are fine


def test_without_a_wippy_host_fixture_the_suite_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=textwrap.dedent("""
        from wippy.testing import HostContract

        class TestMine(HostContract):
            pass
    """))
    result = pytester.runpytest_subprocess("-q", "-k", "test_scenario and spawn_unknown_entry")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named wippy_host*HostUnderTest*"])


def test_a_provider_package_runs_the_suite_in_its_own_pytest(pytester: pytest.Pytester) -> None:
    """What a provider package does, in a separate pytest process: the plugin comes from
    the entry point, the class from wippy.testing, the scenarios run."""
    pytester.makepyfile(test_host=textwrap.dedent("""
        import pytest
        from wippy.testing import HostContract, HostUnderTest

        class TestProcessHost(HostContract):
            @pytest.fixture
            def wippy_host(self):
                return HostUnderTest.lua("kind: process.host")
    """))
    result = pytester.runpytest_subprocess("-q", "-m", "wippy_conformance",
                                           "-k", "spawn_unknown_entry or send_to_dead_pid")
    result.assert_outcomes(passed=2)


def test_standard_actor_names() -> None:
    assert STANDARD_ACTORS == ("echo", "fail", "cancellable", "watcher")
    for name in STANDARD_ACTORS:
        assert f"local function {name}(" in read_resource("reference_actors.lua")
