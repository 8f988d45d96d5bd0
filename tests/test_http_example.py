"""examples/http-orders, driven as its README says: ``wippy run`` and HTTP requests. The
address and the journal are moved with ``-o`` (a free port; a temporary database), and the
runtime is restarted once to show the workflows resume from the journal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "http-orders"
LISTENING = re.compile(r"app:gateway running - service listening on [0-9.]+:([0-9]+)")


class Running:
    def __init__(self, proc: asyncio.subprocess.Process, base: str) -> None:
        self.proc = proc
        self.base = base

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.request(
                method, self.base + path, data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"}) as resp:
            return resp.status, json.loads(await resp.text())

    async def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(self.proc.communicate(), 30)
        return out.decode()


async def start(store: Path) -> Running:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wippy.cli", "run", str(EXAMPLE), "-o", "app:gateway:addr=127.0.0.1:0",
        "-o", f"app:orders:store={store}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "wippy run exited:\n" + "".join(seen)
        seen.append(line)
        found = LISTENING.search(line)
        if found:
            return Running(proc, f"http://127.0.0.1:{found.group(1)}")


async def scenario(store: Path) -> None:
    app = await start(store)
    try:
        order = {"id": "A-1", "customer": "ada", "total": 120, "items": ["book"]}
        status, got = await app.call("POST", "/orders", order)
        assert status == 202 and got == {"order_id": "A-1", "status": "started",
                                         "workflow_id": "{app:orders|order-A-1}"}, got
        status, got = await app.call("POST", "/orders", order)
        assert status == 409 and "already" in got["error"], got
        status, got = await app.call("POST", "/orders", {"customer": "nobody"})
        assert status == 400, got
        status, got = await app.call("GET", "/orders/A-1")
        assert status == 200 and got["status"] == "awaiting_approval" and got["payment_id"] == "pay-ada-120", got
        status, got = await app.call("POST", "/orders/A-1/approve", {"by": "bob"})
        assert (status, got) == (202, {"order_id": "A-1", "signal": "approve"})
        status, got = await app.call("GET", "/orders/A-1")
        assert got["status"] == "shipped" and got["tracking"] == "TRK-A-1", got
        assert got["events"] == ["awaiting_approval", "approved: by bob", "shipped: TRK-A-1"]

        status, got = await app.call("POST", "/orders", {"id": "B-2", "customer": "alan", "total": 80,
                                                         "items": ["tape"]})
        assert status == 202
        status, got = await app.call("POST", "/orders/B-2/cancel", {"reason": "changed my mind"})
        assert status == 202
        status, got = await app.call("GET", "/orders/B-2")
        assert got["status"] == "canceled" and got["events"][-1] == "canceled: changed my mind", got
        status, got = await app.call("GET", "/orders/nope")
        assert status == 404, got
    finally:
        out = await app.stop()
    assert "wippy: stopped" in out, out

    app = await start(store)  # the workflows resume from the journal
    try:
        status, got = await app.call("GET", "/orders/B-2")
        assert status == 200 and got["status"] == "canceled", got
        status, got = await app.call("GET", "/orders/A-1")
        assert got["status"] == "shipped", got
    finally:
        await app.stop()


def test_the_http_orders_example(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path / "orders.db"))
