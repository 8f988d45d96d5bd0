"""Seed 003's "From HTTP Handlers" handler, as written, behind an ``http.endpoint``, on both
durable providers: ``workflow.host`` and ``temporal.worker`` (a real Temporal dev server).

Over real HTTP: POST an order -> 202 with the workflow ID; the same order again -> 409
(``id_conflict_policy = "fail"``); then a second endpoint monitors the workflow, signals
it and answers with its result once it completes (an EXIT event, no polling). A workflow
that calls ``http_client`` itself (not through an activity) gets an error, as upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.temporal_server import TemporalServer, temporal_project_yaml
from tests.test_http_helpers import Served, serve, write

pytest_plugins = ["tests.temporal_server"]

# The seed's handler, verbatim between the markers; it uses http, json and process.
SEED_HANDLER = """\
local http = require("http")
local json = require("json")

-- seed 003 "From HTTP Handlers" (begin)
local function handler()
    local req = http.request()
    local order = json.decode(req:body())

    local spawner = process
        .with_context({request_id = req:header("X-Request-ID")})
        :with_options({
            ["temporal.workflow.id"] = "order-" .. order.id,
            ["temporal.workflow.id_conflict_policy"] = "fail",
        })

    local pid, err = spawner:spawn(
        "app:order_workflow",
        "app:worker",
        order
    )
    if err then
        return http.response():status(409):json({error = tostring(err)})
    end

    return http.response():status(202):json({
        workflow_id = tostring(pid),
        status = "started"
    })
end
-- seed 003 "From HTTP Handlers" (end)

return { handler = handler }
"""

WORKFLOW = """\
local funcs = require("funcs")
local ctx = require("ctx")

local function main(order)
  local payment, err = funcs.call("app:charge", {amount = order.total, customer = order.customer})
  if err then return nil, err end
  local msg = process.inbox():receive()  -- "ship", from the wait endpoint
  return {
    order_id = order.id, status = "completed", charged = payment.charged,
    shipped_by = msg:payload():data().by, request_id = ctx.get("request_id"),
  }
end

return { main = main }
"""

CHARGE = """\
return { charge = function(req) return {charged = req.amount, customer = req.customer} end }
"""

# Monitors the workflow, then signals it, then waits for its EXIT: the answer is its result.
WAIT = """\
local http = require("http")

local function handler()
  local pid = http.request():query("pid")
  local ok, err = process.monitor(pid)
  if err then return http.response():status(500):json({error = "monitor: " .. tostring(err)}) end
  local events = process.events()
  process.send(pid, "ship", {by = "http"})
  while true do
    local event = events:receive()
    if event.kind == process.event.EXIT and event.from == pid then
      if event.result.error then
        return http.response():status(500):json({error = tostring(event.result.error)})
      end
      return http.response():status(200):json(event.result.value)
    end
  end
end

return { handler = handler }
"""

# http_client inside the workflow itself is refused (it would not replay): activities only.
PROBE = """\
local http_client = require("http_client")
local function main()
  local ok, err = pcall(http_client.get, "http://127.0.0.1:1/")
  return {ok = ok, error = tostring(err)}
end
return { main = main }
"""

RUN_PROBE = """\
local http = require("http")
local function handler()
  local result, err = process.exec("app:probe", "app:worker")
  if err then return http.response():status(500):json({error = tostring(err)}) end
  return http.response():status(200):json(result)
end
return { handler = handler }
"""

HTTP_ENTRIES = """\
  - name: gateway
    kind: http.service
    addr: "127.0.0.1:0"
    lifecycle: {auto_start: true, depends_on: [worker]}
  - name: api
    kind: http.router
    meta: {server: gateway}
    prefix: /
  - name: create_order
    kind: function.lua
    source: file://create_order.lua
    method: handler
    modules: [http, json]
  - name: create_order.endpoint
    kind: http.endpoint
    meta: {router: api}
    method: POST
    path: /orders
    func: create_order
  - name: wait_order
    kind: function.lua
    source: file://wait_order.lua
    method: handler
    modules: [http]
  - name: wait_order.endpoint
    kind: http.endpoint
    meta: {router: api}
    method: POST
    path: /orders/ship
    func: wait_order
  - name: run_probe
    kind: function.lua
    source: file://run_probe.lua
    method: handler
    modules: [http]
  - name: run_probe.endpoint
    kind: http.endpoint
    meta: {router: api}
    method: GET
    path: /probe
    func: run_probe
"""

FILES = {"create_order.lua": SEED_HANDLER, "wait_order.lua": WAIT, "order_workflow.lua": WORKFLOW,
         "charge.lua": CHARGE, "probe.lua": PROBE, "run_probe.lua": RUN_PROBE}


def workflow_host_project(root: Path) -> None:
    write(root, {**FILES, "_index.yaml": "namespace: app\nentries:\n"
                 "  - {name: worker, kind: workflow.host, store: data/wf.db, lifecycle: {auto_start: true}}\n"
                 "  - {name: order_workflow, kind: workflow.lua, source: file://order_workflow.lua, method: main,"
                 " modules: [funcs, ctx]}\n"
                 "  - {name: charge, kind: function.lua, source: file://charge.lua, method: charge}\n"
                 "  - {name: probe, kind: workflow.lua, source: file://probe.lua, method: main,"
                 " modules: [http_client]}\n"
                 + HTTP_ENTRIES})


def temporal_project(root: Path, server: TemporalServer) -> None:
    write(root, FILES)
    temporal_project_yaml(root, server, entries=(
        "  - {name: order_workflow, kind: workflow.lua, source: file://order_workflow.lua, method: main,"
        " modules: [funcs, ctx], meta: {temporal: {workflow: {worker: app:worker}}}}\n"
        "  - {name: charge, kind: function.lua, source: file://charge.lua, method: charge,"
        " meta: {temporal: {activity: {worker: app:worker}}}}\n"
        "  - {name: probe, kind: workflow.lua, source: file://probe.lua, method: main, modules: [http_client],"
        " meta: {temporal: {workflow: {worker: app:worker}}}}\n" + HTTP_ENTRIES))


async def post_orders(s: Served, order_id: str) -> None:
    order = {"id": order_id, "total": 42.5, "customer": "ada", "items": ["book"]}
    headers = {"X-Request-ID": f"req-{order_id}"}
    status, _, text = await s.request("POST", "/orders", data=json.dumps(order), headers=headers)
    assert status == 202, text
    started = json.loads(text)
    assert started["status"] == "started"
    pid = started["workflow_id"]
    assert f"order-{order_id}" in pid, pid

    status, _, text = await s.request("POST", "/orders", data=json.dumps(order), headers=headers)
    assert status == 409, text
    assert json.loads(text)["error"], text

    status, _, text = await s.request("POST", "/orders/ship", params={"pid": pid})
    assert status == 200, text
    assert json.loads(text) == {"order_id": order_id, "status": "completed", "charged": 42.5, "shipped_by": "http",
                                "request_id": f"req-{order_id}"}

    status, _, text = await s.get("/probe")  # http_client in the workflow itself: refused
    assert status == 200, text
    probe = json.loads(text)
    assert probe["ok"] is False and "http_client.request is not available in" in probe["error"], probe


def test_seed_handler_on_workflow_host(tmp_path: Path) -> None:
    workflow_host_project(tmp_path)
    serve(tmp_path, lambda s: post_orders(s, "wf-1"))


def test_seed_handler_on_temporal(tmp_path: Path, temporal_server: TemporalServer) -> None:
    temporal_project(tmp_path, temporal_server)
    serve(tmp_path, lambda s: post_orders(s, "tp-1"), timeout=90)
    described = temporal_server.cli_json("workflow", "describe", "--workflow-id", "order-tp-1")
    status = described.get("workflowExecutionInfo", {}).get("status")
    assert status == "WORKFLOW_EXECUTION_STATUS_COMPLETED", described
