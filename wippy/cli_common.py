"""What the ``wippy`` sub-commands share: printing errors, and loading the project the
way every command does (project root check, ``.wippy.yaml`` overrides, ``-o``, the
runtime's module list)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wippy.errors import LoadError, Problem, WippyError
from wippy.registry import Registry, load_project
from wippy.registry.loader import project_root_problem
from wippy.registry.overrides import Override

log = logging.getLogger("wippy.cli")


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_error(error: WippyError) -> None:
    from wippy.cli_output import json_default, jsonable

    err(f"error: {error}")
    if error.details is not None:
        err("details: " + json.dumps(jsonable(error.details), ensure_ascii=False, default=json_default))
    if error.stack:
        err(error.stack)


def overrides_of(args: argparse.Namespace | None) -> list[Override]:
    """The ``.wippy.yaml`` overrides, then the ``-o`` ones (parsed by ``main``)."""
    if args is None:
        return []
    config = getattr(args, "config_data", None)
    return [*(config.overrides if config is not None else []), *getattr(args, "override_list", [])]


def module_names() -> list[str]:
    from wippy.lua.modules import module_names as names

    return names()


def load(project: str | Path, args: argparse.Namespace | None = None, *,
         warnings: list[Problem] | None = None) -> Registry | None:
    """The project in ``project`` (a project root, see
    :func:`wippy.registry.loader.project_root_problem`), or None after printing why not.
    Load warnings go to ``warnings`` when given, else to the log (shown with -v)."""
    path = Path(project)
    why = project_root_problem(path)
    if why is not None:
        err(f"error: {why}")
        return None
    try:
        registry = load_project(path, modules=module_names(), overrides=overrides_of(args))
    except LoadError as exc:
        err(str(exc))
        if warnings is not None:
            warnings.extend(exc.warnings)
        return None
    if warnings is not None:
        warnings.extend(registry.warnings)
    else:
        for problem in registry.warnings:
            log.info("warning: %s", problem)
    return registry


def print_warnings(warnings: list[Problem]) -> None:
    if warnings:
        n = len(warnings)
        err(f"{n} warning{'s' if n != 1 else ''}:\n" + "\n".join(f"  {w}" for w in warnings))


def silent(args: argparse.Namespace | None) -> bool:
    return bool(getattr(args, "silent", False))


__all__ = ["err", "load", "module_names", "overrides_of", "print_error", "print_warnings", "silent"]
