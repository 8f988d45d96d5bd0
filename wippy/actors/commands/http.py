"""Handlers of the ``http`` module's commands: the request a function call answers and the
response it builds.

The HTTP server (a plugin above the core) starts one function call per request and puts
an :class:`Exchange` for it under ``kernel.attached("http")``, keyed by the call actor.
These handlers find it by ``task.actor``: only the endpoint's own call sees the request
(a function it calls does not: ``http.request()`` there is ``nil, err``), and the core
never imports the server. The server subclasses :class:`Exchange` with the I/O of its
HTTP library (reading the body, writing a streamed response).

The response is buffered until the handler returns, unless it streams (``set_transfer``,
``flush``, ``write_event``): then the headers go out at the first write and every write is
sent as it comes. The header state machine is upstream's: ``set_status`` and the first
``write`` "send the headers", after which ``set_header``/``set_status``/``set_content_type``
answer an INVALID error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wippy.actors.scheduler import PENDING, LuaTask
from wippy.errors import INTERNAL, INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel

ATTACHMENT = "http"  # the kernel.attached() key
DEFAULT_BODY_TIMEOUT_MS = 300_000  # upstream's defaults for http.request(opts)
DEFAULT_MAX_BODY = 125_829_120
CHUNKED, SSE = "chunked", "sse"


_CANONICAL: dict[str, str] = {}


def canonical(name: str) -> str:
    """``x-custom-header`` -> ``X-Custom-Header`` (Go's canonical header form)."""
    known = _CANONICAL.get(name)
    if known is None:
        known = "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))
        if len(_CANONICAL) < 4096:
            _CANONICAL[name] = known
    return known


class Exchange:
    """One HTTP request and the response being built for it.

    The server subclasses it: the request accessors (:meth:`query_items`,
    :meth:`header_values`, :meth:`header_items`, :attr:`host`, :attr:`remote_addr`,
    :attr:`content_length`) and the I/O (:meth:`read`, :meth:`start_stream`, :meth:`send`)
    come from its HTTP library, read only when the handler asks. This base class serves
    a request given as plain data (tests, embedders)."""

    __slots__ = (
        "method", "path", "params", "has_route", "server_max_body", "read_timeout", "status", "out_headers",
        "body", "committed", "handled", "transfer", "streaming", "body_read", "too_large", "eof", "lua_state",
        "lua_pull", "_query", "_headers", "_host", "_remote", "_length",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        *,
        host: str = "",
        remote_addr: str = "",
        content_length: int | None = None,
        params: dict[str, str] | None = None,
        server_max_body: int | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self._query = query
        self._headers = headers or {}
        self._host = host
        self._remote = remote_addr
        self._length = content_length
        self.params = params if params is not None else {}
        self.has_route = params is not None
        self.server_max_body = server_max_body  # the service's limit (413 past it)
        self.read_timeout = read_timeout  # the service's read timeout, seconds
        # response
        self.status: int | None = None
        self.out_headers: dict[str, str] = {}  # canonical name -> value
        self.body: list[bytes] = []
        self.committed = False  # "headers sent" (upstream's state machine)
        self.handled = False  # the handler answered (else: "no response sent")
        self.transfer: str | None = None
        self.streaming = False  # the response went out as a stream (headers written)
        self.body_read = False
        self.too_large = False  # the body passed the service's limit
        self.eof = False
        self.lua_state: Any = None  # the Lua table http.lua keeps the response in
        self.lua_pull: Callable[[Any], tuple[Any, ...]] | None = None  # rt.http_pull of its Lua state

    # The request, as the server's library has it ----------------------------------------
    def query_items(self) -> Sequence[tuple[str, str]]:
        return self._query

    def header_items(self) -> Sequence[tuple[str, str]]:
        return list(self._headers.items())

    def header_values(self, name: str) -> list[str]:
        want = name.lower()
        return [v for k, v in self.header_items() if k.lower() == want]

    @property
    def host(self) -> str:
        return self._host

    @property
    def remote_addr(self) -> str:
        return self._remote

    @property
    def content_length(self) -> int | None:
        """None: unknown (a chunked body)."""
        return self._length

    # I/O, implemented by the server -------------------------------------------------------
    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the request body; b"" at its end."""
        raise NotImplementedError

    async def start_stream(self) -> None:
        """Write the status line and headers now (a streamed response)."""
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        """Write ``data`` to a started stream."""
        raise NotImplementedError

    async def multipart(self, limit: int) -> list[tuple[str, str | None, dict[str, str], bytes]]:
        """The parts of a ``multipart/form-data`` body: (field, filename or None, part
        headers, content); INVALID past ``limit`` bytes in all."""
        raise WippyError(INVALID, "multipart bodies are not supported here", retryable=False)

    # Request helpers ----------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def limit(self, max_body: int) -> int:
        limit = max_body if max_body > 0 else DEFAULT_MAX_BODY
        if self.server_max_body is not None:
            limit = min(limit, self.server_max_body)
        return limit

    def too_large_error(self, limit: int) -> WippyError:
        if self.server_max_body is not None and limit >= self.server_max_body:
            self.too_large = True
        return WippyError(INVALID, "request body too large", retryable=False)

    async def read_all(self, max_body: int) -> bytes:
        if self.body_read:
            raise WippyError(INTERNAL, "request body was already read", retryable=False)
        self.body_read = True
        limit = self.limit(max_body)
        if self.content_length is not None and self.content_length > limit:
            raise self.too_large_error(limit)
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await self.read(65536)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > limit:
                raise self.too_large_error(limit)
            parts.append(chunk)

    # Response helpers ---------------------------------------------------------------------
    def pull(self) -> None:
        """Take the response state from the Lua table (when the call ends, and before the
        headers of a streamed response go out); the buffered body moves here."""
        st, pull = self.lua_state, self.lua_pull
        if st is None or pull is None:
            return
        status, handled, committed, transfer, headers, body = pull(st)
        self.status, self.handled, self.committed = status, handled, committed
        self.transfer = transfer.decode() if transfer else None
        if headers:  # (http.lua keeps one entry per lower-case name)
            items = headers.decode("utf-8", "replace").split("\0")
            self.out_headers = {canonical(name): value for name, value in zip(items[::2], items[1::2], strict=True)}
        else:
            self.out_headers = {}
        if body:
            self.body.append(body)


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _accepts(ex: Exchange, ct: str) -> bool:
    accept = ex.header("Accept")
    if not accept:
        return False
    return any(item.strip() in (ct, "*/*") for item in accept.split(","))


class _Handlers:
    """The ``http.*`` command handlers of one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.pull = kernel.vm.rt.http_pull
        self.attached = kernel.attached(ATTACHMENT)
        self.to_lua = kernel.vm.to_lua
        self.scheduler = kernel.scheduler
        self.getters: dict[bytes, Callable[[Exchange, Any], Any]] = {
            b"method": lambda ex, _a: ex.method.encode(),
            b"path": lambda ex, _a: ex.path.encode(),
            b"host": lambda ex, _a: ex.host.encode(),
            b"remote_addr": lambda ex, _a: ex.remote_addr.encode(),
            b"query": self.query,
            b"query_params": self.query_params,
            b"header": self.header,
            b"headers": self.headers,
            b"content_type": lambda ex, _a: self.header(ex, b"Content-Type"),
            b"content_length": self.content_length,
            b"has_body": lambda ex, _a: bool(ex.content_length),
            b"accepts": lambda ex, ct: _accepts(ex, _to_str(ct)),
            b"is_content_type": lambda ex, prefix: (ex.header("Content-Type") or "").startswith(_to_str(prefix)),
            b"param": self.param,
            b"params": self.params,
        }

    def handlers(self) -> dict[str, Any]:
        return {
            "http.open": self.open,
            "http.req": self.request_get,
            "http.body": self.body,
            "http.read": self.read,
            "http.multipart": self.multipart,
            "http.stream": self.stream,
        }

    # Plumbing ---------------------------------------------------------------------------
    def exchange(self, task: LuaTask) -> Exchange:
        ex = self.attached.get(task.actor)
        if ex is None:
            raise WippyError(INTERNAL, "no HTTP request context found", retryable=False)
        return ex

    def fail(self, err: WippyError) -> tuple[None, Any]:
        return (None, self.to_lua(err))

    def invalid(self, message: str) -> tuple[Any]:
        return (self.to_lua(WippyError(INVALID, message, retryable=False)),)

    def run_io(self, task: LuaTask, work: Coroutine[Any, Any, Any], answer: Callable[[Any], tuple[Any, ...]],
               timeout: float | None, what: str, error_only: bool = False) -> Any:
        """Run ``work`` on the loop; resume ``task`` with ``answer(result)`` or ``nil, err``
        (``err`` alone with ``error_only``). The actor ending cancels it."""
        actor = task.actor
        scheduler = self.scheduler
        to_lua = self.to_lua

        def resume(task: LuaTask, *values: Any) -> None:
            scheduler.resume(task, *(values[1:] if error_only and values[0] is None else values))

        async def runner() -> None:
            try:
                async with asyncio.timeout(timeout):
                    result = await work
            except TimeoutError:
                err = WippyError(INTERNAL, f"{what}: request timeout after {int((timeout or 0) * 1000)}ms",
                                 retryable=True)
                resume(task, None, to_lua(err))
            except WippyError as err:
                resume(task, None, to_lua(err))
            except Exception as exc:  # connection and the library's payload errors
                resume(task, None, to_lua(WippyError(INTERNAL, f"{what}: {exc}", retryable=True)))
            else:
                resume(task, *answer(result))

        actor.run_owned(runner())
        return PENDING

    @staticmethod
    def body_timeout(ex: Exchange, timeout_ms: Any) -> float:
        ms = timeout_ms if isinstance(timeout_ms, (int, float)) and timeout_ms > 0 else DEFAULT_BODY_TIMEOUT_MS
        seconds = ms / 1000
        if ex.read_timeout:
            seconds = min(seconds, ex.read_timeout)
        return seconds

    # The request ------------------------------------------------------------------------
    def open(self, task: LuaTask, what: bytes, state: Any = None) -> Any:
        """``http.request()`` gets the method and path (kept in the object: ``tostring``
        cannot block); ``http.response()`` gets the call's response state table (the one
        it offers, the first time)."""
        try:
            ex = self.exchange(task)
        except WippyError as err:
            return self.fail(err)
        if what == b"request":
            return (ex.method.encode(), ex.path.encode())
        if ex.lua_state is None:
            ex.lua_state, ex.lua_pull = state, self.pull
        return (ex.lua_state, None)

    def query_params(self, ex: Exchange, _arg: Any) -> Any:
        out: dict[str, list[str]] = {}
        for k, v in ex.query_items():
            out.setdefault(k, []).append(v)
        return self.to_lua({k: ",".join(v) for k, v in out.items()})

    @staticmethod
    def query(ex: Exchange, key: Any) -> Any:
        name = _to_str(key)
        for k, v in ex.query_items():
            if k == name:
                return v.encode()
        return None

    @staticmethod
    def param(ex: Exchange, key: Any) -> Any:
        if not ex.has_route:
            raise WippyError(INTERNAL, "no route parameters found", retryable=False)
        value = ex.params.get(_to_str(key))
        return value.encode() if value else None

    def params(self, ex: Exchange, _arg: Any) -> Any:
        if not ex.has_route:
            raise WippyError(INTERNAL, "no route parameters found", retryable=False)
        return self.to_lua({k: v for k, v in ex.params.items() if v})

    def headers(self, ex: Exchange, _arg: Any) -> Any:
        out: dict[str, list[str]] = {}
        for k, v in ex.header_items():
            out.setdefault(canonical(k), []).append(v)
        return self.to_lua({k: ", ".join(v) for k, v in out.items()})

    @staticmethod
    def header(ex: Exchange, name: Any) -> Any:
        value = ex.header(_to_str(name))
        return None if value is None else value.encode()

    @staticmethod
    def content_length(ex: Exchange, _arg: Any) -> Any:
        if ex.content_length is None:
            return -1 if ex.header("Transfer-Encoding") else 0
        return ex.content_length

    def request_get(self, task: LuaTask, what: bytes, arg: Any = None) -> Any:
        try:
            value = self.getters[what](self.exchange(task), arg)
        except WippyError as err:
            return self.fail(err)
        return (value, None)

    def body(self, task: LuaTask, max_body: Any, timeout_ms: Any) -> Any:
        try:
            ex = self.exchange(task)
        except WippyError as err:
            return self.fail(err)
        limit = max_body if isinstance(max_body, int) else 0
        return self.run_io(task, ex.read_all(limit), lambda data: (data, None), self.body_timeout(ex, timeout_ms),
                           "failed to read body")

    def read(self, task: LuaTask, n: Any, timeout_ms: Any, _handle: Any = None) -> Any:
        """``stream:read(n)`` on the request body; ``n == -1`` is ``close()``."""
        try:
            ex = self.exchange(task)
        except WippyError as err:
            return self.fail(err)
        if n == -1:
            return (True, None)
        size = n if isinstance(n, int) and n > 0 else 4096

        async def chunk() -> bytes | None:
            if ex.eof:
                return None
            data = await ex.read(size)
            if not data:
                ex.eof = True
                return None
            return data

        ex.body_read = True
        return self.run_io(task, chunk(), lambda data: (data, None), self.body_timeout(ex, timeout_ms),
                           "failed to read body")

    def multipart(self, task: LuaTask, max_mem: Any, timeout_ms: Any) -> Any:
        """``{files = {field = {{name, size, headers, content}, ...}}, values = {field = v or {v...}}}``."""
        try:
            ex = self.exchange(task)
        except WippyError as err:
            return self.fail(err)
        if not (ex.header("Content-Type") or "").startswith("multipart/form-data"):
            return self.fail(WippyError(INVALID, "request Content-Type is not multipart/form-data", retryable=False))
        if ex.body_read:
            return self.fail(WippyError(INTERNAL, "request body was already read", retryable=False))
        ex.body_read = True
        limit = ex.limit(max_mem if isinstance(max_mem, int) else 0)

        def answer(parts: list[tuple[str, str | None, dict[str, str], bytes]]) -> tuple[Any, ...]:
            files: dict[str, list[Any]] = {}
            values: dict[str, list[bytes]] = {}
            for field, filename, headers, content in parts:
                if filename is None:
                    values.setdefault(field, []).append(content)
                else:
                    files.setdefault(field, []).append(
                        {"name": filename, "size": len(content), "headers": headers, "content": content})
            plain = {k: v[0] if len(v) == 1 else v for k, v in values.items()}
            return (self.to_lua({"files": files, "values": plain}), None)

        return self.run_io(task, ex.multipart(limit), answer, self.body_timeout(ex, timeout_ms),
                           "failed to parse multipart form")

    # The response ---------------------------------------------------------------------
    def stream(self, task: LuaTask, data: bytes) -> Any:
        """A write to a streamed response: the first one sends the status and headers."""
        try:
            ex = self.exchange(task)
        except WippyError as err:
            return (self.to_lua(err),)

        async def send() -> None:
            if not ex.streaming:
                ex.pull()
                ex.lua_state[b"streaming"] = True
                await ex.start_stream()
            if data:
                await ex.send(data)

        return self.run_io(task, send(), lambda _r: (None,), None, "write failed", error_only=True)


def commands(kernel: Kernel) -> dict[str, Any]:
    return _Handlers(kernel).handlers()


__all__ = ["ATTACHMENT", "CHUNKED", "DEFAULT_MAX_BODY", "SSE", "Exchange", "canonical", "commands"]
