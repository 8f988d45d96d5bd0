"""Host-contract conformance for provider packages: a pytest plugin and the suite it runs.

A provider package tests its host the way anyio's users test against its backends: the
``wippy`` pytest plugin (registered through the ``pytest11`` entry point, so it is active
wherever wippy is installed) supplies the fixtures, and the package's own test module
subclasses :class:`HostContract` and says what to test with a ``wippy_host`` fixture::

    import pytest
    from wippy.testing import HostContract, HostUnderTest

    class TestMyHost(HostContract):
        @pytest.fixture
        def wippy_host(self) -> HostUnderTest:
            return HostUnderTest(
                host="kind: my.host",
                actors={"echo": "kind: my.actor\\nimpl: echo", "fail": ..., "cancellable": ...,
                        "watcher": ...},
            )

The standard actors (echo, fail, cancellable, watcher) are described, and implemented in
Lua, in ``reference_actors.lua`` next to this file; :meth:`HostUnderTest.lua` uses those
Lua versions for a host that runs Lua entries. The scenarios (``scenarios.lua``) drive them
from Lua processes on a ``process.host``: spawn, messages and ``msg:from()``, monitors,
links and ``trap_links`` in both directions, terminate, cancel with its deadline, names,
and sends to exited PIDs.
"""

from wippy.testing._contract import SCENARIOS, HostContract
from wippy.testing._project import (
    STANDARD_ACTORS,
    ConformanceFailure,
    ConformanceProject,
    HostUnderTest,
    WippyProject,
    read_resource,
)

__all__ = [
    "SCENARIOS",
    "STANDARD_ACTORS",
    "ConformanceFailure",
    "ConformanceProject",
    "HostContract",
    "HostUnderTest",
    "WippyProject",
    "read_resource",
]
