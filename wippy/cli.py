"""The ``wippy`` command line: run, exec, check, test."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

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
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, WippyError):
        return {"kind": value.kind, "message": value.message}
    if hasattr(value, "data"):
        return value.data
    return repr(value)


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


def cmd_exec(args: argparse.Namespace) -> int:
    registry = _load(args.project)
    if registry is None:
        return 1
    call_args = []
    for i, raw in enumerate(args.args, 1):
        try:
            call_args.append(json.loads(raw))
        except json.JSONDecodeError as exc:
            _err(f"argument #{i} is not valid JSON ({exc.msg} at column {exc.colno}): {raw}")
            return 2

    async def main() -> Any:
        runtime = Runtime(registry)
        return await runtime.call(args.entry, *call_args)

    try:
        result = _new_loop_runner()(main())
    except WippyError as err:
        _err(f"error: {err}")
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False, default=_json_default))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from wippy.testing import discover, run_tests, write_junit

    registry = _load(args.project)
    if registry is None:
        return 1
    tests = discover(registry, args.filter)
    if not tests:
        _err("no tests found (entries with meta.type: test)" + (f" matching {args.filter!r}" if args.filter else ""))

    def report(result: Any, i: int, total: int) -> None:
        mark = "ok  " if result.passed else "FAIL"
        print(f"[{i}/{total}] {mark} {result.entry_id} ({result.seconds * 1000:.0f} ms)", flush=True)

    async def main() -> Any:
        return await run_tests(Runtime(registry), tests, report)

    results = _new_loop_runner()(main())
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"FAILED {r.entry_id}: {r.error}")
    if args.junit:
        write_junit(results, Path(args.junit))
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_run(args: argparse.Namespace) -> int:
    from wippy.host.lifecycle import run_forever

    registry = _load(args.project)
    if registry is None:
        return 1
    try:
        return _new_loop_runner()(run_forever(registry))
    except WippyError as err:
        _err(f"error: {err}")
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wippy", description="Run Wippy-style Lua applications.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start auto_start entries and run until interrupted")
    p.add_argument("project", nargs="?", default=".")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("exec", help="call a function entry and print its result as JSON")
    p.add_argument("project", nargs="?", default=".", help="project directory (default: .)")
    p.add_argument("entry", help="entry ID, namespace:name")
    p.add_argument("args", nargs="*", help="arguments, each as JSON")
    p.set_defaults(fn=cmd_exec)

    p = sub.add_parser("check", help="load and validate a project; print every problem")
    p.add_argument("project", nargs="?", default=".")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("test", help="run entries with meta.type: test")
    p.add_argument("project", nargs="?", default=".")
    p.add_argument("--filter", help="only tests whose ID contains this text or matches this glob")
    p.add_argument("--junit", help="write a JUnit XML report to this file")
    p.set_defaults(fn=cmd_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `wippy exec ENTRY` without a project: treat a first argument containing ':' as the entry.
    if len(argv) >= 2 and argv[0] == "exec" and ":" in argv[1] and not Path(argv[1]).exists():
        argv.insert(1, ".")
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
