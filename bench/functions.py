"""Calls per second of a trivial ``funcs.call`` from Lua to Lua.

What is measured: one ``Runtime.call`` into ``app:caller``, which loops N times over
``funcs.call("app:noop", i)``; ``app:noop`` returns its argument. The rate is N divided by
the wall time of that one call, so per-call cost is everything ``funcs.call`` does: copy
the arguments, start a function actor with a fresh instance of the callee's module, run
it on the scheduler, copy the result back and resume the caller.

Baseline: ``await f(i)`` on a plain ``async def f(x): return x`` in a loop, on the same
event loop in the same process. That is the cheapest thing a Python program can call
"a function that could suspend", so the ratio shows how far a cross-instance Lua call is
from the floor. It has no target: a Lua call instantiates an isolated module and is
expected to be orders of magnitude dearer; the figure is recorded to track regressions.

Run: ``python bench/functions.py`` (``--quick`` for a smoke run of a second or two).
"""

from __future__ import annotations

import sys

from _common import (
    LuaEntry,
    Row,
    best_rate,
    exit_code,
    parser,
    print_header,
    print_summary,
    project,
    rate,
    run,
    runtime_for,
)

ENTRIES = [
    LuaEntry("noop", "function.lua", "return { main = function(x) return x end }\n"),
    LuaEntry("caller", "function.lua", """\
        local funcs = require("funcs")
        return { main = function(n)
          local call = funcs.call
          for i = 1, n do
            local r, err = call("app:noop", i)
            if err then error(err) end
          end
          return n
        end }
        """, modules=("funcs",)),
]


async def python_calls(n: int) -> None:
    async def f(x: int) -> int:
        return x

    for i in range(n):
        await f(i)


async def measure(quick: bool, repeats: int) -> list[Row]:
    n = 2_000 if quick else 100_000
    with project(ENTRIES, host=False) as root:
        rt = runtime_for(root)
        async with rt:
            await rt.call("app:caller", 100)  # warm up: compile paths, fill caches

            async def lua_calls(count: int) -> None:
                assert await rt.call("app:caller", count) == count

            lua = await best_rate(n, repeats, lua_calls)
    py = await best_rate(n * 10, repeats, python_calls)
    print(f"funcs.call Lua->Lua:      {rate(lua, ' calls/s')}  ({1e6 / lua:.2f} us per call)")
    print(f"await f() Python (base):  {rate(py, ' calls/s')}  ({1e6 / py:.3f} us per call)")
    return [Row("funcs.call Lua->Lua", rate(lua), f"await f(): {rate(py)}", lua / py, "none", None)]


def main() -> int:
    args = parser(__doc__).parse_args()
    repeats = args.repeats or (1 if args.quick else 5)
    print_header("bench/functions.py", args.uvloop, repeats)
    rows = run(lambda: measure(args.quick, repeats), args.uvloop)
    print_summary("functions", rows)
    return exit_code(rows, args.strict)


if __name__ == "__main__":
    sys.exit(main())
