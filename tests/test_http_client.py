"""The ``http_client`` module against the real HTTP server of the same runtime (127.0.0.1):
methods, headers, JSON bodies, query, form, auth, cookies, timeouts, streams, batches,
errors with kinds, and that a durable workflow may use it only from an activity."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_http_helpers import write
from wippy import Runtime, load_project

INDEX = """\
namespace: app
entries:
  - {name: gateway, kind: http.service, addr: "127.0.0.1:0", lifecycle: {auto_start: true}}
  - {name: api, kind: http.router, meta: {server: gateway}}
  - {name: wfs, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}

  - {name: echo, kind: function.lua, source: file://server.lua, method: echo, modules: [http]}
  - {name: echo.get, kind: http.endpoint, meta: {router: api}, method: GET, path: /echo, func: echo}
  - {name: echo.post, kind: http.endpoint, meta: {router: api}, method: POST, path: /echo, func: echo}
  - {name: echo.put, kind: http.endpoint, meta: {router: api}, method: PUT, path: /echo, func: echo}
  - {name: echo.delete, kind: http.endpoint, meta: {router: api}, method: DELETE, path: /echo, func: echo}
  - {name: echo.patch, kind: http.endpoint, meta: {router: api}, method: PATCH, path: /echo, func: echo}
  - {name: hello, kind: function.lua, source: file://server.lua, method: hello, modules: [http]}
  - {name: hello.get, kind: http.endpoint, meta: {router: api}, method: GET, path: /hello, func: hello}
  - {name: slow, kind: function.lua, source: file://server.lua, method: slow, modules: [http, time]}
  - {name: slow.get, kind: http.endpoint, meta: {router: api}, method: GET, path: /slow, func: slow}
  - {name: moved, kind: function.lua, source: file://server.lua, method: moved, modules: [http]}
  - {name: moved.get, kind: http.endpoint, meta: {router: api}, method: GET, path: /moved, func: moved}
  - {name: events, kind: function.lua, source: file://server.lua, method: events, modules: [http]}
  - {name: events.get, kind: http.endpoint, meta: {router: api}, method: GET, path: /events, func: events}

  - {name: client, kind: function.lua, source: file://client.lua, method: main, modules: [http_client, json]}
  - {name: charge, kind: function.lua, source: file://client.lua, method: charge,
     modules: [http_client, json]}
  - {name: order, kind: workflow.lua, source: file://order.lua, method: main, modules: [funcs, http_client]}
"""

SERVER = """\
local http = require("http")

local M = {}

function M.hello()
  local res = http.response()
  res:set_content_type(http.CONTENT.JSON)
  res:set_status(http.STATUS.OK)
  res:write_json({message = "hello world"})
end

function M.echo()
  local req = http.request()
  local res = http.response()
  res:set_header("X-Custom-Header", "custom-value")
  res:set_header("x-another", "another-value")
  res:set_header("Set-Cookie", "session=abc123; Path=/")
  res:set_content_type(http.CONTENT.JSON)
  res:write_json({
    method = req:method(), query = req:query_params(), body = req:body(),
    custom = req:header("X-Custom-Header"), auth = req:header("Authorization"),
    cookie = req:header("Cookie"), content_type = req:content_type(),
  })
end

function M.slow()
  require("time").sleep("2s")
  http.response():write("late")
end

function M.moved()
  local res = http.response()
  res:set_header("Location", "/hello")
  res:set_status(302)
end

function M.events()
  local res = http.response()
  for i = 1, 3 do res:write_event({name = "tick", data = {n = i}}) end
end

return M
"""

CLIENT = """\
local http_client = require("http_client")
local json = require("json")

local M = {}

local function describe(resp, err)
  if err then return {error = tostring(err), kind = err:kind(), retryable = err:retryable()} end
  return resp
end

function M.main(case, base)
  if case == "get" then
    local resp, err = http_client.get(base .. "/hello")
    if err then return describe(nil, err) end
    return {status = resp.status_code, type = resp.headers["Content-Type"], data = json.decode(resp.body),
            size = resp.body_size, url = resp.url,
            method_status = resp:status(), method_body = resp:body()}
  elseif case == "methods" then
    local out = {}
    for _, m in ipairs({"post", "put", "delete", "patch"}) do
      local resp = http_client[m](base .. "/echo", {body = m})
      out[m] = json.decode(resp.body).method
    end
    local resp = http_client.request("post", base .. "/echo")
    out.request = json.decode(resp.body).method
    local head = http_client.head(base .. "/hello")
    out.head = {status = head.status_code, body = head.body}
    return out
  elseif case == "json" then
    local resp = http_client.post(base .. "/echo?test=body", {
      headers = {["Content-Type"] = "application/json", ["X-Custom-Header"] = "from-lua"},
      body = json.encode({name = "test", value = 42}),
      query = {foo = "bar", num = "123", limit = 10},
    })
    local got = json.decode(resp.body)
    return {got = got, decoded = json.decode(got.body), custom = resp.headers["X-Custom-Header"],
            another = resp.headers["X-Another"], cookies = resp.cookies}
  elseif case == "form" then
    local resp = http_client.post(base .. "/echo", {form = {a = "1", b = "two words"},
                                                    auth = {user = "ada", pass = "secret"},
                                                    cookies = {session = "xyz"}})
    return json.decode(resp.body)
  elseif case == "redirect" then
    local resp = http_client.get(base .. "/moved")
    return {status = resp.status_code, url = resp.url, data = json.decode(resp.body)}
  elseif case == "timeout" then
    return describe(http_client.get(base .. "/slow", {timeout = "200ms"}))
  elseif case == "refused" then
    return describe(http_client.get(base))
  elseif case == "bad_url" then
    local ok, raised = pcall(http_client.get, "")
    local resp, err = http_client.get("ftp://example.com/x")
    return {raised = not ok, message = tostring(raised), kind = err and err:kind()}
  elseif case == "stream" then
    local resp, err = http_client.get(base .. "/events", {stream = true})
    if err then return describe(nil, err) end
    local parts = {}
    while true do
      local chunk, rerr = resp.stream:read(16)
      if rerr then return describe(nil, rerr) end
      if not chunk then break end
      parts[#parts + 1] = chunk
    end
    local closed = resp.stream:close()
    return {size = resp.body_size, body = resp.body, text = table.concat(parts), closed = closed,
            type = resp.headers["Content-Type"]}
  elseif case == "batch" then
    local responses, errors = http_client.request_batch({
      {"GET", base .. "/hello"},
      {"POST", base .. "/echo", {body = "x"}},
      {"GET", "http://127.0.0.1:1/"},
    })
    return {first = responses[1].status_code, second = json.decode(responses[2].body).body,
            third = responses[3] == nil, error_kind = errors[3]:kind(), first_error = errors[1] == nil}
  elseif case == "uri" then
    local decoded, err = http_client.decode_uri("hello+world%21")
    local bad, berr = http_client.decode_uri("100%zz")
    return {encoded = http_client.encode_uri("hello world/&?"), decoded = decoded, bad = bad,
            bad_kind = berr and berr:kind()}
  end
end

-- The docs' activity example (en/temporal/activities.md), with the local server as the API.
function M.charge(input)
  local http = require("http_client")
  local response, err = http.post(input.url, {
    headers = {["Content-Type"] = "application/json"},
    body = json.encode({amount = input.amount, currency = input.currency}),
  })
  if err then
    return nil, err
  end
  if response:status() >= 400 then
    return nil, errors.new({ kind = errors.INVALID, message = "payment declined" })
  end
  return json.decode(response:body())
end

return M
"""

ORDER = """\
local funcs = require("funcs")
local http_client = require("http_client")

local function main(url)
  local charged, err = funcs.call("app:charge", {url = url, amount = 5000, currency = "usd"})
  local ok, direct = pcall(http_client.get, url)
  return {activity = charged and charged.body, activity_error = err and tostring(err),
          direct_ok = ok, direct = tostring(direct)}
end

return { main = main }
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("client"), {"_index.yaml": INDEX, "server.lua": SERVER,
                                                      "client.lua": CLIENT, "order.lua": ORDER})


def with_runtime(root: Path, body: Callable[[Runtime, str], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        runtime = Runtime(load_project(root), output=lambda line: None)
        async with runtime:
            base = runtime.lifecycle.services["app:gateway"].url  # type: ignore[attr-defined]
            return await asyncio.wait_for(body(runtime, base), 60)

    return asyncio.run(main())


def client(root: Path, case: str) -> Any:
    return with_runtime(root, lambda rt, base: rt.call("app:client", case, base))


def test_get_with_the_documented_response_shape(root: Path) -> None:
    got = client(root, "get")
    assert got["status"] == 200 and got["type"] == "application/json"
    assert got["data"] == {"message": "hello world"} and got["size"] == 25
    assert got["url"].endswith("/hello")
    assert got["method_status"] == 200 and got["method_body"] == '{"message":"hello world"}'


def test_every_method(root: Path) -> None:
    got = client(root, "methods")
    assert got == {"post": "POST", "put": "PUT", "delete": "DELETE", "patch": "PATCH", "request": "POST",
                   "head": {"status": 200}}


def test_json_body_headers_and_query(root: Path) -> None:
    got = client(root, "json")
    sent = got["got"]
    assert got["decoded"] == {"name": "test", "value": 42}
    assert sent["content_type"] == "application/json" and sent["custom"] == "from-lua"
    # query merged into the URL's; a number value is dropped, as upstream (quote it)
    assert sent["query"] == {"test": "body", "foo": "bar", "num": "123"}
    assert got["custom"] == "custom-value" and got["another"] == "another-value"  # canonical names
    assert got["cookies"] == {"session": "abc123"}


def test_form_basic_auth_and_cookies(root: Path) -> None:
    got = client(root, "form")
    assert got["content_type"] == "application/x-www-form-urlencoded"
    assert got["body"] == "a=1&b=two+words"
    assert got["auth"] == "Basic YWRhOnNlY3JldA=="
    assert got["cookie"] == "session=xyz"


def test_redirects_are_followed(root: Path) -> None:
    got = client(root, "redirect")
    assert got["status"] == 200 and got["url"].endswith("/hello") and got["data"] == {"message": "hello world"}


def test_errors_have_kinds(root: Path) -> None:
    got = client(root, "timeout")
    assert got["kind"] == "Internal" and got["retryable"] is True and "timeout" in got["error"]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = with_runtime(root, lambda rt, base: rt.call("app:client", "refused", f"http://127.0.0.1:{port}/"))
    assert got["kind"] == "Internal" and got["retryable"] is True, got
    got = client(root, "bad_url")
    assert got["raised"] is True and "URL must be a non-empty string" in got["message"]
    assert got["kind"] == "Invalid"


def test_a_streamed_response(root: Path) -> None:
    got = client(root, "stream")
    assert got["size"] == -1 and "body" not in got and got["closed"] is True
    assert got["type"] == "text/event-stream"
    assert got["text"] == "".join(f'event: tick\ndata: {{"n":{i}}}\n\n' for i in (1, 2, 3))


def test_a_batch(root: Path) -> None:
    got = client(root, "batch")
    assert got == {"first": 200, "second": "x", "third": True, "error_kind": "Internal", "first_error": True}


def test_uri_escaping(root: Path) -> None:
    got = client(root, "uri")
    assert got == {"encoded": "hello+world%2F%26%3F", "decoded": "hello world!", "bad_kind": "Invalid"}


def test_a_workflow_uses_it_only_through_an_activity(root: Path) -> None:
    """The docs' activity example runs as an activity of a durable workflow; the same call
    made in the workflow itself is refused (it would not replay)."""

    async def body(rt: Runtime, base: str) -> Any:
        from wippy.providers import SpawnRequest

        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        watcher = rt.router.callback_pid(lambda event: done.done() or done.set_result(event))
        host = rt.router.hosts["app:wfs"]
        host.spawn(SpawnRequest("app:order", rt.kernel.lua_args([base + "/echo"]), parent=watcher, monitor=True))
        event = await done
        result = event["result"]
        if result["error"] is not None:
            raise rt.vm.to_python(result["error"], "error")
        return rt.vm.to_python(result["value"], "result")

    got = with_runtime(root, body)
    assert got["activity"] == '{"amount":5000,"currency":"usd"}', got
    assert got["direct_ok"] is False and "http_client.request is not available in workflow" in got["direct"], got
