"""Python actors of the demo: plain async functions with a PID."""

from __future__ import annotations

import statistics
from typing import Any

from wippy_python_host import Actor


async def stats(actor: Actor, name: str) -> dict[str, Any]:
    """Collects "sample" numbers; answers "summary" with mean, median and stdev; "stop"
    ends it with the count (a monitor sees it in EXIT)."""
    samples: list[float] = []
    while True:
        msg = await actor.receive()
        if msg.topic == "sample":
            samples.append(float(msg.payload))
        elif msg.topic == "summary" and msg.sender is not None:
            actor.send(msg.sender, "summary", {
                "name": name, "count": len(samples), "mean": statistics.fmean(samples),
                "median": statistics.median(samples), "stdev": statistics.stdev(samples),
            })
        elif msg.topic == "stop":
            return {"name": name, "count": len(samples)}
