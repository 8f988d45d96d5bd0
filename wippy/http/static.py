"""``http.static``: files from a directory under a mount path, optionally as an SPA."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from wippy.http.config import StaticConfig

NOT_FOUND_TEXT = "404 page not found\n"


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    out = {**(headers or {}), "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    return web.Response(status=status, body=text.encode(), headers=out)


class StaticMount:
    """Serves ``config.directory`` at ``config.path``. Paths never leave the directory; a
    directory answers with its ``index.html`` (no listings); in SPA mode a path that names
    no file answers with the index page."""

    def __init__(self, config: StaticConfig) -> None:
        self.config = config
        self.root = Path(config.directory).resolve()
        self.mount = config.path.rstrip("/")

    def __str__(self) -> str:
        return self.config.id

    def _file(self, raw_path: str) -> Path | None:
        rel = unquote(raw_path[len(self.mount):]).lstrip("/")
        target = (self.root / rel).resolve()
        if target != self.root and not target.is_relative_to(self.root):
            return None
        return target

    async def serve(self, request: web.BaseRequest, raw_path: str, headers: dict[str, str]) -> web.StreamResponse:
        cfg = self.config
        out = dict(headers)
        if cfg.cache:
            out["Cache-Control"] = cfg.cache
        target = self._file(raw_path)
        if target is not None and target.is_dir():
            if not raw_path.endswith("/"):
                raise web.HTTPMovedPermanently(location=raw_path + "/", headers=out)
            target = target / (cfg.index or "index.html")
        if target is not None and target.is_file():
            return web.FileResponse(target, headers=out)
        if cfg.spa and cfg.index:
            index = self.root / cfg.index
            if not index.is_file():
                return text_response(500, "index file not found\n", out)
            out["Content-Type"] = "text/html; charset=utf-8"
            return web.FileResponse(index, headers=out)
        return text_response(404, NOT_FOUND_TEXT, out)
