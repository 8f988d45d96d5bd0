"""``wippy run <command> [args...]``, ``wippy run -x ns:entry [args...]`` and ``wippy run list``:
run one process on a terminal host, as upstream's command mode does.

A command is a ``process.*`` entry whose ``meta.command.name`` is the name. The process
runs on the ``terminal.host`` (``--host`` names another host; without it there must be
exactly one terminal host) with every argument as a string, after the project's
``auto_start`` entries have started. When it ends, the runtime stops and the exit code
follows from its result (:func:`wippy.providers.terminal.completion`).

Which positional is what: ``wippy run`` and ``wippy run DIR`` start the project and keep
it running (service mode, :func:`wippy.cli.cmd_run`). ``wippy run NAME ...`` runs the
command NAME of the project in the current directory; ``wippy run DIR NAME ...`` the one
of the project in DIR. A first argument that is a directory is the project, unless the
current directory is a project with a command of that name (``wippy run test`` in a
project with a ``test/`` folder runs the command).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from wippy.errors import LoadError, WippyError
from wippy.registry import Entry, Registry, load_project

TERMINAL_HOST = "terminal.host"


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def command_of(entry: Entry) -> dict[str, Any] | None:
    """The ``meta.command`` of a process entry, when it names a command."""
    if not entry.kind.startswith("process."):
        return None
    command = entry.meta.get("command")
    if isinstance(command, dict) and isinstance(command.get("name"), str) and command["name"]:
        return command
    return None


def commands(registry: Registry) -> list[tuple[str, str, str]]:
    """``(name, short, entry ID)`` of every command, in registry order."""
    out = []
    for entry in registry:
        command = command_of(entry)
        if command is not None:
            short = command.get("short")
            out.append((command["name"], short if isinstance(short, str) else "", entry.id))
    return out


def find_command(registry: Registry, name: str) -> str | None:
    """The entry ID of command ``name`` (the first one declared), or None."""
    return next((eid for cname, _, eid in commands(registry) if cname == name), None)


def list_commands(registry: Registry) -> int:
    found = commands(registry)
    if not found:
        print("No commands found.\n")
        print("Add meta.command to a process.lua entry, e.g.:\n"
              "  meta:\n    command:\n      name: test\n      short: Run tests")
        return 0
    width = max(len(name) for name, _, _ in found)
    short_width = max(len(short) for _, short, _ in found)
    print("Available commands:\n")
    for name, short, eid in found:
        print(f"  {name.ljust(width)}  {short.ljust(short_width)}  ({eid})")
    print("\nRun with: wippy run <command>")
    return 0


def terminal_host(registry: Registry, wanted: str | None) -> str:
    """The host a command runs on: ``wanted``, else the one ``terminal.host``."""
    if wanted is not None:
        if registry.get(wanted) is None:
            raise WippyError("NotFound", f"host {wanted} not found in registry")
        return wanted
    hosts = [e.id for e in registry if e.kind == TERMINAL_HOST]
    if not hosts:
        raise WippyError("NotFound", "no terminal.host found in registry")
    if len(hosts) > 1:
        raise WippyError("Invalid", f"multiple terminal hosts found ({', '.join(hosts)}), use --host to specify")
    return hosts[0]


def _is_project(path: Path) -> bool:
    """Whether ``path`` looks like a project root (without loading it)."""
    if (path / "wippy.lock").is_file():
        return True
    return any(path.glob("*.yaml")) or any(path.glob("*.yml")) or any((path / "src").glob("*.yaml"))


def _explicit_logging(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("verbose", "very_verbose", "silent", "console",
                                                         "log_json", "json_logs"))


class _Loaded:
    """Projects loaded while deciding what the arguments mean (each loaded once), the way
    every command loads them (``.wippy.yaml`` and ``-o`` overrides, module names)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.registries: dict[Path, Registry | None] = {}

    def get(self, project: str) -> Registry | None:
        from wippy.cli_common import load

        key = Path(project).resolve()
        if key not in self.registries:
            self.registries[key] = load(project, self.args)
        return self.registries[key]

    def has_command(self, project: str, name: str) -> bool:
        """Whether ``project`` loads (quietly) and has the command ``name``."""
        from wippy.cli_common import module_names, overrides_of

        key = Path(project).resolve()
        if key not in self.registries:
            try:
                self.registries[key] = load_project(Path(project), modules=module_names(),
                                                    overrides=overrides_of(self.args))
            except LoadError:
                return False
        registry = self.registries[key]
        return registry is not None and find_command(registry, name) is not None


def command_mode(args: argparse.Namespace) -> int | None:
    """Run what ``wippy run`` was asked to run when it is a command, ``-x`` or ``list``
    and return the exit code; None for service mode (``args.project`` is then set)."""
    targets: list[str] = list(getattr(args, "target", None) or [])
    exec_entry: str | None = getattr(args, "exec_entry", None)
    loaded = _Loaded(args)
    project, rest = ".", targets
    if targets:
        first = targets[0]
        explicit_path = first in (".", "..") or "/" in first or "\\" in first
        if explicit_path or (Path(first).is_dir() and not (
                exec_entry is None and first != "list" and _is_project(Path("."))
                and loaded.has_command(".", first))):
            project, rest = first, targets[1:]
    if exec_entry is None and not rest:
        args.project = project
        return None
    registry = loaded.get(project)
    if registry is None:
        return 1
    if exec_entry is None and rest[0] == "list":
        return list_commands(registry)
    if exec_entry is not None:
        entry_id, cmd_args = exec_entry, rest
        if registry.get(entry_id) is None:
            _err(f"error: entry {entry_id} not found in {registry.root}")
            return 1
    else:
        found = find_command(registry, rest[0])
        if found is None:
            _err(f"error: command {rest[0]!r} not found. Use 'wippy run list' to see available commands")
            return 1
        entry_id, cmd_args = found, rest[1:]
    if not _explicit_logging(args):  # as upstream: a command runs silent unless asked
        from wippy.lua.modules.logger import configure_logging

        configure_logging(None)
    return run_process(registry, entry_id, cmd_args, getattr(args, "host", None))


def run_process(registry: Registry, entry_id: str, cmd_args: list[str], host: str | None = None) -> int:
    """Start the project, run ``entry_id`` on its terminal host with ``cmd_args``, stop;
    print what the process's result says and return its exit code."""
    from wippy.interrupt import EXIT_INTERRUPTED, Interrupted, Supervisor
    from wippy.providers.terminal import Completion

    try:
        host_id = terminal_host(registry, host)
    except WippyError as err:
        _err(f"error: {err.message}")
        return 1
    try:
        done: Completion = Supervisor().run(run_on_terminal(registry, entry_id, host_id, cmd_args))
    except Interrupted:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except WippyError as err:
        _err(f"error: {err}")
        return 1
    if done.stdout is not None:
        sys.stdout.write(done.stdout + "\n")
        sys.stdout.flush()
    if done.stderr is not None:
        _err(done.stderr)
    return done.exit_code


async def run_on_terminal(registry: Registry, entry_id: str, host_id: str, cmd_args: list[str]) -> Any:
    """Start the project, run ``entry_id`` on ``host_id`` with ``cmd_args``, stop the project;
    the :class:`~wippy.providers.terminal.Completion` of the process."""
    from wippy.actors.host import SpawnRequest
    from wippy.host.runtime import Runtime
    from wippy.providers.terminal import exit_result

    runtime = Runtime(registry, tune_gc=True)
    kernel = runtime.kernel
    try:
        await runtime.start()
        host = runtime.router.hosts.get(host_id)
        if host is None or not host.running:  # not auto-started: start it (and what it needs)
            await runtime.lifecycle.start([registry.entries[host_id]])
            host = runtime.router.hosts.get(host_id)
        if host is None:
            raise WippyError("Invalid", f"{host_id} is not a host")
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_exit(event: dict[str, Any]) -> None:
            runtime.router.drop_callback(watcher)
            if not result.done():
                outcome = event["result"]
                result.set_result(exit_result(kernel, outcome.get("value"), outcome.get("error")))

        watcher = runtime.router.callback_pid(on_exit)
        host.spawn(SpawnRequest(entry_id, kernel.lua_args(cmd_args), parent=watcher, monitor=True))
        return await result
    finally:
        await runtime.stop()
