"""Router middleware: ``cors`` and ``compress``.

A middleware is built once per router from the router's options. For each request it
runs :meth:`Middleware.before` with the request and the headers every response of this
request will carry; it may answer the request itself (a CORS preflight) by returning a
response, or return None to go on. :meth:`Middleware.after` sees the response before it
is sent. Options are strings (upstream's ``map[string]string``); empty means default;
dotted keys first, the legacy underscore keys (``allow_origins``) as a fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

Options = Mapping[str, str]


class Middleware:
    def before(self, request: web.BaseRequest, headers: dict[str, str]) -> web.StreamResponse | None:
        return None

    def after(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        return None


def option(options: Options, key: str, default: str) -> str:
    value = options.get(key) or options.get(key.split(".", 1)[1].replace(".", "_")) or ""
    return value.strip() or default


def _csv(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


class Cors(Middleware):
    """Cross-origin requests, as upstream's ``cors`` middleware answers them."""

    def __init__(self, options: Options) -> None:
        origins = option(options, "cors.allow.origins", "*")
        self.any_origin = origins == "*"
        self.origins = _csv(origins)
        self.methods = option(options, "cors.allow.methods", "GET,POST,PUT,DELETE,OPTIONS,PATCH")
        self.headers = option(options, "cors.allow.headers", "Origin,Content-Type,Accept,Authorization,X-Requested-With")
        self.expose = option(options, "cors.expose.headers", "")
        self.credentials = option(options, "cors.allow.credentials", "false").lower() == "true"
        self.max_age = option(options, "cors.max.age", "86400")
        self.private_network = (options.get("cors.allow.private.network") or "") == "true"

    def allowed(self, origin: str) -> bool:
        if self.any_origin:
            return True
        for item in self.origins:
            if item in ("*", origin):
                return True
            if item.startswith("*.") and origin.endswith(item[1:]) and len(origin) > len(item) - 1:
                return True
            if item == "localhost" and _is_localhost(origin):
                return True
        return False

    def before(self, request: web.BaseRequest, headers: dict[str, str]) -> web.StreamResponse | None:
        origin = request.headers.get("Origin")
        if not origin or not self.allowed(origin):
            return None  # no CORS headers; the request goes on as usual
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            out = {**headers, "Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": self.methods,
                   "Access-Control-Max-Age": self.max_age,
                   "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
            if self.headers:
                out["Access-Control-Allow-Headers"] = self.headers
            self._flags(out)
            return web.Response(status=204, headers=out)
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
        if self.expose:
            headers["Access-Control-Expose-Headers"] = self.expose
        self._flags(headers)
        return None

    def _flags(self, headers: dict[str, str]) -> None:
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if self.private_network:
            headers["Access-Control-Allow-Private-Network"] = "true"


def _is_localhost(origin: str) -> bool:
    for scheme in ("http://localhost", "https://localhost"):
        if origin == scheme or origin.startswith(scheme + ":"):
            return True
    return False


class Compress(Middleware):
    """gzip/deflate for clients that accept it (aiohttp compresses the body)."""

    def __init__(self, options: Options) -> None:
        self.min_size = int(option(options, "compress.min.size", "0") or 0)

    def after(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        if "Accept-Encoding" not in request.headers or "Content-Encoding" in response.headers:
            return
        length = response.content_length
        if length is not None and length < self.min_size:
            return
        response.enable_compression()


MIDDLEWARE: dict[str, Callable[[Options], Middleware]] = {"cors": Cors, "compress": Compress}


def build(names: tuple[str, ...], options: Options) -> tuple[Middleware, ...]:
    return tuple(MIDDLEWARE[name](options) for name in names)


__all__: list[Any] = ["MIDDLEWARE", "Compress", "Cors", "Middleware", "build", "option"]
