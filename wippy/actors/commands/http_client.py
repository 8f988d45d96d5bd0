"""Handlers of the ``http_client`` commands: outgoing HTTP requests on aiohttp.

Each request runs as an asyncio task on the runtime's loop and resumes the Lua task with
the response table (or ``nil, err``); the actor ending cancels it. A streamed response
(``stream = true``) stays open until its stream is closed, read to the end, or its actor
ends. Durable workflows do not carry these commands (their dispatchers refuse what they
do not record), so ``http_client`` there is an error: call it from an activity.

Errors follow upstream: transport failures and timeouts are ``Internal`` and retryable,
a bad URL or option ``Invalid``.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from wippy.actors.commands.http import canonical
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.errors import INTERNAL, INVALID, WippyError

if TYPE_CHECKING:
    import aiohttp

    from wippy.actors.actor import Actor
    from wippy.actors.kernel import Kernel

DEFAULT_TIMEOUT = 30.0  # seconds, upstream's default
DEFAULT_MAX_RESPONSE_BODY = 125_829_120
MAX_REDIRECTS = 10


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Options:
    """A request's options, from the table http_client.lua cleaned (strings are bytes)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.headers = {_text(k): _text(v) for k, v in (raw.get("headers") or {}).items()}
        self.query = {_text(k): _text(v) for k, v in (raw.get("query") or {}).items()}
        self.cookies = {_text(k): _text(v) for k, v in (raw.get("cookies") or {}).items()}
        self.form = {_text(k): _text(v) for k, v in (raw.get("form") or {}).items()}
        self.files: list[dict[str, Any]] = list(raw.get("files") or [])
        body = raw.get("body")
        self.body: bytes | None = (body.encode() if isinstance(body, str) else body) or None
        self.timeout = float(raw.get("timeout") or DEFAULT_TIMEOUT)
        auth = raw.get("auth") or {}
        self.auth = (_text(auth.get("user", "")), _text(auth.get("pass", ""))) if auth else None
        self.stream = bool(raw.get("stream"))
        self.max_body = int(raw.get("max_response_body") or 0) or DEFAULT_MAX_RESPONSE_BODY


class ResponseStream:
    """An open response read by ``resp.stream:read(n)``; closing it ends the connection."""

    __slots__ = ("session", "response", "key", "actor", "closed")

    def __init__(self, session: aiohttp.ClientSession, response: aiohttp.ClientResponse, actor: Actor) -> None:
        self.session = session
        self.response = response
        self.actor = actor
        self.closed = False
        self.key = actor.on_close(self.close_soon)

    def close_soon(self) -> None:
        if not self.closed:
            self.closed = True
            self.response.close()
            asyncio.ensure_future(self.session.close())

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.actor.discard_cleanup(self.key)
            self.response.close()
            await self.session.close()

    async def read(self, n: int) -> bytes | None:
        if self.closed:
            return None
        data = await self.response.content.read(n)
        if not data:
            await self.close()
            return None
        return data


def _form_data(opts: Options) -> Any:
    import aiohttp

    form = aiohttp.FormData()
    for k, v in sorted(opts.form.items()):
        form.add_field(k, v)
    for f in opts.files:
        name, content = f.get("name"), f.get("content")
        if not name or content is None:
            continue
        form.add_field(_text(name), content if isinstance(content, bytes) else _text(content).encode(),
                       filename=_text(f.get("filename") or name), content_type="application/octet-stream")
    return form


def _request_body(opts: Options) -> dict[str, Any]:
    import aiohttp

    if opts.files:
        return {"data": _form_data(opts)}
    if opts.form:
        return {"data": aiohttp.FormData(sorted(opts.form.items()))}  # sorted, as Go encodes it
    return {"data": opts.body} if opts.body else {}


def _url_with_query(url: str, query: dict[str, str]) -> Any:
    from yarl import URL

    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise WippyError(INVALID, f"invalid URL {url!r}: {exc}", retryable=False) from None
    if not parsed.scheme or not parsed.host:
        raise WippyError(INVALID, f"invalid URL {url!r}: an absolute http(s) URL is required", retryable=False)
    if parsed.scheme not in ("http", "https"):
        raise WippyError(INVALID, f"unsupported protocol scheme {parsed.scheme!r} in {url!r}", retryable=False)
    if query:
        merged = dict(parsed.query)
        merged.update(query)
        parsed = parsed.with_query(sorted(merged.items()))
    return parsed


async def perform(method: str, url: str, opts: Options, actor: Actor) -> tuple[dict[str, Any], Any]:
    """Send one request; ``(response fields, ResponseStream or None)``."""
    import aiohttp

    target = _url_with_query(url, opts.query)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=opts.timeout),
                                    cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True)
    keep_open = False
    try:
        headers = dict(opts.headers)
        if opts.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in opts.cookies.items())
        if opts.auth:
            token = base64.b64encode(f"{opts.auth[0]}:{opts.auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            response = await session.request(method, target, headers=headers, max_redirects=MAX_REDIRECTS,
                                             **_request_body(opts))
        except TimeoutError:
            raise WippyError(INTERNAL, f"{method} {url}: timeout after {opts.timeout:g}s (Client.Timeout exceeded)",
                             retryable=True) from None
        except aiohttp.InvalidURL as exc:
            raise WippyError(INVALID, f"invalid URL {url!r}: {exc}", retryable=False) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise WippyError(INTERNAL, f"{method} {url}: {exc}", retryable=True) from None
        fields: dict[str, Any] = {"status_code": response.status, "url": str(response.url)}
        headers_out: dict[str, str] = {}
        for name, value in response.headers.items():
            headers_out.setdefault(canonical(name), value)
        if headers_out:
            fields["headers"] = headers_out
        cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        if cookies:
            fields["cookies"] = cookies
        if opts.stream:
            fields["body_size"] = -1
            keep_open = True
            return fields, ResponseStream(session, response, actor)
        body = await _read_body(response, opts, method, url)
        fields["body_size"] = len(body)
        if body:
            fields["body"] = body
        return fields, None
    finally:
        if not keep_open:
            await session.close()


async def _read_body(response: aiohttp.ClientResponse, opts: Options, method: str, url: str) -> bytes:
    import aiohttp

    parts: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = await response.content.read(65536)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > opts.max_body:
                raise WippyError(INTERNAL, f"response body too large (max {opts.max_body} bytes)", retryable=False)
            parts.append(chunk)
    except TimeoutError:
        raise WippyError(INTERNAL, f"{method} {url}: timeout after {opts.timeout:g}s reading the body",
                         retryable=True) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise WippyError(INTERNAL, f"{method} {url}: {exc}", retryable=True) from None


class _Handlers:
    def __init__(self, kernel: Kernel) -> None:
        self.to_lua = kernel.vm.to_lua
        self.to_python = kernel.vm.to_python
        self.scheduler = kernel.scheduler

    def handlers(self) -> dict[str, Any]:
        return {"http_client.request": self.request, "http_client.batch": self.batch,
                "http_client.read": self.read}

    def _spawn(self, task: LuaTask, work: Any, answer: Any) -> Any:
        actor = task.actor
        resume, to_lua = self.scheduler.resume, self.to_lua

        async def runner() -> None:
            try:
                result = await work
            except WippyError as err:
                resume(task, None, to_lua(err))
            except Exception as exc:  # aiohttp's other failures
                resume(task, None, to_lua(WippyError(INTERNAL, str(exc) or type(exc).__name__, retryable=True)))
            else:
                resume(task, *answer(result))

        actor.run_owned(runner())
        return PENDING

    def _options(self, raw: Any) -> Options:
        return Options(self.to_python(raw, "options") if raw is not None else {})

    def request(self, task: LuaTask, method: bytes, url: bytes, raw: Any) -> Any:
        opts = self._options(raw)
        return self._spawn(task, perform(_text(method), _text(url), opts, task.actor),
                           lambda result: (self.to_lua(result[0]), None, result[1]))

    def batch(self, task: LuaTask, requests: Any) -> Any:
        """``requests``: a list of ``{method, url, options}``; answers two arrays (responses,
        errors) with holes where the other one has the value."""
        items = [(_text(r[1]), _text(r[2]), self._options(r[3])) for r in requests.values()]

        async def run_all() -> list[Any]:
            return await asyncio.gather(*(perform(m, u, o, task.actor) for m, u, o in items), return_exceptions=True)

        def answer(results: list[Any]) -> tuple[Any, ...]:
            responses, errors = self.to_lua({}), self.to_lua({})
            failed = False
            for i, result in enumerate(results, 1):
                if isinstance(result, BaseException):
                    err = result if isinstance(result, WippyError) else WippyError(INTERNAL, str(result),
                                                                                  retryable=True)
                    errors[i] = self.to_lua(err)
                    failed = True
                else:
                    responses[i] = self.to_lua(result[0])
            return (responses, errors if failed else None)

        return self._spawn(task, run_all(), answer)

    def read(self, task: LuaTask, n: Any, _timeout: Any, handle: Any) -> Any:
        if not isinstance(handle, ResponseStream):
            raise WippyError(INVALID, "not a response stream", retryable=False)
        if n == -1:
            return self._spawn(task, handle.close(), lambda _r: (True, None))
        size = n if isinstance(n, int) and n > 0 else 65536
        return self._spawn(task, handle.read(size), lambda data: (data, None))


def commands(kernel: Kernel) -> dict[str, Any]:
    return _Handlers(kernel).handlers()
