"""The shipped host-contract suite (wippy.testing) against our own ``process.host``,
with the Lua reference actors; the same suite a third-party provider runs on its host."""

from __future__ import annotations

import pytest

from wippy.testing import HostContract, HostUnderTest


class TestProcessHost(HostContract):
    @pytest.fixture
    def wippy_host(self) -> HostUnderTest:
        return HostUnderTest.lua("kind: process.host")
