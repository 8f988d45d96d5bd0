"""The table of entry kinds the loader accepts.

A table, not an if-chain: providers and plugins register kinds (and, later, claim
dot-prefixes) without the loader knowing about them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wippy.errors import Problem
from wippy.registry.entry import Entry, Registry

# validate(entry, registry, report) checks kind-specific fields; report(field, message).
Validator = Callable[[Entry, Registry, Callable[[str | None, str], None]], None]


@dataclass(frozen=True)
class KindSpec:
    name: str
    lua: bool = False  # has source / modules / imports
    needs_method: bool = False
    validate: Validator | None = None
    supported: bool = True  # False: loads and validates, but has no provider yet
    description: str = ""


KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> None:
    KINDS[spec.name] = spec


def _require_ref(field: str, kinds: tuple[str, ...]) -> Validator:
    def check(entry: Entry, registry: Registry, report: Callable[[str | None, str], None]) -> None:
        ref = entry.data.get(field)
        if not isinstance(ref, str) or not ref:
            report(field, f"is required and must be an entry ID ({' or '.join(kinds)})")
            return
        target = registry.get(entry.resolve(ref))
        if target is None:
            report(field, f"refers to {entry.resolve(ref)}, which does not exist")
        elif target.kind not in kinds:
            report(field, f"refers to {target.id}, a {target.kind} entry; expected {' or '.join(kinds)}")

    return check


def _all(*validators: Validator) -> Validator:
    def check(entry: Entry, registry: Registry, report: Callable[[str | None, str], None]) -> None:
        for v in validators:
            v(entry, registry, report)

    return check


def _store(entry: Entry, registry: Registry, report: Callable[[str | None, str], None]) -> None:
    store = entry.data.get("store")
    if store is not None and not isinstance(store, str):
        report("store", "must be a file path or \":memory:\"")


for _spec in (
    KindSpec("function.lua", lua=True, needs_method=True, description="stateless Lua function"),
    KindSpec("process.lua", lua=True, needs_method=True, description="Lua actor"),
    KindSpec("workflow.lua", lua=True, needs_method=True, description="durable Lua workflow"),
    KindSpec("library.lua", lua=True, description="importable Lua library"),
    KindSpec("process.host", supported=False, description="in-memory process host"),
    KindSpec(
        "process.service",
        validate=_all(_require_ref("process", ("process.lua",)), _require_ref("host", ("process.host", "workflow.host", "temporal.worker"))),
        supported=False,
        description="supervised process",
    ),
    KindSpec("workflow.host", validate=_store, supported=False, description="embedded durable workflow host"),
    KindSpec("temporal.client", supported=False, description="Temporal server connection"),
    KindSpec(
        "temporal.worker",
        validate=_require_ref("client", ("temporal.client",)),
        supported=False,
        description="Temporal worker",
    ),
    KindSpec("registry.entry", description="plain data entry"),
):
    register_kind(_spec)


def known_kinds() -> str:
    return ", ".join(sorted(KINDS))


__all__ = ["KINDS", "KindSpec", "Problem", "register_kind", "known_kinds"]
