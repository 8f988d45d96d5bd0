"""``http.service``: an aiohttp server whose endpoints are Lua function calls.

Per request: match the route (:mod:`.routes`), run the router's middleware, then start the
endpoint's function as a function call with an :class:`AioExchange` attached to it
(``kernel.attached("http")``), which is what the ``http`` module's commands read and
write. When the call ends, the response it built is sent (or, for a streamed response,
finished). A Lua error answers ``500`` with a JSON body and is logged with the entry and
line; the server keeps serving.

Limits: a body past ``max_body`` answers ``413`` (at once when Content-Length says so,
else when the handler reads past it); ``timeouts.read`` bounds reading the body and,
with ``timeouts.idle``, how long a connection may sit without a complete request (so a
client trickling its headers is cut off); ``timeouts.write`` bounds the handler and its
answer (``503`` when it runs out before anything was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from aiohttp.http import HttpVersion11

from wippy.actors.commands.http import ATTACHMENT, CHUNKED, SSE, Exchange, canonical
from wippy.errors import CANCELED, INTERNAL, TIMEOUT, WippyError
from wippy.http import middleware as mw
from wippy.http.config import (
    ENDPOINT_KIND,
    ROUTER_KIND,
    STATIC_KIND,
    EndpointConfig,
    RouterConfig,
    ServiceConfig,
    StaticConfig,
    belongs_to,
)
from wippy.http.routes import ANY_METHOD, Pattern, Route, RouteTable, join
from wippy.http.static import NOT_FOUND_TEXT, StaticMount, text_response

if TYPE_CHECKING:
    from wippy.actors.functions import FunctionCall
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry, Registry

log = logging.getLogger("wippy.http")


class Endpoint:
    """An ``http.endpoint``: the function that answers a route."""

    __slots__ = ("config",)

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config

    def __str__(self) -> str:
        return self.config.id


def build_routes(registry: Registry, service_id: str) -> RouteTable:
    """The routes of the routers, endpoints and static mounts that name ``service_id``.
    Raises INVALID for two routers with one prefix or two routes matching the same requests."""
    table = RouteTable()
    routers: dict[str, tuple[RouterConfig, tuple[Any, ...], tuple[Any, ...]]] = {}
    prefixes: dict[str, str] = {}
    for entry in registry.of_kind(ROUTER_KIND):
        if not belongs_to(entry, "server", service_id):
            continue
        cfg = RouterConfig.from_entry(entry)
        if cfg.prefix in prefixes:
            raise WippyError("Invalid", f"{service_id}: router prefix exists: {entry.id} and {prefixes[cfg.prefix]} "
                                        f"both use {cfg.prefix or '/'!r}", retryable=False)
        prefixes[cfg.prefix] = entry.id
        routers[entry.id] = (cfg, mw.build(cfg.middleware, cfg.options), mw.build(cfg.post_middleware,
                                                                                   cfg.post_options))
    for entry in registry.of_kind(ENDPOINT_KIND):
        ep = EndpointConfig.from_entry(entry)
        if ep.router not in routers:
            continue
        router, pre, post = routers[ep.router]
        try:
            pattern = Pattern.parse(join(router.prefix, ep.path))
        except WippyError as err:
            raise WippyError(err.kind, f"{entry.id}: {err.message}", retryable=False) from None
        table.add(Route(pattern, ep.method, Endpoint(ep), pre, post), entry.id)
    for entry in registry.of_kind(STATIC_KIND):
        if not belongs_to(entry, "server", service_id):
            continue
        st = StaticConfig.from_entry(entry, registry)
        pattern = Pattern.parse(st.path.rstrip("/") + "/")
        table.add(Route(pattern, ANY_METHOD, StaticMount(st), mw.build(st.middleware, st.options)), entry.id)
    return table


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    out = {**(headers or {}), "Content-Type": "application/json"}
    return web.Response(status=status, body=json.dumps(payload, separators=(",", ":")).encode(), headers=out)


def error_response(status: int, message: str, kind: str = "", headers: dict[str, str] | None = None) -> web.Response:
    payload: dict[str, Any] = {"error": message}
    if kind:
        payload["kind"] = kind
    return json_response(status, payload, headers)


def _where(err: WippyError) -> str:
    """The first Lua frame of an error's stack (``file.lua:12``), or ""."""
    for line in (err.stack or "").splitlines()[1:]:
        line = line.strip()
        if line:
            return line.split(": in ", 1)[0]
    return ""


class AioExchange(Exchange):
    """An :class:`Exchange` over an aiohttp request (read lazily: most handlers look at
    little of it)."""

    __slots__ = ("request", "base_headers", "middleware", "stream_response")

    def __init__(self, request: web.BaseRequest, raw_path: str, params: dict[str, str],
                 base_headers: dict[str, str], middleware: tuple[Any, ...], service: HttpService) -> None:
        cfg = service.config
        path = unquote(raw_path) if "%" in raw_path else raw_path
        super().__init__(request.method, path, params=params, server_max_body=cfg.max_body,
                         read_timeout=cfg.read_timeout)
        self.request = request
        self.base_headers = base_headers
        self.middleware = middleware
        self.stream_response: web.StreamResponse | None = None

    def query_items(self) -> Sequence[tuple[str, str]]:
        return list(self.request.query.items())

    def header_items(self) -> Sequence[tuple[str, str]]:
        return list(self.request.headers.items())

    def header_values(self, name: str) -> list[str]:
        return self.request.headers.getall(name, [])

    @property
    def host(self) -> str:
        return self.request.host

    @property
    def remote_addr(self) -> str:
        transport = self.request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        if isinstance(peer, tuple) and len(peer) >= 2:
            return f"[{peer[0]}]:{peer[1]}" if ":" in str(peer[0]) else f"{peer[0]}:{peer[1]}"
        return ""

    @property
    def content_length(self) -> int | None:
        return self.request.content_length

    async def read(self, n: int) -> bytes:
        return await self.request.content.read(n)

    async def start_stream(self) -> None:
        resp = web.StreamResponse(status=self.status or 200, headers={**self.base_headers, **self.out_headers})
        if self.request.version >= HttpVersion11 and resp.content_length is None:
            resp.enable_chunked_encoding()
        for m in self.middleware:
            m.after(self.request, resp)
        self.stream_response = resp
        self.streaming = True
        await resp.prepare(self.request)
        buffered, self.body = self.body, []
        for part in buffered:
            await resp.write(part)

    async def send(self, data: bytes) -> None:
        assert self.stream_response is not None
        await self.stream_response.write(data)

    async def multipart(self, limit: int) -> list[tuple[str, str | None, dict[str, str], bytes]]:
        parts: list[tuple[str, str | None, dict[str, str], bytes]] = []
        total = 0
        try:
            reader = await self.request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    return parts
                if not isinstance(part, BodyPartReader):
                    raise WippyError("Invalid", "nested multipart bodies are not supported", retryable=False)
                content = bytearray()
                while chunk := await part.read_chunk(65536):
                    total += len(chunk)
                    if total > limit:
                        raise self.too_large_error(limit)
                    content.extend(chunk)
                headers = {canonical(k): v for k, v in part.headers.items()}
                parts.append((part.name or "", part.filename, headers, bytes(content)))
        except (ValueError, AssertionError) as exc:  # the library's word for a malformed body
            raise WippyError(INTERNAL, f"malformed multipart body: {exc}", retryable=False) from None


class _Answer:
    """How an endpoint's call ended: known at once for most calls, else a future to await."""

    __slots__ = ("result", "future")

    def __init__(self) -> None:
        self.result: tuple[bool, Any] | None = None
        self.future: asyncio.Future[tuple[bool, Any]] | None = None

    def done(self, ok: bool, value: Any) -> None:
        if self.result is None:
            self.result = (ok, value)
            if self.future is not None and not self.future.done():
                self.future.set_result(self.result)


class HttpService:
    """One ``http.service`` entry once started."""

    reports_state = True

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        self.kernel = kernel
        self.entry = entry
        self.config = ServiceConfig.from_entry(entry)
        self.routes = RouteTable()
        self.port: int | None = None
        self._server: web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._attached = kernel.attached(ATTACHMENT)
        self._no_args: Any = None
        self._bind: Any = None  # rt.http_bind, rt.http_pull (http.lua)
        self._pull: Any = None

    def __repr__(self) -> str:
        return f"<HttpService {self.entry.id} {self.address}>"

    @property
    def address(self) -> str:
        host = self.config.host or "0.0.0.0"
        return f"{host}:{self.port if self.port is not None else self.config.port}"

    @property
    def url(self) -> str:
        """``http://host:port`` to reach the server from this machine."""
        host = self.config.host if self.config.host not in (None, "0.0.0.0", "::") else "127.0.0.1"
        if host and ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def _notify(self, state: str, detail: str | None = None) -> None:
        self.kernel.notify(self.entry.id, state, detail)

    # Lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._notify("starting")
        try:
            await self._start()
        except WippyError as err:
            self._notify("failed", err.message)
            raise

    async def _start(self) -> None:
        self.routes = build_routes(self.kernel.registry, self.entry.id)
        self._no_args = self.kernel.lua_args(())
        rt = self.kernel.vm.rt
        self._bind, self._pull = rt.http_bind, rt.http_pull
        cfg = self.config
        # lingering: how long the rest of an unread body is read (and dropped) before closing
        self._server = web.Server(self._handle, handler_cancellation=True, keepalive_timeout=cfg.idle_timeout,
                                  lingering_time=min(cfg.read_timeout or 10.0, 10.0), access_log=None)
        loop = asyncio.get_running_loop()
        try:
            self._listener = await loop.create_server(self._server, host=cfg.host, port=cfg.port, reuse_address=True)
        except OSError as exc:
            raise WippyError("Unavailable", f"{self.entry.id}: cannot listen on {self.address}: {exc.strerror or exc}",
                             retryable=True) from None
        self.port = int(self._listener.sockets[0].getsockname()[1])
        log.debug("%s: listening on %s", self.entry.id, self.address)
        self._notify("running", f"service listening on {self.address}")

    async def stop(self, timeout: float) -> None:
        self._notify("stopping")
        listener, server = self._listener, self._server
        self._listener = self._server = None
        if listener is not None:
            listener.close()
        if server is not None:
            await server.shutdown(timeout)
        if listener is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), timeout)
        self._notify("stopped")

    def status(self) -> dict[str, Any]:
        return {"state": "running" if self._listener is not None else "stopped",
                "detail": f"listening on {self.address}" if self._listener is not None else None}

    # Requests ----------------------------------------------------------------------------
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw_path = request.raw_path  # as sent: path and query, still escaped
        if "?" in raw_path:
            raw_path = raw_path.split("?", 1)[0]
        found = self.routes.match(request.method, raw_path)
        route = found.route
        if route is None:
            if found.status == 405:
                refused = text_response(405, "Method Not Allowed\n")
                refused.headers["Allow"] = found.allow
                return refused
            if found.status == 301:
                query = request.rel_url.raw_query_string
                location = found.location + ("?" + query if query else "")
                return web.Response(status=301, headers={"Location": location})
            return text_response(404, NOT_FOUND_TEXT)
        headers: dict[str, str] = {}
        for m in route.pre:
            early = m.before(request, headers)
            if early is not None:
                return early
        if found.auto_options:
            return web.Response(status=204, headers=headers)
        for m in route.post:
            early = m.before(request, headers)
            if early is not None:
                return early
        target = route.target
        resp: web.StreamResponse
        try:
            if isinstance(target, StaticMount):
                resp = await target.serve(request, raw_path, headers)
            else:
                resp = await self._call(target, request, raw_path, found.params, headers, route.middleware)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception:  # a bug here must not look like the handler's fault, nor stop the server
            log.exception("%s %s: the server failed to answer", request.method, request.path)
            return error_response(500, "internal server error", INTERNAL)
        if not resp.prepared:
            for m in route.middleware:
                m.after(request, resp)
        return resp

    async def _call(self, endpoint: Endpoint, request: web.BaseRequest, raw_path: str, params: dict[str, str],
                    headers: dict[str, str], middleware: tuple[Any, ...]) -> web.StreamResponse:
        cfg = self.config
        length = request.content_length
        if length is not None and length > cfg.max_body:
            refused = error_response(413, f"request body too large (limit {cfg.max_body} bytes)", "LimitExceeded",
                                     headers)
            refused.force_close()  # rather than read (and drop) the body
            return refused
        ex = AioExchange(request, raw_path, params, headers, middleware, self)
        answer = _Answer()
        func = endpoint.config.func

        def attach(call: FunctionCall, state: Any) -> None:  # (before the call's first command)
            ex.lua_state, ex.lua_pull = state, self._pull
            self._attached[call] = ex

        try:  # the handler's first step runs now: one that does not block has answered on return
            call, state = self.kernel.functions.run(func, self._no_args, answer.done, prepare=attach,
                                                    bind=(self._bind, ex.method.encode(), ex.path.encode()))
        except WippyError as err:
            log.error("%s %s: cannot call %s: %s", request.method, request.path, func, err)
            return error_response(500, err.message, err.kind, headers)
        ex.lua_state, ex.lua_pull = state, self._pull
        if answer.result is not None:  # (always so when run() returned no call: it ran to its end)
            return await self._respond(ex, endpoint, *answer.result)
        assert call is not None
        future = answer.future = asyncio.get_running_loop().create_future()
        try:
            if cfg.write_timeout is None:
                ok, value = await future
            else:
                async with asyncio.timeout(cfg.write_timeout):
                    ok, value = await future
        except TimeoutError:
            call.fail(WippyError(TIMEOUT, f"{func} did not answer within timeouts.write", retryable=True))
            log.error("%s %s: %s did not answer within %gs (timeouts.write)", request.method, request.path, func,
                      cfg.write_timeout or 0)
            if ex.streaming:
                if request.transport is not None:
                    request.transport.close()
                assert ex.stream_response is not None
                return ex.stream_response
            return error_response(503, "the handler did not answer in time", TIMEOUT, headers)
        except asyncio.CancelledError:  # the client went away
            call.fail(WippyError(CANCELED, "the HTTP client closed the connection", retryable=False))
            raise
        return await self._respond(ex, endpoint, ok, value)

    async def _respond(self, ex: AioExchange, endpoint: Endpoint, ok: bool, value: Any) -> web.StreamResponse:
        if not ex.streaming:
            ex.pull()
        if not ok:
            self._log_failure(ex, endpoint, value)
        if ex.streaming:
            resp = ex.stream_response
            assert resp is not None
            if ok:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await resp.write_eof()
            elif ex.request.transport is not None:
                ex.request.transport.close()  # the body is incomplete: do not let it look whole
            return resp
        resp = self._answer(ex, endpoint, ok, value)
        if ex.body_read and not ex.request.content.at_eof():
            resp.force_close()  # the rest of a body the handler gave up on is not worth reading
        return resp

    def _answer(self, ex: AioExchange, endpoint: Endpoint, ok: bool, value: Any) -> web.Response:
        headers = ex.base_headers
        if ex.too_large:
            return error_response(413, f"request body too large (limit {self.config.max_body} bytes)",
                                  "LimitExceeded", headers)
        if not ok:
            err = self._error(value)
            return error_response(500, err.text, err.kind, headers)
        if ex.handled:
            out = {**headers, **ex.out_headers} if headers else ex.out_headers
            body = b"".join(ex.body)
            if body and "Content-Type" not in out:
                out["Content-Type"] = "text/plain; charset=utf-8"
            return web.Response(status=ex.status or 200, body=body, headers=out)
        if value is not None:  # returned a value without writing: answer it as JSON
            try:
                data = self.kernel.vm.to_python(value, "result")
                return json_response(200, data, headers)
            except (WippyError, TypeError, ValueError) as exc:
                log.error("%s %s: %s returned a value that is not JSON: %s", ex.method, ex.path,
                          endpoint.config.func, exc)
                return error_response(500, "the handler returned a value that cannot be sent as JSON", INTERNAL,
                                      headers)
        return error_response(500, "no response sent", INTERNAL, headers)

    def _error(self, value: Any) -> WippyError:
        try:
            err = self.kernel.vm.to_python(value, "error")
        except WippyError as exc:
            return exc
        return err if isinstance(err, WippyError) else WippyError(INTERNAL, str(err))

    def _log_failure(self, ex: AioExchange, endpoint: Endpoint, value: Any) -> None:
        err = self._error(value)
        where = _where(err)
        log.error("%s %s: %s failed%s: %s", ex.method, ex.path, endpoint.config.func,
                  f" at {where}" if where else "", err.text)


__all__ = ["SSE", "CHUNKED", "AioExchange", "HttpService", "build_routes"]
