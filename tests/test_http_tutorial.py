"""The upstream hello-world tutorial (``en/tutorials/hello-world.md``), as written: its
``src/_index.yaml`` and ``src/hello.lua``, started with ``wippy run`` and asked with a real
HTTP client. The one change is the address, set on the command line (``-o``) to a port
the OS picks, as a user moves a port that is taken."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tests.test_http_helpers import write

INDEX = """\
version: "1.0"
namespace: app

entries:
  # HTTP server
  - name: gateway
    kind: http.service
    addr: ":8080"
    lifecycle:
      auto_start: true

  # Router
  - name: api
    kind: http.router
    meta:
      server: app:gateway
    prefix: /

  # Handler function
  - name: hello
    kind: function.lua
    source: file://hello.lua
    method: handler
    modules:
      - http

  # Endpoint
  - name: hello.endpoint
    kind: http.endpoint
    meta:
      router: app:api
    method: GET
    func: app:hello
    path: /hello
"""

HELLO = """\
local http = require("http")

local function handler()
    local res = http.response()

    res:set_content_type(http.CONTENT.JSON)
    res:set_status(http.STATUS.OK)
    res:write_json({message = "hello world"})
end

return {
    handler = handler
}
"""

LISTENING = re.compile(r"app:gateway running - service listening on ([0-9.]+):([0-9]+)")


async def run_tutorial(project: Path) -> tuple[int, str, str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wippy.cli", "run", str(project / "src"), "-o", "app:gateway:addr=127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen = []
    try:
        while True:  # the state line says where it listens
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "wippy run exited before listening:\n" + "".join(seen)
            seen.append(line)
            found = LISTENING.search(line)
            if found:
                break
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{found.group(2)}/hello") as resp:
            status, content_type, body = resp.status, resp.headers["Content-Type"], await resp.text()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert "wippy: stopped" in rest.decode(), rest.decode()
    return status, content_type, body, proc.returncode or 0


def test_hello_world_tutorial_as_written(tmp_path: Path) -> None:
    write(tmp_path, {"src/_index.yaml": INDEX, "src/hello.lua": HELLO})
    status, content_type, body, code = asyncio.run(run_tutorial(tmp_path))
    assert status == 200 and content_type == "application/json"
    assert body == '{"message":"hello world"}'
    assert code == 0
