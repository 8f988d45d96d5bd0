"""Names a workflow registers are runtime state: a replay after a restart restores them.
Also `crypto.random_bytes`, the spelling the workflow docs use."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from tests.conformance_helpers import wait_closed
from wippy import Runtime, WippyError, load_project

PROJECT = """
namespace: app
entries:
  - name: workflows
    kind: workflow.host
    store: wf.db
    lifecycle: {auto_start: true}
  - name: named
    kind: workflow.lua
    source: file://named.lua
    method: main
    modules: [crypto]
  - name: start
    kind: function.lua
    source: file://calls.lua
    method: start
  - name: lookup
    kind: function.lua
    source: file://calls.lua
    method: lookup
  - name: bytes
    kind: function.lua
    source: file://calls.lua
    method: bytes
    modules: [crypto]
"""

NAMED = """
local crypto = require("crypto")
return { main = function()
  assert(process.registry.register("billing"))
  local b = crypto.random_bytes(8)
  local msg = process.inbox():receive()
  return { topic = msg:topic(), n = #b }
end }
"""

CALLS = """
return {
  start = function() return process.with_options({["temporal.workflow.id"] = "named-1"}):spawn("app:named", "app:workflows") end,
  lookup = function() return process.registry.lookup("billing") end,
  bytes = function(n)
    local b, err = require("crypto").random_bytes(n)
    if err then return nil, err end
    return #b
  end,
}
"""


def _project(root: Path) -> Path:
    (root / "_index.yaml").write_text(textwrap.dedent(PROJECT))
    (root / "named.lua").write_text(NAMED)
    (root / "calls.lua").write_text(CALLS)
    return root


def test_registered_name_survives_a_restart(tmp_path: Path) -> None:
    root = _project(tmp_path)

    async def first() -> str:
        async with Runtime(load_project(root)) as rt:
            pid = await rt.call("app:start")
            for _ in range(200):  # the name appears once the workflow has run its first step
                try:
                    return pid if await rt.call("app:lookup") == pid else ""
                except WippyError:
                    await asyncio.sleep(0.01)
            raise AssertionError("name never registered")

    async def second(pid: str) -> None:
        async with Runtime(load_project(root)) as rt:
            host = rt.router.hosts["app:workflows"]
            for _ in range(200):
                wf = host.actors.get(pid)
                if wf is not None and not wf.replaying:
                    break
                await asyncio.sleep(0.01)
            assert await rt.call("app:lookup") == pid  # restored by replay
            rt.router.send(pid, "done", None, None)
            run = await wait_closed(host, "named-1")
            assert run.status == "completed" and run.result == {"topic": "done", "n": 8}

    pid = asyncio.run(first())
    assert pid
    asyncio.run(second(pid))


def test_crypto_random_bytes(tmp_path: Path) -> None:
    root = _project(tmp_path)

    async def main() -> None:
        async with Runtime(load_project(root)) as rt:
            assert await rt.call("app:bytes", 16) == 16
            with pytest.raises(WippyError) as info:
                await rt.call("app:bytes", -1)
            assert info.value.kind == "Invalid" and "random_bytes" in info.value.message

    asyncio.run(main())
