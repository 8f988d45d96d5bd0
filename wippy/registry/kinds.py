"""The table of entry kinds the loader accepts.

A table, not an if-chain: providers register kinds and plugins claim dot-prefixes
(``claim_prefix("myplugin", factory)`` accepts every ``myplugin.*`` kind) without the
loader knowing about them. Code that already holds a loaded entry may index ``KINDS``
directly: a kind produced by a claimed prefix is added to ``KINDS`` when first looked up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from wippy.errors import Problem
from wippy.registry.entry import Entry, Registry

Report = Callable[[str | None, str], None]
# validate(entry, registry, report) checks kind-specific fields; report(field, message).
Validator = Callable[[Entry, Registry, Report], None]


@dataclass(frozen=True)
class KindSpec:
    name: str
    lua: bool = False  # has source / modules / imports
    needs_method: bool = False
    validate: Validator | None = None
    supported: bool = True  # False: loads and validates, but has no provider yet
    description: str = ""
    # Fields naming entries that must be running before this one starts (a service's
    # host): lifecycle ordering and the load-time cycle check both follow them.
    starts_after: tuple[str, ...] = ()


# kind name -> spec; a plugin's factory gets the full kind name and returns a spec,
# or None when it does not provide that kind after all.
SpecFactory = Callable[[str], "KindSpec | None"]

KINDS: dict[str, KindSpec] = {}
_PREFIXES: dict[str, SpecFactory] = {}
_FROM_PREFIX: dict[str, str] = {}  # kind -> the prefix whose factory made it


def register_kind(spec: KindSpec) -> None:
    """Add or replace a kind (a provider re-registers a kind to mark it supported)."""
    KINDS[spec.name] = spec


def _normalize_prefix(prefix: str) -> str:
    norm = prefix.strip().removesuffix("*").removesuffix(".")
    if not norm or "*" in norm or ":" in norm:
        raise ValueError(f"invalid kind prefix {prefix!r}: expected e.g. 'myplugin' or 'myplugin.*'")
    return norm + "."


def claim_prefix(prefix: str, spec_factory: SpecFactory) -> None:
    """Route every kind ``<prefix>.*`` not registered by name to ``spec_factory``.

    Exactly registered kinds still win; among claims the longest prefix wins. Claiming a
    prefix another factory holds is an error, so two plugins cannot silently fight."""
    norm = _normalize_prefix(prefix)
    held = _PREFIXES.get(norm)
    if held is not None and held is not spec_factory:
        raise ValueError(f"kind prefix '{norm}*' is already claimed")
    _PREFIXES[norm] = spec_factory


def release_prefix(prefix: str) -> None:
    """Undo :func:`claim_prefix`, forgetting the kinds its factory produced (plugin unload, tests)."""
    norm = _normalize_prefix(prefix)
    _PREFIXES.pop(norm, None)
    for kind in [k for k, p in _FROM_PREFIX.items() if p == norm]:
        del _FROM_PREFIX[kind]
        KINDS.pop(kind, None)


def claimed_prefixes() -> list[str]:
    return sorted(f"{p}*" for p in _PREFIXES)


def lookup_kind(kind: str) -> KindSpec | None:
    """The spec for ``kind``: registered by name, else from the longest claimed prefix."""
    spec = KINDS.get(kind)
    if spec is not None:
        return spec
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if kind.startswith(prefix) and len(kind) > len(prefix):
            made = _PREFIXES[prefix](kind)
            if made is None:
                return None
            if made.name != kind:
                made = replace(made, name=kind)
            KINDS[kind] = made
            _FROM_PREFIX[kind] = prefix
            return made
    return None


def known_kinds() -> str:
    """Kinds and claimed prefixes, for "unknown kind" messages."""
    names = sorted(k for k in KINDS if k not in _FROM_PREFIX)
    return ", ".join(names + claimed_prefixes())


# Built-in validators -------------------------------------------------------------------
def _require_ref(field: str, kinds: tuple[str, ...]) -> Validator:
    """``field`` must name an existing entry of one of ``kinds`` (relative names allowed)."""

    def check(entry: Entry, registry: Registry, report: Report) -> None:
        ref = entry.data.get(field)
        if not isinstance(ref, str) or not ref:
            report(field, f"is required and must be an entry ID ({' or '.join(kinds)})")
            return
        target_id = entry.resolve(ref)
        target = registry.get(target_id)
        if target is None:
            if target_id not in registry.broken:
                report(field, f"refers to {target_id}, which does not exist")
        elif target.kind not in kinds:
            report(field, f"refers to {target.id}, a {target.kind} entry; expected {' or '.join(kinds)}")

    return check


def _all(*validators: Validator) -> Validator:
    def check(entry: Entry, registry: Registry, report: Report) -> None:
        for v in validators:
            v(entry, registry, report)

    return check


def _temporal_client(entry: Entry, registry: Registry, report: Callable[[str | None, str], None]) -> None:
    """Check the connection settings at load time (``wippy check``), not first at start."""
    from wippy.errors import WippyError
    from wippy.providers.temporal.client import ClientSettings

    try:
        ClientSettings(entry, registry.root)
    except WippyError as err:
        if "environment variable" in err.message:
            return  # secrets may exist only where the runtime runs: checked at start
        prefix = f"{entry.id}: "
        report(None, err.message[len(prefix):] if err.message.startswith(prefix) else err.message)


def _store(entry: Entry, registry: Registry, report: Report) -> None:
    store = entry.data.get("store")
    if store is not None and not isinstance(store, str):
        report("store", "must be a file path or \":memory:\"")


for _spec in (
    KindSpec("function.lua", lua=True, needs_method=True, description="stateless Lua function"),
    KindSpec("process.lua", lua=True, needs_method=True, description="Lua actor"),
    KindSpec("workflow.lua", lua=True, needs_method=True, description="durable Lua workflow"),
    KindSpec("library.lua", lua=True, description="importable Lua library"),
    KindSpec("process.host", description="in-memory process host"),
    KindSpec(
        "process.service",
        validate=_all(
            _require_ref("process", ("process.lua",)),
            _require_ref("host", ("process.host", "workflow.host", "temporal.worker")),
        ),
        description="supervised process",
        starts_after=("host",),
    ),
    KindSpec("workflow.host", validate=_store, supported=False, description="embedded durable workflow host"),
    KindSpec("temporal.client", validate=_temporal_client, description="Temporal server connection"),
    KindSpec(
        "temporal.worker",
        validate=_require_ref("client", ("temporal.client",)),
        supported=False,
        description="Temporal worker",
        starts_after=("client",),
    ),
    KindSpec("registry.entry", description="plain data entry"),
):
    register_kind(_spec)


__all__ = [
    "KINDS",
    "KindSpec",
    "Problem",
    "SpecFactory",
    "claim_prefix",
    "claimed_prefixes",
    "known_kinds",
    "lookup_kind",
    "register_kind",
    "release_prefix",
]
