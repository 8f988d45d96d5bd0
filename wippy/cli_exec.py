"""``wippy exec``: call a function entry, or run a process entry to its exit, and print
the result as JSON.

Beyond the call itself this watches for the two ways a run never ends:

- ``--timeout``: past it the call is cancelled (exit 1, kind Timeout), even when its Lua
  code never yields (the watchdog of :mod:`wippy.interrupt` ends the process then);
- a deadlock: when every actor waits and nothing on the loop can ever wake one (no timer,
  no I/O, no other task or busy thread: :func:`wippy.interrupt.loop_is_quiet`), the run
  stops at once and says who was waiting, instead of hanging until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from wippy.cli_common import err, load, print_error
from wippy.cli_output import dumps
from wippy.errors import INVALID, NOT_FOUND, TIMEOUT, WippyError
from wippy.host.runtime import Runtime
from wippy.interrupt import EXIT_INTERRUPTED, Interrupted, Supervisor, loop_is_quiet
from wippy.registry import Registry

QUIET_CHECKS = 2  # consecutive quiet looks before calling it a deadlock
CHECK_EVERY = 0.2  # seconds


class Deadlock(Exception):
    """Every actor waits and nothing can wake one; ``waiting`` describes them."""

    def __init__(self, waiting: list[str]) -> None:
        super().__init__("deadlock")
        self.waiting = waiting


def parse_json_args(raw_args: list[str]) -> list[Any] | str:
    """The ``exec`` arguments as Python values, or a message naming the bad one."""
    values = []
    for i, raw in enumerate(raw_args, 1):
        try:
            values.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            message = f"argument #{i} is not valid JSON ({exc.msg} at column {exc.colno}): {raw}"
            if raw and raw[0] not in "{[\"-0123456789" and raw not in ("true", "false", "null"):
                message += f"\n  (a string needs JSON quotes, e.g. '\"{raw}\"')"
            return message
    return values


def _or_list(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def entry_problem(registry: Registry, entry_id: str) -> WippyError | None:
    """Why ``entry_id`` cannot be run by ``exec``, before anything starts: NOT_FOUND (with
    near misses), or INVALID with what to do instead for kinds that are not run this way."""
    import difflib

    from wippy.actors.functions import CALLABLE_KINDS

    entry = registry.get(entry_id)
    if entry is None:
        callable_ids = sorted(e.id for e in registry if e.kind in CALLABLE_KINDS)
        message = f"entry {entry_id} not found in {registry.root}"
        close = difflib.get_close_matches(entry_id, callable_ids, n=3)
        if close:
            message += f"; did you mean {_or_list(close)}?"
        return WippyError(NOT_FOUND, message)
    if entry.kind == "workflow.lua":
        hosts = [e.id for e in registry if e.kind in ("workflow.host", "temporal.worker")]
        where = (f"start it from a process entry with process.spawn(\"{entry_id}\", \"{hosts[0]}\", ...) and "
                 "wait for its EXIT event (examples/orders/demo.lua does this; run that process with wippy exec)"
                 if hosts else "add a workflow.host entry with lifecycle.auto_start: true, then start it from a "
                 "process entry with process.spawn (see docs/workflows.md)")
        return WippyError(INVALID, f"{entry_id} is a workflow.lua entry: a workflow runs durably on a workflow "
                                   f"host, not as a call; {where}")
    if entry.kind == "library.lua":
        return WippyError(INVALID, f"{entry_id} is a library.lua entry: it is imported by other entries "
                                   f"(imports: {{alias: {entry_id}}}), not called")
    return None  # whether its kind can run is the runtime's call


def live_actors(runtime: Runtime) -> list[str]:
    """One line per live actor: PID, entry, messages waiting in its inbox."""
    lines: set[str] = set()
    for host in list(runtime.router.hosts.values()):
        snapshot = getattr(host, "snapshot", None)
        if snapshot is None:
            continue
        for p in snapshot():
            inbox = p.get("inbox")
            lines.add(f"{p['pid']}  {p['entry']}" + (f"  ({inbox} message{'s' if inbox != 1 else ''} in its inbox)"
                                                      if isinstance(inbox, int) else ""))
    return sorted(lines)


async def _watch_quiet(ignore: set[asyncio.Task[Any]], runtime: Runtime) -> list[str]:
    """Returns (the live actors) once the loop has stayed quiet for QUIET_CHECKS looks."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    quiet = 0
    while True:
        await asyncio.sleep(CHECK_EVERY)
        quiet = quiet + 1 if loop_is_quiet(loop, ignore | ({me} if me else set())) else 0
        if quiet >= QUIET_CHECKS:
            return live_actors(runtime)


class _Results:
    """Every value the entry returned (a function's extra results included)."""

    def __init__(self) -> None:
        self.values: list[Any] | None = None
        self.started = time.monotonic()
        self.still_running: list[str] | None = None  # what was live when the run was stopped


async def _call_all(runtime: Runtime, entry_id: str, args: list[Any], out: _Results) -> Any:
    """Call a function entry, keeping all of its results (``return a, b, c``)."""
    from wippy.actors.functions import FunctionCall

    kernel = runtime.kernel
    vm = kernel.vm
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()

    class Call(FunctionCall):
        def main_finished(self, ok: bool, values: tuple[Any, ...]) -> None:
            if ok and values and values[0]:
                table = values[1]
                with contextlib.suppress(Exception):  # the first result is what matters
                    out.values = [vm.to_python(table[i], f"result #{i}") for i in range(1, int(table[b"n"]) + 1)]
            super().main_finished(ok, values)

    def done(ok: bool, value: Any) -> None:
        if result.done():
            return
        try:
            converted = vm.to_python(value, "result")
        except WippyError as error:
            result.set_exception(error)
            return
        if ok:
            result.set_result(converted)
        else:
            result.set_exception(converted)

    target, profile = kernel.functions.resolve(entry_id)
    call = Call(kernel, target, profile, kernel.lua_args(args), None, done)
    kernel.scheduler.start(call.task)
    try:
        return await result
    except asyncio.CancelledError:
        call.close()
        raise


async def _run(runtime: Runtime, supervisor: Supervisor, entry_id: str, args: list[Any],
               timeout: float | None, out: _Results) -> Any:
    entry = runtime.registry.get(entry_id)
    coro = (_call_all(runtime, entry_id, args, out) if entry is not None and entry.kind == "function.lua"
            else runtime.run(entry_id, *args))
    main = asyncio.ensure_future(coro)
    me = asyncio.current_task()
    ignore = {main, *supervisor.own_tasks(), *([me] if me else [])}
    watcher = asyncio.ensure_future(_watch_quiet(ignore, runtime))
    try:
        await asyncio.wait({main, watcher}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        supervisor.disarm()
        if main.done():
            return main.result()
        out.still_running = watcher.result() if watcher.done() else live_actors(runtime)
        main.cancel()
        with contextlib.suppress(BaseException):
            await main
        if watcher.done():
            raise Deadlock(out.still_running)
        raise WippyError(TIMEOUT, f"{entry_id} did not finish within {timeout:g}s")
    except asyncio.CancelledError:  # Ctrl-C
        if out.still_running is None:
            out.still_running = live_actors(runtime)
        raise
    finally:
        watcher.cancel()
        if not main.done():
            main.cancel()


def _print_results(values: list[Any]) -> None:
    """One JSON document per result, trailing nils left out (``return v, nil``)."""
    while len(values) > 1 and values[-1] is None:
        values.pop()
    for value in values:
        print(dumps(value))


def _waiting_lines(entry_id: str, waiting: list[str] | None) -> list[str]:
    if not waiting:
        return [f"  {entry_id} (the call itself)"]
    return [f"  {w}" for w in waiting]


def cmd_exec(args: argparse.Namespace) -> int:
    if ":" not in args.entry:
        message = f"the entry ID must be namespace:name, got {args.entry!r}"
        if Path(args.entry).is_dir():
            message += f" (to run an entry of that project: wippy exec {args.entry} NAMESPACE:NAME)"
        err(message)
        return 2
    call_args = parse_json_args(args.args)
    if isinstance(call_args, str):
        err(call_args)
        return 2
    registry = load(args.project, args)
    if registry is None:
        return 1
    problem = entry_problem(registry, args.entry)
    if problem is not None:
        print_error(problem)
        return 1
    timeout = args.timeout or None
    supervisor = Supervisor()
    out = _Results()
    output = (lambda line: None) if getattr(args, "silent", False) else err

    def on_stuck() -> int:  # the watchdog thread: the loop never came back (Lua spinning)
        err(f"error: {TIMEOUT}: {args.entry} did not finish within {timeout:g}s; its Lua code runs without "
            "yielding, so it was stopped at once")
        return 1

    async def main() -> Any:
        # Lua print() goes to stderr so stdout carries exactly the JSON result.
        async with Runtime(registry, output=output, tune_gc=True) as runtime:
            if timeout is not None:
                supervisor.arm(timeout, on_stuck)
            return await _run(runtime, supervisor, args.entry, call_args, timeout, out)

    try:
        result = supervisor.run(main())
    except Interrupted:
        err("interrupted")
        if out.still_running is not None:
            took = time.monotonic() - out.started
            err(f"{args.entry} had not finished after {took:.1f}s; still running:")
            err("\n".join(_waiting_lines(args.entry, out.still_running)))
        return EXIT_INTERRUPTED
    except Deadlock as exc:
        err(f"error: {args.entry} can never finish: every actor is waiting and nothing can wake one "
            "(no timer, I/O or other task is pending); waiting:")
        err("\n".join(_waiting_lines(args.entry, exc.waiting)))
        return 1
    except WippyError as error:
        print_error(error)
        if error.kind == TIMEOUT and out.still_running is not None:
            err("still running:\n" + "\n".join(_waiting_lines(args.entry, out.still_running)))
        return 1
    _print_results(out.values if out.values else [result])
    return 0


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    from wippy.cli_args import seconds_arg

    p = sub.add_parser(
        "exec", parents=parents,
        help="call a function entry (or run a process entry to its exit) and print its result as JSON",
        description="Call a function.lua entry, or run a process.lua entry on the first auto-started "
        "process.host until it exits, and print its result as JSON on stdout (each result of a "
        "function that returns several, one JSON document each). Lua print() output and errors go "
        "to stderr. A run that can never finish (every actor waiting, nothing pending that could "
        "wake one) stops at once and says who was waiting.",
        epilog="JSON output: non-UTF-8 bytes in strings show as \\xNN, NaN/Infinity as strings, "
        "error values as {kind, message, details}, Time as RFC 3339 (e.g. 2024-05-01T12:00:00.5Z), "
        "Duration as e.g. \"1m30s\", a message as {topic, from, payload}. "
        "Exit codes: 0 ok; 1 the project failed to load, the entry is missing or cannot be run this "
        "way, it raised or returned an error (kind, message and Lua stack on stderr), it timed out, "
        "or it can never finish; 2 a bad argument; 130 interrupted (Ctrl-C).",
    )
    p.add_argument("project", nargs="?", default=".", metavar="DIR", help="project directory (default: .)")
    p.add_argument("entry", metavar="ENTRY_ID", help="entry ID, namespace:name")
    p.add_argument("args", nargs="*", metavar="JSON_ARG",
                   help="arguments, each one JSON value (quote strings: '\"text\"')")
    p.add_argument("--timeout", metavar="SECONDS", type=seconds_arg, default=0.0,
                   help="stop and fail if the entry has not finished after SECONDS (default: 0, no limit)")
    p.set_defaults(fn=cmd_exec)


__all__ = ["Deadlock", "add_parser", "cmd_exec", "entry_problem", "live_actors", "parse_json_args"]
