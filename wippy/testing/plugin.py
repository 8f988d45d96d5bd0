"""The ``wippy`` pytest plugin (entry point ``pytest11``): fixtures for provider packages.

* ``wippy_project``: a :class:`~wippy.testing.WippyProject` in a temporary directory;
* ``wippy_host``: the provider under test, a :class:`~wippy.testing.HostUnderTest`;
  the plugin's version fails, asking for one: a provider package overrides it;
* ``wippy_conformance``: the host-contract project built around ``wippy_host``, which
  :class:`~wippy.testing.HostContract` runs its scenarios in.

The marker ``wippy_conformance`` labels the contract tests (``-m "not wippy_conformance"``
leaves them out). Disable the plugin with ``-p no:wippy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from wippy.testing import ConformanceProject, HostUnderTest, WippyProject


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "wippy_conformance: a host-contract conformance test of a wippy provider (wippy.testing)")


@pytest.fixture
def wippy_project(tmp_path: Path) -> WippyProject:
    """An empty project (namespace ``app``) in a temporary directory."""
    from wippy.testing import WippyProject

    return WippyProject(tmp_path / "project")


@pytest.fixture
def wippy_host() -> HostUnderTest:
    """The provider under test. Override this fixture to return a HostUnderTest."""
    pytest.fail("the wippy host-contract suite needs the provider under test: define a fixture named "
                "wippy_host that returns a wippy.testing.HostUnderTest (in conftest.py or the "
                "HostContract subclass)", pytrace=False)


@pytest.fixture
def wippy_conformance(wippy_host: HostUnderTest, tmp_path: Path) -> ConformanceProject:
    """The conformance project around ``wippy_host``, in a temporary directory."""
    from wippy.testing import ConformanceProject

    return ConformanceProject(tmp_path / "conformance", wippy_host)
