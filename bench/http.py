"""Requests per second of a Lua HTTP endpoint beside a plain aiohttp handler.

What is measured: ``GET /json`` on an ``http.service`` whose endpoint runs a Lua function
(``http.response()``, ``set_content_type``, ``set_status``, ``write_json`` of a small
object), over keep-alive connections, several at once. Each request is a function call:
a fresh instance of the entry, the ``http`` commands, the JSON encoder in Lua, and the
aiohttp request/response around it.

Baseline: a minimal Python aiohttp handler (``web.json_response`` of the same object) on
an ``aiohttp.web.Application``, served by the same server library in the same process, on
the same event loop, measured in the same run. Target: the Lua endpoint reaches at least
half the baseline's rate.

The load comes from a separate process (this script with ``--load``): ``--connections``
keep-alive connections, each sending its next request as soon as the previous answer is
complete, for a fixed time; it prints how many completed. It reads answers with
aiohttp's C response parser on bare asyncio connections, which costs a fraction of what
the server spends per request. The server process and the load process
each get a CPU of their own on a two-core machine, so the figure is the server's cost
per request, not the client's.

Run: ``python bench/http.py`` (``--quick`` for a smoke run; ``--uvloop`` for uvloop on
both sides).
"""

# ruff: noqa: E402  (the standard library's http must be imported before the rest)
from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``http``, and Python puts its directory
# first on sys.path: load the real ``http`` package before anything (aiohttp) asks for it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
import http.client  # noqa: F401  (the standard library's)

sys.path.insert(0, _HERE)

import asyncio
import json
import resource
import time
from pathlib import Path

from _common import Row, exit_code, parser, print_header, print_summary, rate, run

TARGET = 0.5
MESSAGE = {"message": "hello world", "ok": True, "n": 42}

HANDLER = """\
local http = require("http")

local function handler()
  local res = http.response()
  res:set_content_type(http.CONTENT.JSON)
  res:set_status(http.STATUS.OK)
  res:write_json({message = "hello world", ok = true, n = 42})
end

return { handler = handler }
"""

INDEX = """\
version: "1.0"
namespace: bench
entries:
  - name: gateway
    kind: http.service
    addr: "127.0.0.1:0"
    lifecycle: {auto_start: true}
  - name: api
    kind: http.router
    meta: {server: gateway}
    prefix: /
  - name: json
    kind: function.lua
    source: file://json.lua
    method: handler
    modules: [http]
  - name: json.endpoint
    kind: http.endpoint
    meta: {router: api}
    method: GET
    path: /json
    func: json
"""


# The load process ----------------------------------------------------------------------
def _load_protocol(request: bytes, deadline: float, counts: list[int], finished: asyncio.Future[None]) -> type:
    """A keep-alive client connection: one request in flight, the next sent as soon as the
    answer is complete (read with aiohttp's C response parser). Far cheaper per request
    than ``ClientSession``, so the server is what runs out of CPU first."""
    from aiohttp.base_protocol import BaseProtocol
    from aiohttp.http import HttpResponseParser

    class Load(BaseProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self.parser = HttpResponseParser(self, self._loop, 2**16)
            self.pending: list[tuple[int, object]] = []
            self.send()

        def send(self) -> None:
            if time.monotonic() >= deadline:
                self.transport.close()  # type: ignore[union-attr]
                return
            self.transport.write(request)  # type: ignore[union-attr]

        def data_received(self, data: bytes) -> None:
            messages, _, _ = self.parser.feed_data(data)
            for message, payload in messages:
                self.pending.append((message.code, payload))
            while self.pending and self.pending[0][1].is_eof():  # type: ignore[attr-defined]
                code, _ = self.pending.pop(0)
                counts[0 if code == 200 else 1] += 1
                self.send()

        def connection_lost(self, exc: BaseException | None) -> None:
            super().connection_lost(exc)
            if not finished.done():
                finished.set_result(None)

    return Load


async def load(url: str, connections: int, seconds: float) -> tuple[int, int]:
    """GETs on ``connections`` keep-alive connections for ``seconds``; (ok, failed)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: */*\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    counts = [0, 0]
    deadline = time.monotonic() + seconds
    waits = []
    for _ in range(connections):
        finished: asyncio.Future[None] = loop.create_future()
        protocol = _load_protocol(request, deadline, counts, finished)
        await loop.create_connection(lambda p=protocol: p(loop), parts.hostname, parts.port)
        waits.append(finished)
    await asyncio.gather(*waits)
    return counts[0], counts[1]


def load_main(argv: list[str]) -> int:
    url, connections, seconds, use_uvloop = argv[0], int(argv[1]), float(argv[2]), argv[3] == "1"
    done, failed = run(lambda: load(url, connections, seconds), use_uvloop)
    print(json.dumps({"done": done, "failed": failed, "seconds": seconds}))
    return 0


# The server process ----------------------------------------------------------------------
async def drive(url: str, connections: int, seconds: float, use_uvloop: bool) -> tuple[float, float]:
    """Requests per second the load process completed against ``url``, and the CPU seconds
    this (the server's) process spent per request meanwhile."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--load", url, str(connections), str(seconds), "1" if use_uvloop else "0",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"the load process exited with {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_SELF)
    result = json.loads(out.decode().strip().splitlines()[-1])
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} requests to {url} failed")
    done = max(int(result["done"]), 1)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return done / float(result["seconds"]), cpu / done


async def measure(quick: bool, repeats: int, connections: int, use_uvloop: bool) -> list[Row]:
    import tempfile

    from aiohttp import web

    from wippy import Runtime, load_project

    seconds = 1.0 if quick else 4.0

    async def python_handler(request: web.Request) -> web.Response:
        return web.json_response(MESSAGE)

    app = web.Application()
    app.router.add_get("/json", python_handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base_url = f"http://127.0.0.1:{port}/json"

    with tempfile.TemporaryDirectory(prefix="wippy-bench-") as tmp:
        root = Path(tmp)
        (root / "_index.yaml").write_text(INDEX)
        (root / "json.lua").write_text(HANDLER)
        rt = Runtime(load_project(root), output=lambda line: None, tune_gc=True)
        async with rt:
            lua_url = rt.lifecycle.services["bench:gateway"].url + "/json"
            await drive(lua_url, connections, 0.3, use_uvloop)  # warm up both
            await drive(base_url, connections, 0.3, use_uvloop)
            lua = py = 0.0
            lua_cpu = py_cpu = float("inf")
            for _ in range(repeats):  # interleaved, so drift hits both alike
                r, c = await drive(base_url, connections, seconds, use_uvloop)
                py, py_cpu = max(py, r), min(py_cpu, c)
                r, c = await drive(lua_url, connections, seconds, use_uvloop)
                lua, lua_cpu = max(lua, r), min(lua_cpu, c)
    await runner.cleanup()
    ratio = lua / py
    print(f"Lua endpoint (http.service):   {rate(lua, ' req/s')}  (server CPU {lua_cpu * 1e6:.0f} us per request)")
    print(f"aiohttp handler (baseline):    {rate(py, ' req/s')}  (server CPU {py_cpu * 1e6:.0f} us per request)")
    print(f"ratio: {ratio:.2f} (target >= {TARGET}); {connections} connections, load from a separate process")
    return [
        Row(f"Lua endpoint, {connections} conns", rate(lua), f"aiohttp handler: {rate(py)}", ratio,
            f">= {TARGET}", ratio >= TARGET),
        Row("server CPU per request", f"{lua_cpu * 1e6:.0f} us", f"aiohttp handler: {py_cpu * 1e6:.0f} us",
            py_cpu / lua_cpu, "none", None),
    ]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        return load_main(sys.argv[2:])
    p = parser(__doc__)
    p.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    args = p.parse_args()
    repeats = args.repeats or (1 if args.quick else 5)
    print_header("bench/http.py", args.uvloop, repeats)
    rows = run(lambda: measure(args.quick, repeats, args.connections, args.uvloop), args.uvloop)
    print_summary("http", rows)
    return exit_code(rows, args.strict)


if __name__ == "__main__":
    sys.exit(main())
