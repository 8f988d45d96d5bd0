"""The ``wippy`` command line: run, exec, check, test."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

from wippy.cli_args import seconds_arg
from wippy.cli_temporal import add_parser as add_temporal_parser
from wippy.cli_workflows import add_parser as add_workflows_parser
from wippy.errors import LoadError, WippyError
from wippy.host.runtime import Runtime
from wippy.registry import load_project


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _load(project: str) -> Any:
    try:
        return load_project(Path(project))
    except LoadError as exc:
        _err(str(exc))
        return None


def _json_default(value: Any) -> Any:
    """``json.dumps`` fallback: what :func:`_jsonable` leaves alone is shown by ``repr``."""
    return repr(value)


_RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A Lua result as JSON-ready data. Strings that are not UTF-8 show their bad bytes as
    ``\\xNN``; NaN and infinities become strings; table keys become strings, sorted
    (numbers by value first); error values become
    ``{"kind", "message"[, "details"]}``; a Time becomes an RFC 3339 string and a Duration
    a Go duration string ("1m30s"); other typed values show their data."""
    from wippy.lua.convert import TypedValue

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if depth > 500:
        return "..."
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):  # Lua has no key order: numbers first, by value, then text
        keys = sorted(value, key=lambda k: (0, k, "") if isinstance(k, (int, float)) and not isinstance(k, bool)
                      else (1, 0, _json_key(k)))
        return {_json_key(k): _jsonable(value[k], depth + 1) for k in keys}
    if isinstance(value, WippyError):
        out: dict[str, Any] = {"kind": value.kind, "message": value.message}
        if value.details is not None:
            out["details"] = _jsonable(value.details, depth + 1)
        return out
    if isinstance(value, TypedValue):
        return _typed_json(value, depth)
    return _json_default(value)


def _json_key(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _typed_json(value: Any, depth: int) -> Any:
    data = value.data
    try:
        if value.type_name == "time":
            from wippy.lua.modules.time import format_time

            return format_time(_RFC3339_NANO, int(data["unix"]), int(data.get("nsec") or 0),
                               str(data.get("zone") or "UTC"), data.get("offset"))
        if value.type_name == "duration":
            from wippy.lua.modules.time import duration_string

            return duration_string(int(data["ns"]))
    except Exception:  # the time module is missing or the data is odd: show the data
        pass
    return _jsonable(data, depth + 1)


def _new_loop_runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def cmd_check(args: argparse.Namespace) -> int:
    try:
        registry = load_project(Path(args.project))
    except LoadError as exc:
        _err(str(exc))
        return 1
    print(f"ok: {len(registry)} entries in {registry.root}")
    return 0


def _parse_json_args(raw_args: list[str]) -> list[Any] | str:
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


def _entry_problem(registry: Any, entry_id: str) -> WippyError | None:
    """NOT_FOUND (with near misses) before anything starts, if ``entry_id`` is missing."""
    import difflib

    from wippy.actors.functions import CALLABLE_KINDS

    entry = registry.get(entry_id)
    callable_ids = sorted(e.id for e in registry if e.kind in CALLABLE_KINDS)
    if entry is None:
        message = f"entry {entry_id} not found in {registry.root}"
        close = difflib.get_close_matches(entry_id, callable_ids, n=3)
        if close:
            message += f"; did you mean {', '.join(close[:-1]) + ' or ' if len(close) > 1 else ''}{close[-1]}?"
        return WippyError("NotFound", message)
    return None  # whether its kind can run is the runtime's call


def _print_error(err: WippyError) -> None:
    _err(f"error: {err}")
    if err.details is not None:
        _err("details: " + json.dumps(_jsonable(err.details), ensure_ascii=False, default=_json_default))
    if err.stack:
        _err(err.stack)


def cmd_exec(args: argparse.Namespace) -> int:
    from wippy.interrupt import EXIT_INTERRUPTED, Interrupted, Supervisor

    if ":" not in args.entry:
        message = f"the entry ID must be namespace:name, got {args.entry!r}"
        if Path(args.entry).is_dir():
            message += f" (to run an entry of that project: wippy exec {args.entry} NAMESPACE:NAME)"
        _err(message)
        return 2
    call_args = _parse_json_args(args.args)
    if isinstance(call_args, str):
        _err(call_args)
        return 2
    registry = _load(args.project)
    if registry is None:
        return 1
    problem = _entry_problem(registry, args.entry)
    if problem is not None:
        _print_error(problem)
        return 1

    async def main() -> Any:
        # Lua print() goes to stderr so stdout carries exactly the JSON result.
        async with Runtime(registry, output=_err) as runtime:
            return await runtime.run(args.entry, *call_args)

    try:
        result = Supervisor().run(main())
    except Interrupted:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except WippyError as err:
        _print_error(err)
        return 1
    print(json.dumps(_jsonable(result), indent=2, ensure_ascii=False, default=_json_default))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from wippy.interrupt import EXIT_INTERRUPTED, Interrupted, Supervisor
    from wippy.testing import NOT_RUN, PASSED, discover, run_tests, summary_line, write_junit

    registry = _load(args.project)
    if registry is None:
        return 1
    tests = discover(registry, args.filter)
    if not tests:
        what = " matching " + " or ".join(repr(f) for f in args.filter) if args.filter else ""
        print(f"no tests found (function.lua entries with meta.type: test){what}")
        print("0 passed, 0 failed")
        return 0
    print(f"running {len(tests)} test{'s' if len(tests) != 1 else ''} from {registry.root}", flush=True)

    def report(result: Any, i: int, total: int) -> None:
        mark = "ok  " if result.passed else "FAIL"
        ms = result.seconds * 1000
        took = f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
        print(f"[{i}/{total}] {mark} {result.entry_id} ({took})", flush=True)

    def finish(results: list[Any]) -> int:
        for r in results:
            if r.status not in (PASSED, NOT_RUN):
                print(f"FAILED {r.entry_id}: {r.error}")
        not_run = sum(r.status == NOT_RUN for r in results)
        if not_run:
            print(f"{not_run} test{'s' if not_run != 1 else ''} not run: the run stopped at a hung test")
        code = 0 if all(r.status == PASSED for r in results) else 1
        if args.junit:
            try:
                write_junit(results, Path(args.junit))
            except OSError as exc:
                _err(f"error: cannot write the JUnit report {args.junit}: {exc.strerror or exc}")
                code = 1
        print(summary_line(results), flush=True)
        return code

    def on_stuck(results: list[Any]) -> int:  # runs in the watchdog thread, then the process exits
        stuck = len(results) - sum(r.status == NOT_RUN for r in results)
        report(results[stuck - 1], stuck, len(tests))
        return finish(results)

    supervisor = Supervisor()
    timeout = args.timeout or None

    async def main() -> Any:
        async with Runtime(registry) as runtime:
            return await run_tests(runtime, tests, report, timeout, watchdog=supervisor, on_stuck=on_stuck)

    try:
        results = supervisor.run(main())
    except Interrupted:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except WippyError as err:  # the runtime could not start
        _print_error(err)
        return 1
    return finish(results)


def _status_interval(text: str) -> float:
    """``--status`` value: seconds as a number ("2", "0.5") or a duration ("500ms")."""
    from wippy.durations import parse_duration

    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_duration(text)
        except WippyError as err:
            raise argparse.ArgumentTypeError(err.message) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return seconds


def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from wippy.host.lifecycle import run_forever

    registry = _load(args.project)
    if registry is None:
        return 1
    logging.basicConfig(level=logging.WARNING, format="wippy: %(levelname)s %(name)s: %(message)s")
    try:
        return _new_loop_runner()(run_forever(registry, status=args.status))
    except WippyError as err:
        _err(f"error: {err}")
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wippy", description="Run Wippy-style Lua applications.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start auto_start entries and run until interrupted")
    p.add_argument("project", nargs="?", default=".")
    p.add_argument("--status", metavar="SECONDS", type=_status_interval,
                   help="print a table of services and live processes every SECONDS (e.g. 5 or 500ms)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser(
        "exec",
        help="call a function entry (or run a process entry to its exit) and print its result as JSON",
        description="Call a function.lua entry, or run a process.lua entry on the first auto-started "
        "process.host until it exits, and print its result as JSON on stdout. Lua print() output "
        "and errors go to stderr.",
        epilog="JSON output: non-UTF-8 bytes in strings show as \\xNN, NaN/Infinity as strings, "
        "error values as {kind, message, details}, Time as RFC 3339, Duration as e.g. \"1m30s\". "
        "Exit codes: 0 ok; 1 the project failed to load, the entry is missing or not callable, or "
        "it raised or returned an error (kind, message and Lua stack on stderr); 2 a bad argument; "
        "130 interrupted (Ctrl-C).",
    )
    p.add_argument("project", nargs="?", default=".", metavar="DIR", help="project directory (default: .)")
    p.add_argument("entry", metavar="ENTRY_ID", help="entry ID, namespace:name")
    p.add_argument("args", nargs="*", metavar="JSON_ARG",
                   help="arguments, each one JSON value (quote strings: '\"text\"')")
    p.set_defaults(fn=cmd_exec)

    p = sub.add_parser("check", help="load and validate a project; print every problem")
    p.add_argument("project", nargs="?", default=".")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser(
        "test",
        help="run entries with meta.type: test",
        description="Run every function.lua entry with meta.type: test, ordered by meta.suite, then "
        "meta.order (entries without one last), then ID, in one runtime. A test passes when it "
        "returns without error and its result is not false; it fails when it raises, returns "
        "nil and an error, returns false, or runs past --timeout.",
        epilog="Prints a progress line per test, then one FAILED line per failure and, last, "
        "\"N passed, N failed\". Exit codes: 0 all passed, or no tests found (says so and prints "
        "\"0 passed, 0 failed\"); 1 a test failed or the project failed to load; 130 interrupted. "
        "A test whose Lua code loops without ever yielding cannot be stopped: past its timeout the "
        "run ends there, reporting it failed and the remaining tests not run.",
    )
    p.add_argument("project", nargs="?", default=".", metavar="DIR", help="project directory (default: .)")
    p.add_argument("--filter", action="append", metavar="PATTERN",
                   help="only tests whose ID contains PATTERN or matches it as a glob (*, ?, [...]); "
                   "repeat to run tests matching any")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    p.add_argument("--timeout", metavar="SECONDS", type=seconds_arg, default=60.0,
                   help="fail a test that runs longer than this (default: 60; 0 for no limit)")
    p.set_defaults(fn=cmd_test)
    add_workflows_parser(sub)  # wippy workflows list|show|signal|cancel|terminate (wippy/cli_workflows.py)
    add_temporal_parser(sub)  # wippy temporal dev (wippy/cli_temporal.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `wippy exec ENTRY` without a project: treat a first argument containing ':' as the entry.
    if len(argv) >= 2 and argv[0] == "exec" and ":" in argv[1] and not Path(argv[1]).exists():
        argv.insert(1, ".")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    finally:
        # Native objects (the Temporal SDK's client) freed by a collection now rather than
        # during interpreter shutdown, where freeing them can abort the process.
        gc.collect()


if __name__ == "__main__":
    sys.exit(main())
