"""The ``wippy`` command line: run, exec, check, test, version (and workflows, temporal).

Every command takes the global flags (before or after the command name): ``-v``,
``--very-verbose``, ``-s``, ``-c``, ``--log-json``, ``--debug``, ``--config FILE`` and
``--set section.path=value``; ``run``, ``exec``, ``test`` and ``check`` also take
``-o namespace:entry:path=value``. See docs/cli.md.

No command prints a Python traceback for a mistake in the project or an operational fault
(a store, a server): it prints ``error: ...`` and exits 1. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import logging
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

from wippy import __version__
from wippy.cli_args import seconds_arg
from wippy.cli_common import err as _err
from wippy.cli_common import load, print_warnings
from wippy.cli_common import print_error as _print_error
from wippy.cli_exec import add_parser as add_exec_parser
from wippy.cli_exec import cmd_exec
from wippy.cli_output import jsonable as _jsonable
from wippy.cli_temporal import add_parser as add_temporal_parser
from wippy.cli_workflows import add_parser as add_workflows_parser
from wippy.errors import LoadError, WippyError
from wippy.host.runtime import Runtime
from wippy.registry import Registry

# _jsonable, _err, _load, _print_error: for the other cli_* modules (wippy.cli_output,
# wippy.cli_common are where they live).
__all__ = ["_err", "_jsonable", "_load", "_print_error", "build_parser", "cmd_exec", "main"]


def _load(project: str, args: argparse.Namespace | None = None) -> Registry | None:
    """The project in ``project`` (see :func:`wippy.cli_common.load`), or None after saying why."""
    return load(project, args)


def _new_loop_runner() -> Any:
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def cmd_check(args: argparse.Namespace) -> int:
    warnings: list[Any] = []
    registry = load(args.project, args, warnings=warnings)
    print_warnings(warnings)
    if registry is None:
        return 1
    n = len(warnings)
    note = f" ({n} warning{'s' if n != 1 else ''})" if n else ""
    print(f"ok: {len(registry)} entries in {registry.root}{note}")
    return 1 if n and args.strict else 0


def cmd_test(args: argparse.Namespace) -> int:
    from wippy.interrupt import EXIT_INTERRUPTED, Interrupted, Supervisor
    from wippy.runner import NOT_RUN, PASSED, discover, run_tests, summary_line, write_junit

    registry = _load(args.project, args)
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
        output = (lambda line: None) if args.silent else None  # -s: no Lua print() lines
        async with Runtime(registry, output=output, tune_gc=True) as runtime:
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
    from wippy.cli_run import command_mode
    from wippy.host.lifecycle import run_forever

    code = command_mode(args)  # `wippy run <command>`, `-x ENTRY`, `list` (wippy/cli_run.py)
    if code is not None:
        return code
    registry = _load(args.project, args)
    if registry is None:
        return 1
    # -s: no state changes on stdout either (upstream's silent mode has no output but errors)
    quiet = contextlib.redirect_stdout(io.StringIO()) if args.silent else contextlib.nullcontext()
    try:
        with quiet:
            return int(_new_loop_runner()(run_forever(registry, status=args.status)))
    except WippyError as err:
        _err(f"error: {err}")
        return 1


def version_text() -> str:
    import platform

    try:
        from lupa import lua54

        lua = lua54.LuaRuntime().lua_implementation
    except Exception:  # pragma: no cover - lupa is a dependency
        lua = "Lua 5.4"
    return f"wippy {__version__} (Python {platform.python_version()}, {lua})"


def cmd_version(args: argparse.Namespace) -> int:
    print(__version__ if args.short else version_text())
    return 0


def _common_flags(suppress: bool) -> argparse.ArgumentParser:
    """The global flags; on the sub-commands with SUPPRESS defaults, so a flag given before
    the command name is not reset by the sub-command's default."""
    default: Any = argparse.SUPPRESS if suppress else None
    off: Any = argparse.SUPPRESS if suppress else False
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("-v", "--verbose", action="store_true", default=off,
                   help="show debug logs (the runtime's and Lua logger's)")
    g.add_argument("--very-verbose", action="store_true", default=off,
                   help="like -v, and Python tracebacks in log records")
    g.add_argument("-s", "--silent", action="store_true", default=off,
                   help="no logs, no Lua print() output, no run state lines: only results and errors")
    g.add_argument("-c", "--console", action="store_true", default=off,
                   help="console log format (the default; for upstream compatibility)")
    g.add_argument("--log-json", action="store_true", default=off,
                   help="logs as JSON lines on stderr (ts, level, logger, msg, fields)")
    g.add_argument("--debug", action="store_true", default=off,
                   help="show the Python traceback of an error")
    g.add_argument("--config", metavar="FILE", default=default,
                   help="configuration file (default: .wippy.yaml in the project directory)")
    g.add_argument("--set", action="append", metavar="SECTION.PATH=VALUE", default=default,
                   help="set a configuration value over the file's (e.g. logger.level=debug); repeatable")
    return p


def _override_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-o", "--override", action="append", metavar="NS:ENTRY:PATH=VALUE",
                   help="set an entry field before loading, e.g. -o app:gateway:addr=:9090 or "
                   "-o app:svc:lifecycle.auto_start=false (PATH: kind, meta.X or a data field); repeatable")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wippy", parents=[_common_flags(suppress=False)],
        description="Run Wippy applications: Lua functions, processes and workflows declared in YAML.",
        epilog="Exit codes: 0 ok; 1 an error (the project, the entry, the run); 2 a usage mistake; "
        "130 interrupted. See docs/cli.md.")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_flags(suppress=True)
    overrides = _override_flags()

    p = sub.add_parser("run", parents=[common, overrides], help="start auto_start entries and run until interrupted, or run a command",
                       description="wippy run [DIR]: start the project's auto_start entries and run until "
                       "interrupted. wippy run [DIR] COMMAND [ARGS...]: run the process entry whose "
                       "meta.command.name is COMMAND on the terminal.host and exit with its result "
                       "(wippy run list shows the commands). Arguments starting with - go after --.")
    p.add_argument("target", nargs="*", metavar="[DIR] [COMMAND [ARGS...]]",
                   help="project directory (default: .), command name and its arguments")
    p.add_argument("-x", "--exec", dest="exec_entry", metavar="ENTRY",
                   help="run this process entry (ns:name) on the terminal host, then exit")
    p.add_argument("--host", metavar="ID", help="the host for a command or -x (default: the one terminal.host)")
    p.add_argument("--status", metavar="SECONDS", type=_status_interval,
                   help="print a table of services and live processes every SECONDS (e.g. 5 or 500ms)")
    p.set_defaults(fn=cmd_run)

    add_exec_parser(sub, [common, overrides])

    p = sub.add_parser(
        "check", parents=[common, overrides], help="load and validate a project; print every problem",
        description="Load the project and check everything that can be checked without running it: YAML, "
        "entry kinds and fields (unknown and mistyped ones, with a did-you-mean), modules: lists, Lua "
        "syntax, methods, imports, references, lifecycle blocks and dependency cycles. Every problem is "
        "printed, located by file, line, entry and field. Warnings (an upstream module this runtime "
        "does not provide, a field without effect here) do not fail the check unless --strict.",
        epilog="Exit codes: 0 the project loads (\"ok: N entries in DIR\" on stdout); 1 problems were "
        "found (listed on stderr), or warnings with --strict.")
    p.add_argument("project", nargs="?", default=".", metavar="DIR", help="project directory (default: .)")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser(
        "test", parents=[common, overrides],
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
    p = sub.add_parser("version", parents=[common], help="print the version",
                       description="Print the version of wippy, Python and Lua.")
    p.add_argument("--short", action="store_true", help="only the version number")
    p.set_defaults(fn=cmd_version)
    add_workflows_parser(sub)  # wippy workflows list|show|signal|cancel|terminate (wippy/cli_workflows.py)
    add_temporal_parser(sub)  # wippy temporal dev (wippy/cli_temporal.py)
    return parser


def _config_dir(args: argparse.Namespace) -> Path:
    """Where .wippy.yaml is looked for: the project directory (the current one by default)."""
    for candidate in (getattr(args, "project", None), *(getattr(args, "target", None) or [])[:1]):
        if isinstance(candidate, str) and Path(candidate).is_dir():
            return Path(candidate)
    return Path(".")


def _prepare(args: argparse.Namespace) -> int | None:
    """Configuration, overrides and logging before the command runs; an exit code when
    they cannot be used."""
    from wippy.cli_config import ConfigError
    from wippy.cli_config import load as load_config
    from wippy.cli_log import ConfigValueError, configure, settings_for
    from wippy.registry.overrides import OverrideError, parse, split

    try:
        config = load_config(_config_dir(args), args.config, args.set or [])
    except ConfigError as exc:
        _err(f"error: {exc}")
        return 1
    args.config_data = config
    try:
        args.override_list = [parse(o) for o in split(getattr(args, "override", None) or [])]
    except OverrideError as exc:
        _err(f"error: -o {exc}")
        return 2
    service = args.command == "run" and not getattr(args, "exec_entry", None)
    try:
        configure(settings_for(args, config, logging.INFO if service else logging.WARNING))
    except ConfigValueError as exc:
        _err(f"error: {config.path or '--set'}: {exc}")
        return 1
    for warning in config.warnings:
        logging.getLogger("wippy.cli").warning("%s", warning)
    return None


def _fault(exc: BaseException) -> str:
    """One line for an exception no command turned into a message."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"error: {exc.strerror}{where}"
    if isinstance(exc, sqlite3.Error):
        return f"error: database: {exc}"
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    return f"error: internal error ({type(exc).__name__}{detail}); --debug shows the Python traceback"


class _LoggingState:
    """What :func:`main` changes in the process-wide logging setup, to put back when the
    CLI runs inside another program (tests)."""

    def __init__(self) -> None:
        self.levels = {name: logging.getLogger(name).level for name in ("", "wippy", "wippy.lua")}
        self.handlers = {name: list(logging.getLogger(name).handlers) for name in ("", "wippy")}
        self.hooks = (threading.excepthook, sys.unraisablehook)

    def restore(self) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        for name, handlers in self.handlers.items():
            logger = logging.getLogger(name)
            for h in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(h)
        threading.excepthook, sys.unraisablehook = self.hooks


def main(argv: list[str] | None = None) -> int:
    embedded = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    # `wippy exec ENTRY` without a project: treat a first argument containing ':' as the entry.
    if len(argv) >= 2 and argv[0] == "exec" and ":" in argv[1] and not Path(argv[1]).exists():
        argv.insert(1, ".")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # as upstream: `wippy` alone prints the help
        parser.print_help()
        return 0
    state = _LoggingState() if embedded else None
    try:
        code = _prepare(args)
        return code if code is not None else int(args.fn(args))
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except LoadError as exc:
        _err(str(exc))
        return 1
    except WippyError as exc:
        _print_error(exc)
        return 1
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        _err(_fault(exc))
        return 1
    finally:
        # Native objects (the Temporal SDK's client) freed by a collection now rather than
        # during interpreter shutdown, where freeing them can abort the process.
        gc.collect()
        if state is not None:
            state.restore()


if __name__ == "__main__":
    sys.exit(main())
