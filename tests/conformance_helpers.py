"""Small waits shared by workflow tests that drive a runtime from Python."""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_closed(host: Any, workflow_id: str, timeout: float = 5.0) -> Any:
    """The latest run of ``workflow_id`` once it is no longer running (polls the store)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await host.journal.flush()
        run = host.journal.latest_run(workflow_id)
        if run is not None and run.status != "running":
            return run
        await asyncio.sleep(0.01)
    raise AssertionError(f"workflow {workflow_id} did not close within {timeout}s")
