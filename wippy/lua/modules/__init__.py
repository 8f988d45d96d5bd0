"""Lua-side modules, discovered by file name.

Each ``<name>.lua`` here is a module: a chunk called with ``(rt, natives)`` that returns
the module table. An optional Python module of the same name may define:

- ``GLOBAL = True``: the module is also a global and needs no ``modules:`` line;
- ``natives(vm) -> dict``: Python functions handed to the Lua chunk (pure computation only,
  they must not block);
- ``commands(runtime) -> dict``: default (in-memory) handlers for the commands the module
  yields. Providers start from these and replace what they carry out differently.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime
    from wippy.lua.vm import LuaVM


def module_names() -> list[str]:
    """Every module this runtime provides, in load order (``channel`` first)."""
    names = sorted(
        p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".lua")
    )
    names.sort(key=lambda n: n != "channel")
    return names


def _python_side(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{name}":
            return None
        raise


def _specs() -> Iterator[tuple[str, ModuleType | None]]:
    for name in module_names():
        yield name, _python_side(name)


def install_modules(vm: LuaVM) -> None:
    """Load every module into ``vm`` (once per Lua state)."""
    for name, py in _specs():
        source = resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
        chunk = vm.load_chunk(source, f"=wippy:{name}")
        natives = vm.table({k.encode(): v for k, v in py.natives(vm).items()}) if py and hasattr(py, "natives") else vm.table()
        table = chunk(vm.rt, natives)
        is_global = bool(py and getattr(py, "GLOBAL", False))
        view = vm.rt.add_module(name.encode(), table, is_global)
        if is_global:
            vm.rt.add_global(name.encode(), view)


def default_commands(runtime: Runtime) -> dict[str, Any]:
    """The in-memory handlers of every module's commands."""
    from wippy.actors.channel import channel_commands
    from wippy.actors.scheduler import task_commands

    out: dict[str, Any] = {**channel_commands(), **task_commands()}
    for _name, py in _specs():
        if py is not None and hasattr(py, "commands"):
            out.update(py.commands(runtime))
    return out
