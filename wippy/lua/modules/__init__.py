"""Lua-side modules, discovered by file name.

Each ``<name>.lua`` here is a module: a chunk called with ``(rt, natives)`` that returns
the module table. An optional Python module of the same name may define:

- ``GLOBAL = True``: the module is also a global and needs no ``modules:`` line;
- ``natives(vm) -> dict``: Python functions handed to the Lua chunk (pure computation only,
  they must not block);

What a module's commands *do* is not here: the in-memory handlers live in
:mod:`wippy.actors.commands` (one file per module), and providers replace some of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

