"""The import graph: layers point one way, and no core module names a provider.

Every import counts, including type-only ones under ``if TYPE_CHECKING:`` and imports
inside functions: a type-only import upward is still a knot for a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wippy

PACKAGE = Path(wippy.__file__).parent

# Lowest first. A module may import its own layer and the ones before it.
LAYERS = [
    ("wippy.errors", "wippy.durations", "wippy.interrupt", "wippy.lua.typed"),  # no dependencies
    ("wippy.registry",),
    ("wippy.lua",),
    ("wippy.actors",),
    ("wippy.host",),
    ("wippy.providers", "wippy.http"),
]
CORE = ("wippy.registry", "wippy.lua", "wippy.actors", "wippy.host")
BUILTIN_PROVIDERS = ("wippy.providers.memory", "wippy.providers.workflow", "wippy.providers.temporal")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from wippy.x import y` may be a module
    return {m for m in found if m == "wippy" or m.startswith("wippy.")}


def _layer(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


MODULES = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_the_graph_is_not_empty() -> None:
    assert "wippy.actors.kernel" in MODULES and "wippy.actors.router" in MODULES["wippy.actors.kernel"]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_layers_point_one_way(module: str) -> None:
    own = _layer(module)
    assert own is not None
    upward = sorted(i for i in MODULES[module] if (_layer(i) or -1) > own)
    assert not upward, f"{module} (layer {own}) imports from a higher layer: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(CORE)))
def test_the_core_names_no_provider(module: str) -> None:
    named = sorted(i for i in MODULES[module] if i.startswith("wippy.providers"))
    assert not named, f"{module} imports {named}"


@pytest.mark.parametrize("provider", BUILTIN_PROVIDERS)
def test_providers_do_not_import_each_other(provider: str) -> None:
    others = tuple(p for p in BUILTIN_PROVIDERS if p != provider)
    for module, imports in MODULES.items():
        if module == provider or module.startswith(provider + "."):
            crossing = sorted(i for i in imports if i.startswith(others))
            assert not crossing, f"{module} imports another provider: {crossing}"


def test_the_kind_strings_of_providers_are_not_in_the_core() -> None:
    kinds = ('"process.host"', '"workflow.host"', '"temporal.worker"', '"temporal.client"')
    for path in PACKAGE.rglob("*.py"):
        if _module_name(path).startswith(CORE):
            text = path.read_text(encoding="utf-8")
            assert not any(k in text for k in kinds), f"{path} names a provider kind"
