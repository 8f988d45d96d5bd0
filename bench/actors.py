"""Actor figures: message ping-pong, spawn-and-exit, idle memory, and Pykka for comparison.

What is measured, each beside a baseline from the same run:

- Ping-pong: a Lua process (``app:pinger``) spawns ``app:ponger`` and does N round trips of
  ``process.send`` + ``inbox:receive()``; the ponger echoes each payload back to
  ``msg:from()``. Messages/s counts both directions (2N). Baseline: two asyncio tasks
  doing the same over two ``asyncio.Queue`` objects (``put_nowait`` + ``await get()``),
  the cheapest mailbox hand-off asyncio offers between two concurrent tasks.
  Target: at least 0.9 of the asyncio rate.
- Spawn-and-exit: a Lua process spawns a trivial child with ``process.spawn_monitored``
  and waits for its EXIT event, N times in sequence. Baseline: ``await
  asyncio.create_task(nop())`` N times in sequence, i.e. start a concurrent unit, let it
  finish, learn that it did. Target: at least 0.35 of the asyncio rate.
- Idle memory: resident memory added per Lua process with 100,000 processes alive, each
  blocked in ``process.inbox():receive()`` (RSS from /proc/self/statm before and after,
  after a warm-up and ``gc.collect()``), plus the peak RSS of that whole run. Baseline:
  the same count of asyncio tasks, each blocked in ``await queue.get()`` on its own
  queue (a task plus a mailbox). Each side runs in a fresh subprocess so neither reuses
  memory the other freed. Targets: under 7 KiB per process; peak under 2 GiB.
- Pykka: the same ping-pong between two Pykka ``ThreadingActor`` actors telling each
  other (``pip install -e '.[bench]'``). Target: wippy is faster (ratio above 1).

Rates are the best of ``--repeats`` runs (5 by default) for figure and baseline alike.
Run: ``python bench/actors.py`` (about a minute), ``--quick`` for a smoke run of seconds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    LuaEntry,
    Row,
    best_rate,
    best_rate_sync,
    exit_code,
    kib,
    mib,
    parser,
    peak_rss_bytes,
    print_header,
    print_summary,
    project,
    rate,
    rss_bytes,
    run,
    runtime_for,
)

PINGPONG_TARGET = 0.9
SPAWN_TARGET = 0.35
IDLE_TARGET_BYTES = 7 * 1024
PEAK_TARGET_BYTES = 2 * 2**30

ENTRIES = [
    LuaEntry("ponger", "process.lua", """\
        return { main = function()
          local inbox = process.inbox()
          while true do
            local msg = inbox:receive()
            local n = msg:payload():data()
            if n == 0 then return true end
            process.send(msg:from(), "pong", n)
          end
        end }
        """),
    LuaEntry("pinger", "process.lua", """\
        return { main = function(n)
          local peer = process.spawn("app:ponger", "app:host")
          local inbox = process.inbox()
          for i = 1, n do
            process.send(peer, "ping", i)
            local reply = inbox:receive()
            if reply:payload():data() ~= i then error("out of order reply") end
          end
          process.send(peer, "ping", 0)
          return n
        end }
        """),
    LuaEntry("pingpong", "function.lua", """\
        return { main = function(n) return process.exec("app:pinger", "app:host", n) end }
        """),
    LuaEntry("child", "process.lua", "return { main = function() return true end }\n"),
    LuaEntry("spawner", "process.lua", """\
        return { main = function(n)
          local events = process.events()
          for i = 1, n do
            local pid, err = process.spawn_monitored("app:child", "app:host")
            if not pid then error(err) end
            local ev = events:receive()
            if ev.kind ~= process.event.EXIT or ev.from ~= pid then error("unexpected event") end
          end
          return n
        end }
        """),
    LuaEntry("spawn", "function.lua", """\
        return { main = function(n) return process.exec("app:spawner", "app:host", n) end }
        """),
    LuaEntry("idle", "process.lua", """\
        return { main = function(parent)
          process.send(parent, "up")
          process.inbox():receive()
          return true
        end }
        """),
    LuaEntry("idle_parent", "process.lua", """\
        return { main = function(n)
          local me, inbox = process.pid(), process.inbox()
          -- A child sends "up" in the same step that then blocks it in inbox:receive(),
          -- so once every "up" is in, every child is blocked. They are read every 1,000
          -- spawns: the inbox holds 10,000 messages at most (the host's limits.inbox).
          local up = 0
          for i = 1, n do
            local pid, err = process.spawn("app:idle", "app:host", me)
            if not pid then error(err) end
            if i % 1000 == 0 then
              while up < i - 1000 do inbox:receive(); up = up + 1 end
            end
          end
          while up < n do inbox:receive(); up = up + 1 end
          return n
        end }
        """),
    LuaEntry("spawn_idle", "function.lua", """\
        return { main = function(n) return process.exec("app:idle_parent", "app:host", n) end }
        """),
]


# Ping-pong -----------------------------------------------------------------------------
async def asyncio_pingpong(n: int) -> None:
    to_ponger: asyncio.Queue[int] = asyncio.Queue()
    to_pinger: asyncio.Queue[int] = asyncio.Queue()

    async def ponger() -> None:
        while True:
            i = await to_ponger.get()
            if i == 0:
                return
            to_pinger.put_nowait(i)

    async def pinger() -> None:
        for i in range(1, n + 1):
            to_ponger.put_nowait(i)
            if await to_pinger.get() != i:
                raise AssertionError("out of order reply")
        to_ponger.put_nowait(0)

    await asyncio.gather(asyncio.create_task(ponger()), asyncio.create_task(pinger()))


def pykka_pingpong(n: int) -> None:
    import pykka

    done = threading.Event()

    class Ponger(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> None:
            i, reply_to = message
            reply_to.tell((i, self.actor_ref))

    class Pinger(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> None:
            i, peer = message
            if i >= n:
                done.set()
                return
            peer.tell((i + 1, self.actor_ref))

    ponger, pinger = Ponger.start(), Pinger.start()
    try:
        pinger.tell((0, ponger))  # pinger sends 1..n, ponger echoes each: 2n messages
        done.wait()
    finally:
        ponger.stop()
        pinger.stop()


def pykka_available() -> bool:
    try:
        import pykka  # noqa: F401
    except ImportError:
        return False
    return True


# Spawn-and-exit ------------------------------------------------------------------------
async def asyncio_spawns(n: int) -> None:
    async def nop() -> bool:
        return True

    for _ in range(n):
        await asyncio.create_task(nop())


# Idle memory (runs in a child process) -----------------------------------------------
async def idle_wippy(n: int) -> dict[str, Any]:
    with project(ENTRIES) as root:
        rt = runtime_for(root)
        async with rt:
            host = rt.router.hosts["app:host"]

            async def spawn_blocked(count: int) -> float:
                start = time.perf_counter()
                assert await rt.call("app:spawn_idle", count) == count
                return time.perf_counter() - start

            async def stop_all() -> float:
                start = time.perf_counter()
                for pid in list(host.actors):
                    host.deliver(pid, "stop", None, None)
                while host.actors:
                    await asyncio.sleep(0.005)
                return time.perf_counter() - start

            await spawn_blocked(200)  # warm up
            await stop_all()
            gc.collect()
            before = rss_bytes()
            spawn_s = await spawn_blocked(n)
            alive = len(host.actors)
            gc.collect()
            after = rss_bytes()
            stop_s = await stop_all()
    return {"alive": alive, "per": (after - before) / n, "before": before, "after": after,
            "peak": peak_rss_bytes(), "spawn_rate": n / spawn_s, "stop_rate": n / stop_s}


async def idle_asyncio(n: int) -> dict[str, Any]:
    async def idle(q: asyncio.Queue[Any]) -> None:
        await q.get()

    gc.collect()
    before = rss_bytes()
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(n)]
    tasks = [asyncio.create_task(idle(q)) for q in queues]
    await asyncio.sleep(0)  # every task runs to its await
    await asyncio.sleep(0)
    gc.collect()
    after = rss_bytes()
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*tasks)
    return {"alive": len(tasks), "per": (after - before) / n, "before": before, "after": after,
            "peak": peak_rss_bytes()}


def idle_in_subprocess(kind: str, n: int, use_uvloop: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", kind, str(n)]
    if use_uvloop:
        cmd.append("--uvloop")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# Driver ----------------------------------------------------------------------------------
async def measure_async(quick: bool, repeats: int) -> dict[str, float]:
    n_ping = 2_000 if quick else 50_000
    n_spawn = 1_000 if quick else 20_000
    out: dict[str, float] = {}
    with project(ENTRIES) as root:
        rt = runtime_for(root)
        async with rt:
            await rt.call("app:pingpong", 100)  # warm up
            await rt.call("app:spawn", 100)

            async def lua_pingpong(n: int) -> None:
                assert await rt.call("app:pingpong", n) == n

            async def lua_spawns(n: int) -> None:
                assert await rt.call("app:spawn", n) == n

            out["ping_lua"] = 2 * await best_rate(n_ping, repeats, lua_pingpong)
            out["spawn_lua"] = await best_rate(n_spawn, repeats, lua_spawns)
    out["ping_asyncio"] = 2 * await best_rate(n_ping, repeats, asyncio_pingpong)
    out["spawn_asyncio"] = await best_rate(n_spawn, repeats, asyncio_spawns)
    return out


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--memory-child", nargs=2, metavar=("KIND", "N"), help=pass_through_help())
    p.add_argument("--processes", type=int, default=None, help="idle processes for the memory figure (default 100000, 2000 with --quick)")
    args = p.parse_args()
    if args.memory_child:
        kind, n = args.memory_child[0], int(args.memory_child[1])
        fn = idle_wippy if kind == "wippy" else idle_asyncio
        print(json.dumps(run(lambda: fn(n), args.uvloop)))
        return 0

    repeats = args.repeats or (1 if args.quick else 5)
    n_idle = args.processes or (2_000 if args.quick else 100_000)
    print_header("bench/actors.py", args.uvloop, repeats)
    figures = run(lambda: measure_async(args.quick, repeats), args.uvloop)
    ping_lua, ping_aio = figures["ping_lua"], figures["ping_asyncio"]
    spawn_lua, spawn_aio = figures["spawn_lua"], figures["spawn_asyncio"]
    print(f"ping-pong  Lua processes:   {rate(ping_lua, ' msg/s')}")
    print(f"ping-pong  asyncio.Queue:   {rate(ping_aio, ' msg/s')}")
    print(f"spawn+exit Lua processes:   {rate(spawn_lua, ' spawns/s')}")
    print(f"spawn+exit asyncio tasks:   {rate(spawn_aio, ' tasks/s')}")

    ping_pykka = None
    if pykka_available():
        n_pykka = 2_000 if args.quick else 50_000
        ping_pykka = 2 * best_rate_sync(n_pykka, repeats, pykka_pingpong)
        print(f"ping-pong  Pykka threads:   {rate(ping_pykka, ' msg/s')}")
    else:
        print("ping-pong  Pykka: skipped (pykka not installed; pip install -e '.[bench]')")

    mem = idle_in_subprocess("wippy", n_idle, args.uvloop)
    mem_aio = idle_in_subprocess("asyncio", n_idle, args.uvloop)
    print(f"idle Lua processes:         {mem['alive']:,} alive, {kib(mem['per'])} each "
          f"(RSS {mib(mem['before'])} -> {mib(mem['after'])}, peak {mib(mem['peak'])}; "
          f"spawned at {rate(mem['spawn_rate'])}, stopped at {rate(mem['stop_rate'])})")
    print(f"idle asyncio task+Queue:    {mem_aio['alive']:,} alive, {kib(mem_aio['per'])} each "
          f"(peak {mib(mem_aio['peak'])})")

    rows = [
        Row("ping-pong msg/s (Lua processes)", rate(ping_lua), f"asyncio.Queue: {rate(ping_aio)}",
            ping_lua / ping_aio, f">= {PINGPONG_TARGET}", ping_lua / ping_aio >= PINGPONG_TARGET),
        Row("spawn+exit/s (spawn_monitored + EXIT)", rate(spawn_lua), f"create_task: {rate(spawn_aio)}",
            spawn_lua / spawn_aio, f">= {SPAWN_TARGET}", spawn_lua / spawn_aio >= SPAWN_TARGET),
        Row(f"RSS per idle process ({n_idle:,})", kib(mem["per"]), f"task+Queue: {kib(mem_aio['per'])}",
            mem["per"] / mem_aio["per"] if mem_aio["per"] > 0 else None,
            f"< {kib(IDLE_TARGET_BYTES)}", mem["per"] < IDLE_TARGET_BYTES),
        Row(f"peak RSS ({n_idle:,} processes)", mib(mem["peak"]), f"task+Queue: {mib(mem_aio['peak'])}",
            mem["peak"] / mem_aio["peak"], f"< {mib(PEAK_TARGET_BYTES)}", mem["peak"] < PEAK_TARGET_BYTES),
    ]
    if ping_pykka is not None:
        rows.append(Row("ping-pong msg/s vs Pykka", rate(ping_lua), f"Pykka: {rate(ping_pykka)}",
                        ping_lua / ping_pykka, "> 1", ping_lua > ping_pykka))
    else:
        rows.append(Row("ping-pong msg/s vs Pykka", rate(ping_lua), "Pykka: not installed", None, "> 1", None))
    print_summary("actors", rows)
    return exit_code(rows, args.strict)


def pass_through_help() -> str:
    return "internal: measure idle memory of KIND (wippy|asyncio) with N actors and print JSON"


if __name__ == "__main__":
    sys.exit(main())
