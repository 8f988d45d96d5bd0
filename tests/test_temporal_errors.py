"""What a user sees when something is wrong on ``temporal.worker``: errors that say what
is wrong instead of hanging, retrying or printing SDK tracebacks.

- ``workflow.attrs`` with a search attribute the namespace does not have, or a value of
  another type, returns ``nil, Invalid`` naming the attribute (and its type) instead of
  failing every workflow task; a value that converts without loss is converted; the
  answer is recorded, so replays (a worker without a cache replays every task) agree.
- The ``search_attributes`` start option is checked the same way.
- A start the server refuses for its options is ``Invalid``, not ``Unavailable``.
- Activity errors the Lua code returns are expected: no SDK traceback, no warning.
- An unreachable server is one clear line naming the address and ``wippy temporal dev``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from tests.temporal_server import TemporalServer, free_port, temporal_project_yaml
from wippy import Runtime, load_project
from wippy.errors import INVALID, WippyError
from wippy.providers.temporal.failures import _FILTER, to_application_error
from wippy.providers.temporal.search import UNCHECKED, typed_pairs

pytest_plugins = ["tests.temporal_server"]

WIPPY = [sys.executable, "-m", "wippy.cli"]

ENTRIES = """
  - name: procs
    kind: process.host
    lifecycle: {auto_start: true}
  - name: attrs_wf
    kind: workflow.lua
    source: file://attrs_wf.lua
    method: main
    modules: [workflow, time]
    meta: {temporal: {workflow: {worker: app:worker}}}
  - name: acts_wf
    kind: workflow.lua
    source: file://acts_wf.lua
    method: main
    modules: [funcs]
    meta: {temporal: {workflow: {worker: app:worker}}}
  - name: refuse
    kind: function.lua
    source: file://refuse.lua
    method: main
    meta: {temporal: {activity: {worker: app:worker}}}
  - name: main
    kind: process.lua
    source: file://main.lua
    method: main
"""

ATTRS_WF = """
local workflow = require("workflow")
local time = require("time")
local function try(values)
  local ok, err = workflow.attrs(values)
  time.sleep("5ms")  -- a workflow task of its own: without a cache, the next one replays this
  if err then return { kind = err:kind(), message = err:message() } end
  return { ok = ok }
end
return { main = function()
  return {
    unknown = try({ search = { no_such_attr = "x" }, memo = { lost = true } }),
    wrong = try({ search = { order_total = "lots", status = "fine" } }),
    converted = try({ search = { status = 42, order_total = 7 }, memo = { note = "kept" } }),
    again = try({ search = { status = "again", no_such_attr = 1 } }),
    last = try({ search = { customer = "c-1" } }),
  }
end }
"""

ACTS_WF = """
local funcs = require("funcs")
local once = funcs.new():with_options({ ["activity.retry_policy"] = { maximum_attempts = 1 } })
return { main = function()
  local out = {}
  for i = 1, 3 do
    local _, err = once:call("app:refuse", i)
    out[i] = err and err:kind() .. ": " .. err:message()
  end
  return out
end }
"""

REFUSE = """
return { main = function(i)
  return nil, errors.new({ kind = "Invalid", message = "order " .. i .. " refused", retryable = false })
end }
"""

MAIN = """
return { main = function(what, options)
  local p = process.with_options(options or {})
  if what == "spawn" then
    local pid, err = p:spawn("app:attrs_wf", "app:worker")
    return { pid = pid, kind = err and err:kind(), message = err and err:message(),
             retryable = err and err:retryable() }
  end
  local result, err = p:exec(what, "app:worker")
  if err then return { kind = err:kind(), message = err:message() } end
  return result
end }
"""


def write_project(root: Path, server: TemporalServer | str, worker_options: str = "",
                  connection_timeout: str = "3s") -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("attrs_wf", ATTRS_WF), ("acts_wf", ACTS_WF), ("refuse", REFUSE), ("main", MAIN)):
        (root / f"{name}.lua").write_text(textwrap.dedent(text))
    (root / "wippy.lock").write_text("")
    queue = temporal_project_yaml(root, server, namespace="app", client_fields=f"connection_timeout: {connection_timeout}",
                                  entries=ENTRIES)
    if worker_options:
        text = (root / "_index.yaml").read_text()
        text = text.replace(f"    task_queue: {queue}\n", f"    task_queue: {queue}\n    worker_options: "
                                                            f"{worker_options}\n", 1)
        (root / "_index.yaml").write_text(text)
    return queue


def run(root: Path, *args: Any, timeout: float = 40) -> Any:
    async def main() -> Any:
        async with Runtime(load_project(root)) as rt:
            return await asyncio.wait_for(rt.run("app:main", *args), timeout)

    return asyncio.run(main())


def describe(server: TemporalServer, workflow_id: str) -> dict[str, Any]:
    return server.cli_json("workflow", "describe", "--workflow-id", workflow_id)


# workflow.attrs ---------------------------------------------------------------------------------
def test_attrs_with_unknown_or_mistyped_search_attributes_return_invalid(tmp_path: Path,
                                                                         temporal_server: TemporalServer) -> None:
    # max_cached_workflows: 0 -- every workflow task replays the run from its history
    write_project(tmp_path, temporal_server, "{max_cached_workflows: 0}")
    out = run(tmp_path, "app:attrs_wf", {"workflow.id": "attrs-1"})
    unknown, wrong = out["unknown"], out["wrong"]
    assert unknown["kind"] == INVALID, out
    assert "search attribute 'no_such_attr' is not registered in namespace default" in unknown["message"]
    assert "wippy temporal dev --search-attribute no_such_attr=Keyword" in unknown["message"]
    assert wrong["kind"] == INVALID
    assert wrong["message"] == ("workflow.attrs: search attribute 'order_total' is registered as Double: it takes a "
                                "number, not 'lots' (a string)")
    assert out["converted"] == {"ok": True}
    assert out["again"]["kind"] == INVALID and "'no_such_attr'" in out["again"]["message"]
    assert out["last"] == {"ok": True}

    desc = describe(temporal_server, "attrs-1")
    search = desc["workflowExecutionInfo"]["searchAttributes"]["indexedFields"]
    # a refused call upserts nothing (not even its other values or memo); 42 went as Keyword text
    assert set(search) >= {"status", "order_total", "customer"}, search
    values = {k: json.loads(base64.b64decode(v["data"])) for k, v in search.items()
              if k in ("status", "order_total", "customer")}
    assert values == {"status": "42", "order_total": 7.0, "customer": "c-1"}
    memo = desc["workflowExecutionInfo"].get("memo", {}).get("fields", {})
    assert set(memo) == {"note"}


def test_search_attribute_start_option_is_checked(tmp_path: Path, temporal_server: TemporalServer) -> None:
    write_project(tmp_path, temporal_server)
    refused = run(tmp_path, "spawn", {"workflow.id": "attrs-start-1",
                                      "workflow.search_attributes": {"no_such_attr": "x"}})
    assert refused.get("pid") is None and refused["kind"] == INVALID and refused["retryable"] is False, refused
    assert refused["message"].startswith("start option search_attributes: search attribute 'no_such_attr' is not "
                                         "registered in namespace default")
    started = run(tmp_path, "spawn", {"workflow.id": "attrs-start-2", "workflow.search_attributes": {"status": 5}})
    assert started.get("kind") is None, started
    search = describe(temporal_server, "attrs-start-2")["workflowExecutionInfo"]["searchAttributes"]["indexedFields"]
    assert json.loads(base64.b64decode(search["status"]["data"])) == "5"


def test_conversions_and_problems() -> None:
    types: dict[str, str | None] = {"k": "Keyword", "t": "Text", "i": "Int", "d": "Double", "b": "Bool",
                                    "dt": "Datetime", "kl": "KeywordList", "gone": None, "free": UNCHECKED}

    def value(name: str, v: Any) -> Any:
        (pair,) = typed_pairs({name: v}, types, "ns", "workflow.attrs")
        return pair.value

    assert value("k", 5) == "5" and value("k", True) == "true" and value("t", 2.5) == "2.5"
    assert value("i", 3.0) == 3 and type(value("i", 3.0)) is int and value("d", 2) == 2.0
    assert value("b", False) is False and value("kl", "one") == ["one"] and value("kl", ["a", 1]) == ["a", "1"]
    assert value("dt", "2025-01-02T03:04:05Z").year == 2025 and value("free", 7) == 7
    with pytest.raises(WippyError) as info:
        typed_pairs({"i": 2.5, "b": "yes", "gone": 1, "dt": "2025-01-02", "k": {"x": 1}, 3: "x"}, types, "ns",
                    "workflow.attrs")
    message = info.value.message
    assert info.value.kind == INVALID
    for part in ("'i' is registered as Int: it takes an integer, not 2.5 (a number)",
                 "'b' is registered as Bool", "'gone' is not registered in namespace ns",
                 "'dt' is registered as Datetime", "'k' is registered as Keyword", "3 (a number) is not a search "
                 "attribute name"):
        assert part in message, message


# Start options -------------------------------------------------------------------------------------
def test_a_start_the_server_refuses_for_its_options_is_invalid(tmp_path: Path,
                                                               temporal_server: TemporalServer) -> None:
    write_project(tmp_path, temporal_server)
    out = run(tmp_path, "spawn", {"workflow.cron_schedule": "* * * * *", "workflow.start_delay": "5s"})
    assert out.get("pid") is None and out["kind"] == INVALID and out["retryable"] is False, out
    assert out["message"].startswith("cannot start app:attrs_wf: ") and "CronSchedule" in out["message"]


# Logs ----------------------------------------------------------------------------------------------
EMBEDDED = """
import asyncio, json, sys
from wippy import Runtime, load_project

async def main():
    async with Runtime(load_project(sys.argv[1])) as rt:
        print(json.dumps(await asyncio.wait_for(rt.run("app:main", "app:acts_wf"), 40)))

asyncio.run(main())
"""


def test_expected_activity_failures_print_nothing(tmp_path: Path, temporal_server: TemporalServer) -> None:
    """Python's default logging (an application embedding the runtime): three activities
    that return errors print no SDK warning or traceback."""
    write_project(tmp_path, temporal_server)
    proc = subprocess.run([sys.executable, "-c", EMBEDDED, str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [f"Invalid: order {i} refused" for i in (1, 2, 3)]
    assert proc.stderr == ""


def test_expected_failure_records_are_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The filter on the SDK's activity logger: an error from Lua is one line on
    wippy.temporal (INFO, or DEBUG with the details); any other exception is left alone."""
    activity_log = logging.getLogger("temporalio.activity")
    info = {"activity_type": "app:charge", "workflow_id": "w-1", "attempt": 2}

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            return activity_log.makeRecord("temporalio.activity", logging.WARNING, __file__, 1,
                                           "Completing activity as failed (%s)", (info,), sys.exc_info(),
                                           extra={"temporal_activity": info})

    caplog.set_level(logging.INFO, logger="wippy.temporal")
    lua_error = to_application_error(WippyError(INVALID, "no such order", retryable=False))
    assert _FILTER.filter(record(lua_error)) is False
    (line,) = [r for r in caplog.records if r.name == "wippy.temporal"]
    assert line.levelno == logging.INFO and line.exc_info is None
    assert line.getMessage() == "activity app:charge (workflow w-1, attempt 2) failed: Invalid: no such order"
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="wippy.temporal")
    assert _FILTER.filter(record(lua_error)) is False
    (line,) = [r for r in caplog.records if r.name == "wippy.temporal"]
    assert line.levelno == logging.DEBUG and line.exc_info is not None
    # our bugs (a Python exception, an ApplicationError from elsewhere) stay the SDK's warnings
    assert _FILTER.filter(record(RuntimeError("a bug"))) is True
    assert _FILTER.filter(record(ApplicationError("from Go", type="X"))) is True


# An unreachable server ------------------------------------------------------------------------------
def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    """``wippy exec`` with nobody listening: one ERROR line naming the address and the
    command to start a server, and a spawn error with the reason, not the transport's text
    -- at once, not after connection_timeout."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    write_project(tmp_path, address, connection_timeout="30s")
    started = time.monotonic()
    proc = subprocess.run([*WIPPY, "exec", str(tmp_path), "app:main", '"spawn"', "--timeout", "20"],
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    hint = f"is it running? Start a local development server with `wippy temporal dev --port {port}`"
    (line,) = [line for line in proc.stderr.splitlines() if "connect" in line]
    assert "ERROR" in line and f"app:temporal: cannot connect to the Temporal server at {address}: connection " \
                               f"refused; {hint}" in line, proc.stderr
    assert "tonic" not in proc.stderr and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result.get("pid") is None and result["kind"] == "Unavailable" and result["retryable"] is True
    assert result["message"] == f"app:temporal is not connected to the Temporal server at {address} (connection " \
                                f"refused); {hint}"
    assert took < 15, f"took {took:.1f}s: the spawn waited for the connection_timeout (30s)"
