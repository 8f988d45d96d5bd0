"""``python.host`` against wippy's shipped host-contract suite (the ``wippy`` pytest plugin)."""

from __future__ import annotations

import pytest
from wippy.testing import HostContract, HostUnderTest

from wippy_python_host.standard_actors import host_under_test


class TestPythonHost(HostContract):
    @pytest.fixture
    def wippy_host(self) -> HostUnderTest:
        return host_under_test()
