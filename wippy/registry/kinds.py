"""The table of entry kinds the loader accepts.

A table, not an if-chain. The registry itself knows only the kinds that are plain data to
it (Lua entries, ``registry.entry``); every kind that *runs* -- hosts, services -- comes
from a plugin: an object in the entry-point group ``wippy.providers`` that is a
:class:`KindSpec` (or an iterable of them), the built-in providers included. Plugins may
also claim dot-prefixes (``claim_prefix("myplugin", factory)`` accepts every
``myplugin.*`` kind). Code that already holds a loaded entry may index ``KINDS`` directly:
a kind produced by a claimed prefix is added to ``KINDS`` when first looked up.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from wippy.errors import Problem
from wippy.registry.entry import Entry, Registry
from wippy.registry.schema import Field, lua_fields

Report = Callable[[str | None, str], None]
# validate(entry, registry, report) checks kind-specific fields; report(field, message).
Validator = Callable[[Entry, Registry, Report], None]


log = logging.getLogger("wippy.registry")

PLUGIN_GROUP = "wippy.providers"

# What an entry of a kind is to the runtime.
LUA = "lua"  # Lua code: function.lua, process.lua, workflow.lua, library.lua
HOST = "host"  # runs actors (a provider): spawn targets, process.service hosts
SERVICE = "service"  # started and stopped by the lifecycle, but runs no actors
DATA = "data"  # configuration only


@dataclass(frozen=True)
class KindSpec:
    """One entry kind: how to validate it and, for kinds that run, how to start it."""

    name: str
    role: str = DATA
    lua: bool = False  # has source / modules / imports
    needs_method: bool = False
    validate: Validator | None = None
    description: str = ""
    # The kind's YAML fields (wippy.registry.schema): `wippy check` reports unknown and
    # mistyped ones. None: not declared (not checked that way).
    fields: Mapping[str, Field] | None = None
    # Fields naming entries that must be running before this one starts (a service's
    # host): lifecycle ordering and the load-time cycle check both follow them.
    starts_after: tuple[str, ...] = ()
    # factory(kernel, entry) -> an object with ``async start()`` and ``async stop(timeout)``.
    factory: Callable[[Any, Entry], Any] | None = None
    # admin(entry, registry) -> the provider's workflow admin (``wippy workflows``), if any.
    admin: Callable[[Entry, Registry], Any] | None = None
    # Modules that must be importable to start this kind, and how to install them.
    requires: tuple[str, ...] = ()
    install: str = ""
    distribution: str = ""  # the installed package that provides the kind (set on discovery)

    @property
    def startable(self) -> bool:
        return self.factory is not None

    def missing(self) -> str | None:
        """Why this kind cannot start here (a required package is not installed), or None."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                hint = f": {self.install}" if self.install else ""
                return f"{self.name} entries need the Python package '{module}', which is not installed{hint}"
        return None


# kind name -> spec; a plugin's factory gets the full kind name and returns a spec,
# or None when it does not provide that kind after all.
SpecFactory = Callable[[str], "KindSpec | None"]

KINDS: dict[str, KindSpec] = {}
_PREFIXES: dict[str, SpecFactory] = {}
_FROM_PREFIX: dict[str, str] = {}  # kind -> the prefix whose factory made it


_CONFLICTS: dict[str, str] = {}  # kind -> why it cannot be used (two packages claim it)
_plugins_loaded = False


def register_kind(spec: KindSpec) -> None:
    """Add or replace a kind (tests and embedders; installed plugins use the entry point)."""
    KINDS[spec.name] = spec
    _CONFLICTS.pop(spec.name, None)


def _describe_source(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "an unknown package"
    return f"{dist} ({ep.value})"


def _specs_of(obj: Any, ep: EntryPoint) -> list[KindSpec]:
    items = [obj] if isinstance(obj, KindSpec) else list(obj) if isinstance(obj, Iterable) else [obj]
    bad = [x for x in items if not isinstance(x, KindSpec)]
    if bad:
        raise TypeError(f"entry point {ep.name} = {ep.value} gave {bad[0]!r}, not a KindSpec")
    return items


def load_plugins() -> None:
    """Register every kind from the ``wippy.providers`` entry points (once per process).

    Two packages claiming one kind is not resolved by load order: the kind is marked
    conflicted and an entry using it fails to load with a message naming both."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    claimed: dict[str, str] = {}
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name)):
        try:
            specs = _specs_of(ep.load(), ep)
        except Exception as exc:  # one broken plugin must not take the others down
            log.error("wippy plugin %s failed to load: %s", _describe_source(ep), exc)
            continue
        source = _describe_source(ep)
        for spec in specs:
            spec = replace(spec, distribution=ep.dist.name if ep.dist is not None else "")
            other = claimed.get(spec.name)
            if other is not None and other != source:
                _CONFLICTS[spec.name] = (f"kind '{spec.name}' is provided by two installed packages, "
                                         f"{other} and {source}; uninstall one of them")
                continue
            claimed[spec.name] = source
            KINDS[spec.name] = spec


def conflict(kind: str) -> str | None:
    """Why ``kind`` cannot be used (two plugins claim it), or None."""
    return _CONFLICTS.get(kind)


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
    load_plugins()
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
    load_plugins()
    names = sorted(k for k in KINDS if k not in _FROM_PREFIX)
    return ", ".join(names + claimed_prefixes())


# Built-in validators -------------------------------------------------------------------
def require_ref(field: str, kinds: tuple[str, ...] = (), role: str | None = None) -> Validator:
    """A validator: ``field`` must name an existing entry (relative names allowed) of one of
    ``kinds``, or of a kind with ``role`` (messages list the kinds known to have it)."""

    def check(entry: Entry, registry: Registry, report: Report) -> None:
        with_role = sorted(k for k, s in KINDS.items() if s.role == role) if role is not None else []
        expected = " or ".join([*kinds, *with_role])
        ref = entry.data.get(field)
        if not isinstance(ref, str) or not ref:
            report(field, f"is required and must be an entry ID ({expected})")
            return
        target_id = entry.resolve(ref)
        target = registry.get(target_id)
        if target is None:
            if target_id not in registry.broken:
                report(field, f"refers to {target_id}, which does not exist")
            return
        spec = lookup_kind(target.kind)
        if target.kind in kinds or (role is not None and spec is not None and spec.role == role):
            return
        report(field, f"refers to {target.id}, a {target.kind} entry; expected {expected}")

    return check


def all_of(*validators: Validator) -> Validator:
    def check(entry: Entry, registry: Registry, report: Report) -> None:
        for v in validators:
            v(entry, registry, report)

    return check


for _spec in (
    KindSpec("function.lua", role=LUA, lua=True, needs_method=True, description="stateless Lua function",
             fields=lua_fields(method=True)),
    KindSpec("process.lua", role=LUA, lua=True, needs_method=True, description="Lua actor",
             fields=lua_fields(method=True)),
    KindSpec("workflow.lua", role=LUA, lua=True, needs_method=True, description="durable Lua workflow",
             fields=lua_fields(method=True)),
    KindSpec("library.lua", role=LUA, lua=True, description="importable Lua library", fields=lua_fields(method=False)),
    KindSpec("registry.entry", description="plain data entry"),  # free-form data
):
    register_kind(_spec)


__all__ = [
    "DATA",
    "HOST",
    "KINDS",
    "LUA",
    "SERVICE",
    "KindSpec",
    "Problem",
    "Validator",
    "all_of",
    "conflict",
    "load_plugins",
    "require_ref",
    "SpecFactory",
    "claim_prefix",
    "claimed_prefixes",
    "known_kinds",
    "lookup_kind",
    "register_kind",
    "release_prefix",
]
