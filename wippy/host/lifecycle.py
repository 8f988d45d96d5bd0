"""Starting and stopping ``auto_start`` entries in dependency order (``wippy run``)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from wippy.errors import NotSupportedError
from wippy.host.runtime import Runtime
from wippy.registry import Registry
from wippy.registry.kinds import KINDS


async def run_forever(registry: Registry) -> int:
    runtime = Runtime(registry)
    starting = [e for e in registry if e.lifecycle.get("auto_start")]
    for entry in starting:
        if not KINDS[entry.kind].supported:
            raise NotSupportedError(f"{entry.kind} ({entry.id})")
    print(f"wippy: {len(registry)} entries loaded, {len(starting)} started; press Ctrl-C to stop", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("wippy: stopped", flush=True)
    del runtime
    return 0


__all__: list[Any] = ["run_forever"]
