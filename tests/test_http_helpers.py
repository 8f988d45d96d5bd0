"""Helpers for the HTTP tests: write a project, start its runtime (so its ``http.service``
entries listen on 127.0.0.1, on ports the OS picks), talk to them with a real aiohttp
client, stop everything. No tests here."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from wippy import Runtime, load_project

T = TypeVar("T")


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


class Served:
    """A started runtime and where its HTTP services listen."""

    def __init__(self, runtime: Runtime, session: aiohttp.ClientSession) -> None:
        self.runtime = runtime
        self.session = session

    def url(self, service: str = "app:gateway") -> str:
        return self.runtime.lifecycle.services[service].url  # type: ignore[attr-defined, no-any-return]

    def port(self, service: str = "app:gateway") -> int:
        return self.runtime.lifecycle.services[service].port  # type: ignore[attr-defined, no-any-return]

    async def get(self, path: str, service: str = "app:gateway", **kw: Any) -> tuple[int, Any, str]:
        return await self.request("GET", path, service, **kw)

    async def request(self, method: str, path: str, service: str = "app:gateway",
                      **kw: Any) -> tuple[int, Any, str]:
        """``(status, headers, body text)``. ``path`` goes as written (escaped, not normalised)."""
        url = URL(self.url(service) + path, encoded=True)
        async with self.session.request(method, url, allow_redirects=False, **kw) as resp:
            return resp.status, resp.headers, await resp.text()


def serve(root: Path, body: Callable[[Served], Awaitable[T]], *, timeout: float = 60) -> T:
    """Load ``root``, start its runtime, run ``body`` with a client, stop everything."""

    async def main() -> T:
        runtime = Runtime(load_project(root), output=lambda line: None)
        async with runtime, aiohttp.ClientSession() as session:
            return await asyncio.wait_for(body(Served(runtime, session)), timeout)

    return asyncio.run(main())
