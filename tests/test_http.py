"""The HTTP server: routing, the ``http`` module, bad requests, CORS, static files, limits.

Every test starts the real server on 127.0.0.1 (a port the OS picks) and talks to it with
a real aiohttp client; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.test_http_helpers import Served, serve, write
from wippy import Runtime, load_project
from wippy.errors import LoadError

INDEX = """\
namespace: app
entries:
  - name: gateway
    kind: http.service
    addr: "127.0.0.1:0"
    lifecycle: {auto_start: true}
  - name: tight
    kind: http.service
    addr: "127.0.0.1:0"
    max_body: 1024
    timeouts: {read: 300ms, write: 500ms, idle: 2s}
    lifecycle: {auto_start: true}
  - name: spa_server
    kind: http.service
    addr: "127.0.0.1:0"
    lifecycle: {auto_start: true}

  - name: api
    kind: http.router
    meta: {server: gateway}
    prefix: /
  - name: v1
    kind: http.router
    meta: {server: gateway}
    prefix: /api/v1/
  - name: cors_api
    kind: http.router
    meta: {server: gateway}
    prefix: /cors
    middleware: [cors]
    options:
      cors.allow.origins: "localhost, https://app.example.com, *.trusted.dev"
      cors.expose.headers: "X-Total"
  - name: tight_api
    kind: http.router
    meta: {server: tight}

  - name: public
    kind: fs.directory
    directory: public
  - name: assets
    kind: http.static
    meta: {server: gateway}
    path: /static
    fs: public
    static_options: {cache: "public, max-age=60"}
  - name: spa
    kind: http.static
    meta: {server: spa_server}
    path: /
    fs: public
    static_options: {spa: true, index: index.html}

  - name: inner
    kind: function.lua
    source: file://handlers.lua
    method: inner
    modules: [http, funcs, time]
"""

# name -> (router, method, path, lua method)
ENDPOINTS = {
    "hello": ("api", "GET", "/hello", "hello"),
    "user": ("api", "GET", "/users/{id}", "user"),
    "me": ("api", "GET", "/users/me", "me"),
    "post_user": ("api", "POST", "/users/{id}", "user"),
    "files": ("api", "GET", "/files/{rest...}", "files"),
    "legacy": ("api", "GET", "/legacy/:name/info", "user"),
    "tree": ("api", "GET", "/tree/", "tree"),
    "echo": ("api", "POST", "/echo", "echo"),
    "echo_get": ("api", "GET", "/echo", "echo"),
    "json_in": ("api", "POST", "/json", "json_in"),
    "states": ("api", "GET", "/states", "states"),
    "fluent": ("api", "GET", "/fluent", "fluent"),
    "text": ("api", "GET", "/text", "text"),
    "value": ("api", "GET", "/value", "value"),
    "nothing": ("api", "GET", "/nothing", "nothing"),
    "only_type": ("api", "GET", "/only-type", "only_type"),
    "boom": ("api", "GET", "/boom", "boom"),
    "errval": ("api", "GET", "/errval", "errval"),
    "sse": ("api", "GET", "/sse", "sse"),
    "chunked": ("api", "GET", "/chunked", "chunked"),
    "stream": ("api", "POST", "/stream", "stream"),
    "sealed": ("api", "GET", "/sealed", "sealed"),
    "form": ("api", "POST", "/form", "form"),
    "v1_items": ("v1", "GET", "/items", "hello"),
    "cors_get": ("cors_api", "GET", "/things", "hello"),
    "cors_post": ("cors_api", "POST", "/things", "hello"),
    "upload": ("tight_api", "POST", "/upload", "upload"),
    "upload_small": ("tight_api", "POST", "/upload-small", "upload_small"),
    "slow": ("tight_api", "GET", "/slow", "slow"),
    "tight_hello": ("tight_api", "GET", "/hello", "hello"),
    "from_coroutine": ("api", "GET", "/from-coroutine", "from_coroutine"),
    "blocks_midway": ("api", "GET", "/blocks-midway", "blocks_midway"),
    "spin": ("api", "GET", "/spin", "spin"),
}

HANDLERS = """\
local http = require("http")
local funcs = require("funcs")
local time = require("time")

local M = {}

local function json(status, value)
  local res = http.response()
  res:set_content_type(http.CONTENT.JSON)
  res:set_status(status)
  res:write_json(value)
end

function M.hello()
  local res = http.response()
  res:set_content_type(http.CONTENT.JSON)
  res:set_status(http.STATUS.OK)
  res:write_json({message = "hello world"})
end

function M.user()
  local req = http.request()
  json(200, {id = req:param("id"), name = req:param("name"), params = req:params(), path = req:path()})
end

function M.me() json(200, {me = true}) end

function M.files()
  local req = http.request()
  json(200, {rest = req:param("rest"), path = req:path()})
end

function M.tree() json(200, {tree = http.request():path()}) end

function M.echo()
  local req = http.request()
  local body = req:body()
  json(200, {
    method = req:method(), path = req:path(), query_all = req:query_params(), q = req:query("q"),
    missing = req:query("nope"), custom = req:header("x-custom-header"), content_type = req:content_type(),
    content_length = req:content_length(), has_body = req:has_body(), body = body, host = req:host(),
    remote = req:remote_addr(), accepts_json = req:accepts("application/json"),
    is_json = req:is_content_type("application/json"), tostring = tostring(req),
    resp_tostring = tostring(http.response()),
  })
end

function M.json_in()
  local req = http.request()
  local data, err = req:body_json()
  if err then
    return http.response():status(http.STATUS.BAD_REQUEST):json({error = tostring(err), kind = err:kind()})
  end
  json(201, {got = data})
end

function M.states()
  local res = http.response()
  local out = {}
  out.ct = res:set_content_type("text/plain")          -- nil: fine before the headers go out
  out.h1 = res:set_header("X-One", "1")                 -- nil
  out.status = res:set_status(201)                      -- nil; the headers are now sent
  local e1 = res:set_header("X-Two", "2")
  local e2 = res:set_status(202)
  local e3 = res:set_content_type("text/html")
  local e4 = res:set_transfer("chunked")
  res:write(table.concat({e1:kind(), e2:kind(), e3:kind(), e4:kind()}, ","))
  res:write("|" .. tostring(out.ct) .. tostring(out.h1) .. tostring(out.status))
end

function M.fluent()
  return http.response():status(409):header("X-Reason", "taken"):json({error = "already exists"})
end

function M.text() http.response():status(418):text("short and stout") end

function M.value() return {computed = true, items = {1, 2, 3}} end

function M.nothing() end

function M.only_type() http.response():set_content_type("text/plain") end

function M.boom()
  local x = nil
  error("boom: the handler broke")
end

function M.errval()
  return nil, errors.new({kind = errors.NOT_FOUND, message = "no such thing"})
end

function M.sse()
  local res = http.response()
  res:write_event({name = "start", data = {n = 1}})
  res:write_event({name = "data", data = "two"})
  res:write_event({name = "end", data = {done = true}})
end

function M.chunked()
  local res = http.response()
  res:set_transfer(http.TRANSFER.CHUNKED)
  res:set_content_type("text/plain")
  for _, part in ipairs({"one ", "two ", "three"}) do
    res:write(part)
    res:flush()
  end
end

function M.stream()
  local req = http.request()
  local s = req:stream()
  local parts, chunks = {}, 0
  while true do
    local chunk, err = s:read(4)
    if err then error(err) end
    if chunk == nil then break end
    chunks = chunks + 1
    parts[#parts + 1] = chunk
  end
  s:close()
  json(200, {content = table.concat(parts), chunks = chunks})
end

function M.form()
  local form, err = http.request():parse_multipart()
  if err then return http.response():status(400):json({error = tostring(err), kind = err:kind()}) end
  local files = {}
  for field, list in pairs(form.files) do
    for _, f in ipairs(list) do
      local s, parts = f:stream(), {}
      while true do
        local chunk = s:read(3)
        if not chunk then break end
        parts[#parts + 1] = chunk
      end
      files[#files + 1] = {field = field, name = f:name(), size = f:size(), type = f:header("content-type"),
                           content = table.concat(parts), str = tostring(f)}
    end
  end
  json(200, {values = form.values, files = files})
end

function M.sealed()
  local got, err = funcs.call("app:inner")
  json(200, {inner = got, err = err and tostring(err)})
end

function M.inner()
  local req, err = http.request()
  local res, rerr = http.response()
  return {req = req == nil, err = tostring(err), kind = err and err:kind(), res = res == nil}
end

function M.upload()
  local body, err = http.request():body()
  if err then error(err) end
  json(200, {size = #body})
end

function M.upload_small()
  local body, err = http.request({max_body = 10}):body()
  if err then return http.response():status(400):json({error = tostring(err), kind = err:kind()}) end
  json(200, {size = #body})
end

function M.slow()
  time.sleep("3s")
  json(200, {late = true})
end

-- The response is the call's, whichever of its coroutines writes it.
function M.from_coroutine()
  http.response():set_header("X-Main", "yes")
  local written = channel.new(1)
  coroutine.spawn(function()
    local res = http.response()
    res:set_status(201)
    res:write("written by a coroutine")
    written:send(true)
  end)
  written:receive()
end

-- Half the answer before the handler blocks, half after.
function M.blocks_midway()
  local res = http.response()
  res:set_header("X-Before", "set")
  time.sleep("1ms")
  res:write_json({after = true, method = http.request():method()})
end

function M.spin()
  while true do end
end

return M
"""


def project(root: Path) -> Path:
    lines = [INDEX]
    for name, (router, method, path, fn) in ENDPOINTS.items():
        lines.append(
            f"  - name: {name}\n    kind: function.lua\n    source: file://handlers.lua\n    method: {fn}\n"
            f"    modules: [http, funcs, time]\n"
            f"  - name: {name}.endpoint\n    kind: http.endpoint\n    meta: {{router: {router}}}\n"
            f"    method: {method}\n    path: \"{path}\"\n    func: {name}\n"
        )
    return write(root, {
        "_index.yaml": "".join(lines),
        "handlers.lua": HANDLERS,
        "public/index.html": "<html>spa index</html>\n",
        "public/app.js": "console.log('hi')\n",
        "public/docs/index.html": "<html>docs</html>\n",
        "secret.txt": "do not serve\n",
    })


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("http"))


def run(root: Path, body: Any) -> Any:
    return serve(root, body)


# Routing -------------------------------------------------------------------------------
def test_routes_params_and_the_most_specific_pattern(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.get("/users/42")
        assert status == 200 and json.loads(text) == {"id": "42", "params": {"id": "42"}, "path": "/users/42"}
        status, _, text = await s.get("/users/me")  # the literal beats {id}
        assert json.loads(text) == {"me": True}
        status, _, text = await s.request("POST", "/users/7")
        assert json.loads(text)["id"] == "7"
        status, _, text = await s.get("/legacy/ada/info")  # :name is {name}
        assert json.loads(text)["name"] == "ada"
        status, _, text = await s.get("/files/a/b/c.txt")  # a tail is matched, not exposed
        assert json.loads(text) == {"path": "/files/a/b/c.txt"}
        status, _, text = await s.get("/tree/deep/er")  # a trailing slash is a subtree
        assert json.loads(text) == {"tree": "/tree/deep/er"}
        status, _, text = await s.get("/api/v1/items")  # router prefix (its trailing / trimmed)
        assert status == 200 and json.loads(text) == {"message": "hello world"}
        status, _, text = await s.get("/users/%C3%A9t%C3%A9")  # params are unescaped
        assert json.loads(text)["id"] == "été"

    run(root, body)


def test_unknown_routes_wrong_methods_head_and_unclean_paths(root: Path) -> None:
    async def body(s: Served) -> None:
        status, headers, text = await s.get("/nope")
        assert (status, text) == (404, "404 page not found\n")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        status, headers, text = await s.request("DELETE", "/hello")
        assert (status, text) == (405, "Method Not Allowed\n")
        assert headers["Allow"] == "GET, HEAD, OPTIONS"
        status, headers, _ = await s.request("PUT", "/users/1")
        assert headers["Allow"] == "GET, HEAD, OPTIONS, POST"
        status, headers, text = await s.request("HEAD", "/hello")  # a GET route answers HEAD
        assert status == 200 and text == "" and headers["Content-Type"] == "application/json"
        status, _, text = await s.request("OPTIONS", "/hello")  # the automatic OPTIONS answer
        assert (status, text) == (204, "")
        status, headers, _ = await s.get("//hello")
        assert status == 301 and headers["Location"] == "/hello"
        status, headers, _ = await s.get("/users/../hello?x=1")
        assert status == 301 and headers["Location"] == "/hello?x=1"
        status, headers, _ = await s.get("/tree")
        assert status == 301 and headers["Location"] == "/tree/"

    run(root, body)


# The request ---------------------------------------------------------------------------
def test_the_request_accessors(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.request(
            "POST", "/echo?q=search&t=a&t=b", data=b'{"k": 1}',
            headers={"X-Custom-Header": "v1", "Content-Type": "application/json", "Accept": "text/html, */*"})
        assert status == 200
        got = json.loads(text)
        assert got["method"] == "POST" and got["path"] == "/echo"
        assert got["query_all"] == {"q": "search", "t": "a,b"} and got["q"] == "search" and "missing" not in got
        assert got["custom"] == "v1"  # header names are case-insensitive
        assert got["content_type"] == "application/json" and got["is_json"] is True
        assert got["content_length"] == 8 and got["has_body"] is True and got["body"] == '{"k": 1}'
        assert got["host"] == f"127.0.0.1:{s.port()}"
        assert got["remote"].startswith("127.0.0.1:")
        assert got["accepts_json"] is True  # through */*
        assert got["tostring"] == "http.Request{method=POST, path=/echo}"
        assert got["resp_tostring"] == "http.Response{}"
        status, _, text = await s.get("/echo", headers={"Accept": "text/html;q=0.9"})
        got = json.loads(text)
        assert got["body"] == "" and got["has_body"] is False and got["content_length"] == 0
        assert not got["query_all"] and got["accepts_json"] is False  # {} (encoded as [] by json)

    run(root, body)


def test_json_in_and_out_and_malformed_json(root: Path) -> None:
    async def body(s: Served) -> None:
        status, headers, text = await s.request("POST", "/json", json={"name": "test", "value": 42})
        assert status == 201 and headers["Content-Type"] == "application/json"
        assert json.loads(text) == {"got": {"name": "test", "value": 42}}
        status, _, text = await s.request("POST", "/json", data=b'{"name": ')
        assert status == 400
        got = json.loads(text)
        assert got["kind"] == "Invalid" and got["error"].startswith("invalid JSON")
        status, _, text = await s.request("POST", "/json", data=b"")
        assert status == 400 and json.loads(text)["kind"] == "Invalid"

    run(root, body)


def test_a_body_read_as_a_stream(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.request("POST", "/stream", data=b"0123456789")
        assert status == 200 and json.loads(text) == {"content": "0123456789", "chunks": 3}

        async def chunks() -> Any:  # a chunked upload (no Content-Length)
            for part in (b"ab", b"cd", b"e"):
                yield part

        status, _, text = await s.request("POST", "/stream", data=chunks())
        assert json.loads(text)["content"] == "abcde"

    run(root, body)


def test_the_request_is_only_for_the_endpoints_own_call(root: Path, tmp_path: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.get("/sealed")
        inner = json.loads(text)["inner"]
        assert inner == {"req": True, "res": True, "err": "no HTTP request context found", "kind": "Internal"}

    run(root, body)
    # and outside any HTTP call
    runtime = Runtime(load_project(root), output=lambda line: None)
    got = asyncio.run(runtime.call("app:inner"))
    assert got["req"] is True and got["kind"] == "Internal"


def test_multipart_forms(root: Path) -> None:
    import aiohttp

    async def body(s: Served) -> None:
        form = aiohttp.FormData()
        form.add_field("title", "report")
        form.add_field("tag", "a")
        form.add_field("tag", "b")
        form.add_field("doc", b"file body", filename="a.txt", content_type="text/plain")
        status, _, text = await s.request("POST", "/form", data=form)
        assert status == 200, text
        got = json.loads(text)
        assert got["values"] == {"title": "report", "tag": ["a", "b"]}
        assert got["files"] == [{"field": "doc", "name": "a.txt", "size": 9, "type": "text/plain",
                                 "content": "file body", "str": "http.MultipartFile{name=a.txt, size=9}"}]
        status, _, text = await s.request("POST", "/form", data=b"plain")
        assert status == 400 and json.loads(text)["kind"] == "Invalid"

    run(root, body)


# The response --------------------------------------------------------------------------
def test_the_header_state_machine(root: Path) -> None:
    async def body(s: Served) -> None:
        status, headers, text = await s.get("/states")
        assert status == 201
        assert headers["X-One"] == "1" and "X-Two" not in headers
        assert headers["Content-Type"] == "text/plain"
        assert text == "Invalid,Invalid,Invalid,Invalid|nilnilnil"

    run(root, body)


def test_the_fluent_form_returned_values_and_missing_answers(root: Path) -> None:
    async def body(s: Served) -> None:
        status, headers, text = await s.get("/fluent")
        assert status == 409 and headers["X-Reason"] == "taken"
        assert headers["Content-Type"] == "application/json" and json.loads(text) == {"error": "already exists"}
        status, headers, text = await s.get("/text")
        assert (status, text) == (418, "short and stout")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        status, headers, text = await s.get("/value")  # a returned value is sent as JSON
        assert status == 200 and json.loads(text) == {"computed": True, "items": [1, 2, 3]}
        for path in ("/nothing", "/only-type"):  # set_content_type alone is no answer
            status, headers, text = await s.get(path)
            assert status == 500 and json.loads(text)["error"] == "no response sent"

    run(root, body)


def test_a_lua_error_answers_500_with_json_is_logged_and_the_server_keeps_serving(
        root: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(s: Served) -> None:
        for _ in range(3):
            status, headers, text = await s.get("/boom")
            assert status == 500 and headers["Content-Type"] == "application/json"
            assert "boom: the handler broke" in json.loads(text)["error"]
            status, _, text = await s.get("/hello")
            assert status == 200 and json.loads(text) == {"message": "hello world"}
        status, _, text = await s.get("/errval")  # `return nil, err` is a failure too
        assert status == 500 and json.loads(text) == {"error": "no such thing", "kind": "NotFound"}

    with caplog.at_level(logging.ERROR, logger="wippy.http"):
        run(root, body)
    failures = [r.getMessage() for r in caplog.records if "app:boom" in r.getMessage()]
    assert len(failures) == 3
    line = next(i for i, text in enumerate(HANDLERS.splitlines(), 1) if 'error("boom' in text)
    assert f"at handlers.lua:{line}" in failures[0] and "GET /boom" in failures[0], failures[0]


def test_the_response_survives_blocking_and_is_shared_with_the_calls_coroutines(root: Path) -> None:
    async def body(s: Served) -> None:
        for _ in range(2):  # (the second time on a coroutine the first call may have left)
            status, headers, text = await s.get("/blocks-midway")
            assert status == 200 and headers["X-Before"] == "set"
            assert json.loads(text) == {"after": True, "method": "GET"}
            status, headers, text = await s.get("/from-coroutine")
            assert (status, headers["X-Main"], text) == (201, "yes", "written by a coroutine")

    run(root, body)


def test_a_handler_that_never_yields_is_stopped_and_the_server_keeps_serving(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.get("/spin")
        assert status == 500 and json.loads(text)["kind"] == "LimitExceeded"
        for _ in range(3):
            status, _, text = await s.get("/hello")
            assert status == 200 and json.loads(text) == {"message": "hello world"}

    run(root, body)


def test_server_sent_events_and_chunked_writes(root: Path) -> None:
    async def body(s: Served) -> None:
        async with s.session.get(s.url() + "/sse") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["Cache-Control"] == "no-cache"
            text = await resp.text()
        assert text == ('event: start\ndata: {"n":1}\n\nevent: data\ndata: "two"\n\n'
                        'event: end\ndata: {"done":true}\n\n')
        async with s.session.get(s.url() + "/chunked") as resp:
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            parts = [chunk async for chunk in resp.content.iter_any()]
        assert b"".join(parts) == b"one two three"

    run(root, body)


# Limits --------------------------------------------------------------------------------
def test_bodies_past_the_limit_get_413(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.request("POST", "/upload", "app:tight", data=b"x" * 1000)
        assert status == 200 and json.loads(text) == {"size": 1000}
        status, _, text = await s.request("POST", "/upload", "app:tight", data=b"x" * 5000)  # Content-Length
        assert status == 413 and json.loads(text)["kind"] == "LimitExceeded"

        async def chunks() -> Any:  # no Content-Length: found while reading
            for _ in range(10):
                yield b"y" * 500

        status, _, text = await s.request("POST", "/upload", "app:tight", data=chunks())
        assert status == 413
        # a handler's own smaller limit is the handler's to answer
        status, _, text = await s.request("POST", "/upload-small", "app:tight", data=b"z" * 50)
        assert status == 400 and json.loads(text) == {"error": "request body too large", "kind": "Invalid"}
        status, _, _ = await s.get("/hello", "app:tight")
        assert status == 200

    run(root, body)


async def _read_until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    return await asyncio.wait_for(reader.read(), limit)


def test_a_slow_client_cannot_hold_the_server(root: Path) -> None:
    """A client trickling its request headers is cut off after the read/idle timeout; a
    client that stops sending its body makes the handler's read fail; other requests are
    answered meanwhile."""

    async def body(s: Served) -> None:
        port = s.port("app:tight")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
        await writer.drain()
        for _ in range(5):  # served while the slow one hangs
            status, _, _ = await s.get("/hello", "app:tight")
            assert status == 200
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await _read_until_closed(reader, 10) == b""  # the server closed it
        assert loop.time() - started < 5
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        answer = await _read_until_closed(reader, 10)
        assert answer.startswith(b"HTTP/1.1 500"), answer
        assert b"request timeout" in answer
        writer.close()

    run(root, body)


def test_a_handler_past_the_write_timeout_gets_503(root: Path) -> None:
    async def body(s: Served) -> None:
        status, _, text = await s.get("/slow", "app:tight")
        assert status == 503 and json.loads(text)["kind"] == "Timeout"
        status, _, _ = await s.get("/hello", "app:tight")
        assert status == 200

    run(root, body)


# CORS ----------------------------------------------------------------------------------
def test_cors_preflight_actual_and_rejected_origins(root: Path) -> None:
    async def body(s: Served) -> None:
        origin = "http://localhost:5173"
        status, headers, text = await s.request("OPTIONS", "/cors/things", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type"})
        assert status == 204 and text == ""
        assert headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in headers["Access-Control-Allow-Methods"] and headers["Access-Control-Max-Age"] == "86400"
        assert "Content-Type" in headers["Access-Control-Allow-Headers"]
        status, headers, _ = await s.request("POST", "/cors/things", headers={"Origin": origin})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == origin
        assert headers["Vary"] == "Origin" and headers["Access-Control-Expose-Headers"] == "X-Total"
        for good in ("http://localhost", "https://localhost:3000", "https://app.example.com",
                     "https://api.trusted.dev"):
            _, headers, _ = await s.get("/cors/things", headers={"Origin": good})
            assert headers.get("Access-Control-Allow-Origin") == good, good
        for bad in ("https://evil-site.com", "https://localhost.evil.com", "https://trusted.dev.evil.com"):
            status, headers, _ = await s.get("/cors/things", headers={"Origin": bad})
            assert status == 200 and "Access-Control-Allow-Origin" not in headers, bad
        status, headers, _ = await s.request("OPTIONS", "/cors/things", headers={
            "Origin": "https://evil-site.com", "Access-Control-Request-Method": "POST"})
        assert status == 204 and "Access-Control-Allow-Origin" not in headers
        status, headers, _ = await s.get("/cors/nope", headers={"Origin": origin})  # no route, no CORS
        assert status == 404 and "Access-Control-Allow-Origin" not in headers
        _, headers, _ = await s.get("/hello", headers={"Origin": origin})  # a router without cors
        assert "Access-Control-Allow-Origin" not in headers

    run(root, body)


# Static files --------------------------------------------------------------------------
def test_static_files(root: Path) -> None:
    async def body(s: Served) -> None:
        status, headers, text = await s.get("/static/app.js")
        assert status == 200 and text == "console.log('hi')\n"
        assert "javascript" in headers["Content-Type"] and headers["Cache-Control"] == "public, max-age=60"
        status, _, text = await s.get("/static/docs/")
        assert status == 200 and text == "<html>docs</html>\n"
        status, headers, _ = await s.get("/static/docs")
        assert status == 301 and headers["Location"] == "/static/docs/"
        status, _, text = await s.get("/static/missing.css")
        assert (status, text) == (404, "404 page not found\n")
        for sneaky in ("/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt"):
            status, _, text = await s.get(sneaky)
            assert "do not serve" not in text and status in (301, 404), (sneaky, status)
        # SPA: files when they exist, the index for any other path
        status, _, text = await s.get("/app.js", "app:spa_server")
        assert status == 200 and text == "console.log('hi')\n"
        status, headers, text = await s.get("/users/123/settings", "app:spa_server")
        assert status == 200 and text == "<html>spa index</html>\n"
        assert headers["Content-Type"] == "text/html; charset=utf-8"

    run(root, body)


# Configuration -------------------------------------------------------------------------
BAD_ENTRIES = {
    "unknown middleware": ("  - {name: r2, kind: http.router, meta: {server: gateway}, prefix: /x, "
                           "middleware: [cors, websocket_relay]}\n", "middleware not found: websocket_relay"),
    "router without a server": ("  - {name: r2, kind: http.router, prefix: /x}\n", "meta.server"),
    "router of a missing server": ("  - {name: r2, kind: http.router, meta: {server: nowhere}}\n",
                                   "app:nowhere, which does not exist"),
    "endpoint path": ("  - {name: e2, kind: http.endpoint, meta: {router: api}, method: GET, path: hello, "
                      "func: hello}\n", "must start with '/'"),
    "endpoint method": ("  - {name: e2, kind: http.endpoint, meta: {router: api}, method: FETCH, path: /h, "
                        "func: hello}\n", "method"),
    "endpoint func": ("  - {name: e2, kind: http.endpoint, meta: {router: api}, method: GET, path: /h, "
                      "func: api}\n", "expected function.lua"),
    "spa without index": ("  - {name: s2, kind: http.static, meta: {server: gateway}, path: /x, fs: files, "
                          "static_options: {spa: true}}\n  - {name: files, kind: fs.directory, directory: .}\n",
                          "static_options.index"),
    "service addr": ("  - {name: g2, kind: http.service, addr: localhost}\n", "host:port"),
    "unknown field": ("  - {name: g2, kind: http.service, addr: ':0', timeout: {read: 1s}}\n", "timeout"),
}

BASE = """\
namespace: app
entries:
  - {name: gateway, kind: http.service, addr: "127.0.0.1:0"}
  - {name: api, kind: http.router, meta: {server: gateway}}
  - {name: hello, kind: function.lua, source: "file://h.lua", method: main}
"""


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_bad_entries_are_load_errors(case: str, tmp_path: Path) -> None:
    extra, expected = BAD_ENTRIES[case]
    write(tmp_path, {"_index.yaml": BASE + extra, "h.lua": "return {main = function() end}\n"})
    with pytest.raises(LoadError) as caught:
        load_project(tmp_path)
    assert len(caught.value.problems) == 1 and expected in str(caught.value), str(caught.value)


@pytest.mark.parametrize("extra, expected", [
    ("  - {name: e1, kind: http.endpoint, meta: {router: api}, method: GET, path: '/a/{x}', func: hello}\n"
     "  - {name: e2, kind: http.endpoint, meta: {router: api}, method: GET, path: '/a/{y}', func: hello}\n",
     "route conflicts"),
    ("  - {name: api2, kind: http.router, meta: {server: gateway}, prefix: /}\n", "router prefix exists"),
])
def test_conflicting_routes_stop_the_server_from_starting(extra: str, expected: str, tmp_path: Path) -> None:
    write(tmp_path, {"_index.yaml": BASE.replace('"127.0.0.1:0"}', '"127.0.0.1:0", lifecycle: {auto_start: true}}')
                     + extra, "h.lua": "return {main = function() end}\n"})

    async def main() -> None:
        async with Runtime(load_project(tmp_path), output=lambda line: None):
            pass

    with pytest.raises(Exception, match=expected):
        asyncio.run(main())
