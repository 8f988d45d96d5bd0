"""The environment system: variables (``env.variable`` entries) read and written through
storages (``env.storage.*`` entries), and ``${env:NAME}`` placeholders in entry data.

The kinds themselves are plugins (``wippy.providers.env``): each is an
:class:`EnvKindSpec` whose ``open(entry, storage)`` makes the entry's
:class:`EnvStorage` or :class:`EnvVariable`. This module is the part every layer shares:
the ``env`` Lua module's handlers and the lifecycle (placeholders) use :class:`EnvSystem`.

Lookup follows upstream: a name is a variable's public name (its ``variable`` field), else
an entry ID (a bare name is tried in the caller's namespace). The storage key of a
variable is its public name, or its entry ID when it has none. An empty value counts as
unset: the variable's ``default`` then, else NOT_FOUND.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from wippy.errors import INVALID, NOT_FOUND, PERMISSION_DENIED, WippyError
from wippy.registry.entry import Entry, Registry
from wippy.registry.kinds import KindSpec, lookup_kind

log = logging.getLogger("wippy.env")

VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_]*$")


class EnvStorage(Protocol):
    """Where variable values live. ``get`` answers None for a key that is not set;
    ``set``/``delete`` raise PERMISSION_DENIED on a read-only storage."""

    readonly: bool

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, str]]: ...


@dataclass(frozen=True)
class EnvVariable:
    """One ``env.variable`` entry."""

    entry_id: str
    name: str  # public name; "" when the variable is reachable only by its entry ID
    storage: str  # the storage's entry ID
    default: str | None = None
    readonly: bool = False

    @property
    def key(self) -> str:
        """The key the value is kept under in its storage."""
        return self.name or self.entry_id


# open(entry, storage_of) -> the entry's storage or variable; storage_of(id) opens another
# storage (a router needs the ones it chains).
Opener = Callable[[Entry, Callable[[str], EnvStorage]], "EnvStorage | EnvVariable"]


@dataclass(frozen=True)
class EnvKindSpec(KindSpec):
    """An env kind (data to the lifecycle: nothing starts). ``open`` builds what the
    environment system uses of an entry."""

    open: Opener | None = None
    variable: bool = False  # the kind declares variables (else storages)


def read_only_error(what: str) -> WippyError:
    return WippyError(PERMISSION_DENIED, f"{what} is read-only", retryable=False)


class EnvSystem:
    """The variables and storages of one registry. Storages are opened on first use and
    keep their state (a memory storage) for the life of this object."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._storages: dict[str, EnvStorage] = {}
        self._opening: set[str] = set()
        self._variables: dict[str, EnvVariable] | None = None  # by entry ID
        self._by_name: dict[str, EnvVariable] = {}

    def refresh(self) -> None:
        """The registry's entries changed: read the variables again (storages keep their
        values; a storage entry that is gone is dropped)."""
        self._variables = None
        self._by_name = {}
        for storage_id in [s for s in self._storages if s not in self.registry.entries]:
            del self._storages[storage_id]

    # Entries ---------------------------------------------------------------------------
    def _spec(self, entry: Entry) -> EnvKindSpec | None:
        spec = lookup_kind(entry.kind)
        return spec if isinstance(spec, EnvKindSpec) and spec.open is not None else None

    def storage(self, storage_id: str) -> EnvStorage:
        """The storage entry ``storage_id``, opened (NOT_FOUND if there is none)."""
        got = self._storages.get(storage_id)
        if got is not None:
            return got
        entry = self.registry.get(storage_id)
        spec = self._spec(entry) if entry is not None else None
        if entry is None or spec is None or spec.open is None or spec.variable:
            raise WippyError(NOT_FOUND, f"environment storage not found: {storage_id}", retryable=False)
        if storage_id in self._opening:
            raise WippyError(INVALID, f"environment storage {storage_id} routes to itself", retryable=False)
        self._opening.add(storage_id)
        try:
            made = spec.open(entry, self.storage)
        finally:
            self._opening.discard(storage_id)
        if isinstance(made, EnvVariable):  # a plugin's opener that is not a storage
            raise WippyError(NOT_FOUND, f"environment storage not found: {storage_id}", retryable=False)
        self._storages[storage_id] = made
        return made

    def storage_ids(self) -> list[str]:
        """Every storage entry, in registry order."""
        return [e.id for e in self.registry if (s := self._spec(e)) is not None and not s.variable]

    def variables(self) -> dict[str, EnvVariable]:
        if self._variables is None:
            self._variables = {}
            for entry in self.registry:
                spec = self._spec(entry)
                if spec is None or not spec.variable:
                    continue
                assert spec.open is not None
                var = spec.open(entry, self.storage)
                if not isinstance(var, EnvVariable):
                    continue
                self._variables[entry.id] = var
                if var.name:
                    first = self._by_name.setdefault(var.name, var)
                    if first is not var:
                        log.warning("env variable name %s is declared by %s and %s; %s is ignored",
                                    var.name, first.entry_id, var.entry_id, var.entry_id)
        return self._variables

    def variable(self, name: str, namespace: str | None = None) -> EnvVariable:
        """The variable a Lua name means: public name, else entry ID (a bare name in
        ``namespace`` first)."""
        variables = self.variables()
        var = self._by_name.get(name)
        if var is None:
            if ":" in name:
                var = variables.get(name)
            elif namespace is not None:
                var = variables.get(f"{namespace}:{name}")
        if var is None:
            raise WippyError(NOT_FOUND, f"environment variable not found: {name}", retryable=False)
        return var

    # Values ----------------------------------------------------------------------------
    def lookup(self, name: str, namespace: str | None = None) -> str | None:
        """The value of a variable, its default when unset, or None when it has neither
        (NOT_FOUND if no such variable)."""
        var = self.variable(name, namespace)
        value = self.storage(var.storage).get(var.key)
        if value:
            return value
        return var.default or None

    def get(self, name: str, namespace: str | None = None) -> str:
        value = self.lookup(name, namespace)
        if value is None:
            raise WippyError(NOT_FOUND, f"environment variable not found: {name} (not set, no default)",
                             retryable=False)
        return value

    def set(self, name: str, value: str, namespace: str | None = None) -> None:
        var = self.variable(name, namespace)
        if var.readonly:
            raise read_only_error(f"environment variable {name}")
        storage = self.storage(var.storage)
        if storage.readonly:
            raise read_only_error(f"storage {var.storage} of environment variable {name}")
        storage.set(var.key, value)

    def get_all(self) -> dict[str, str]:
        """What every storage holds (upstream's ``env.get_all``): storages in registry order,
        the first one holding a key wins."""
        out: dict[str, str] = {}
        for storage_id in self.storage_ids():
            for key, value in self.storage(storage_id).items():
                out.setdefault(key, value)
        return out

    # Placeholders ------------------------------------------------------------------------
    def placeholder_value(self, name: str, namespace: str | None = None) -> str | None:
        """What ``${env:NAME}`` stands for: the registered variable's value or default;
        for a name that is no registered variable, the process environment's value (a
        convenience: upstream accepts only registered variables)."""
        try:
            return self.lookup(name, namespace)
        except WippyError as err:
            if err.kind != NOT_FOUND:
                raise
        return os.environ.get(name) or None


# --------------------------------------------------------------------------------------
# ${env:NAME} placeholders
# --------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(
    r"\$\$\{"  # $${ : a literal ${
    r"|\$\{env:(?P<name>[^}|]+)(?:\|(?P<default>[^}]*))?\}"  # ${env:NAME} / ${env:NAME|default}
    r"|\$\{(?P<short>[A-Z0-9_]+)\|(?P<sdefault>[^}]*)\}"  # ${NAME|default}
)

Lookup = Callable[[str], "str | None"]


def has_placeholders(data: Any) -> bool:
    """Whether any string inside ``data`` contains ``${`` (a cheap check before resolving)."""
    if isinstance(data, str):
        return "${" in data
    if isinstance(data, Mapping):
        return any(has_placeholders(v) for v in data.values())
    if isinstance(data, list):
        return any(has_placeholders(v) for v in data)
    return False


def _typed(value: str, default: str) -> Any:
    """``value`` as the type of the inline ``default`` (bool, int, float), else text."""
    low = default.strip().lower()
    try:
        if low in ("true", "false"):
            v = value.strip().lower()
            if v not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return v in ("true", "1")
        if re.fullmatch(r"[+-]?\d+", default.strip()):
            return int(value.strip())
        if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", default.strip()):
            return float(value.strip())
    except ValueError:
        raise WippyError(INVALID, f"value {value!r} is not of the type of its default {default!r}",
                         retryable=False) from None
    return value


def resolve_string(text: str, lookup: Callable[..., str | None]) -> Any:
    """One string with its placeholders resolved; a string that is exactly one placeholder
    with a typed inline default gets that type."""
    whole = _PLACEHOLDER.fullmatch(text)
    if whole is not None and whole.group(0) != "$${":
        value, default = _resolve(whole, lookup)
        return _typed(value, default) if default is not None else value
    return _PLACEHOLDER.sub(lambda m: "${" if m.group(0) == "$${" else _resolve(m, lookup)[0], text)


def _resolve(m: re.Match[str], lookup: Callable[..., str | None]) -> tuple[str, str | None]:
    name = m.group("name") or m.group("short")
    default = m.group("default") if m.group("name") else m.group("sdefault")
    try:
        value = lookup(name.strip())
    except WippyError as err:
        if err.kind != NOT_FOUND:
            raise
        value = None
    if value is None:
        if default is None:
            raise WippyError(INVALID, f"environment variable {name} is not set (and the placeholder has no "
                             "default)", retryable=False)
        return default, default
    return value, default


def resolve_placeholders(data: Any, lookup: Callable[..., str | None], where: str = "") -> Any:
    """A copy of ``data`` with the placeholders of every string resolved through
    ``lookup(name) -> value | None`` (None: unset). Raises WippyError naming the field."""
    if isinstance(data, str):
        if "${" not in data:
            return data
        try:
            return resolve_string(data, lookup)
        except WippyError as err:
            raise WippyError(err.kind, f"{where}: {err.message}" if where else err.message,
                             retryable=False) from None
    if isinstance(data, Mapping):
        return {k: resolve_placeholders(v, lookup, f"{where}.{k}" if where else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_placeholders(v, lookup, f"{where}[{i}]") for i, v in enumerate(data)]
    return data


def resolved_entry(env: EnvSystem, entry: Entry) -> Entry:
    """``entry`` with placeholders in its data resolved (``meta`` keeps its text); the
    same object when it has none."""
    data = {k: v for k, v in entry.data.items() if k != "meta"}
    if not has_placeholders(data):
        return entry
    resolved = resolve_placeholders(data, lambda name: env.placeholder_value(name, entry.namespace))
    if "meta" in entry.data:
        resolved["meta"] = entry.data["meta"]
    return replace(entry, data=resolved)


__all__ = [
    "EnvKindSpec",
    "EnvStorage",
    "EnvSystem",
    "EnvVariable",
    "VARIABLE_NAME",
    "has_placeholders",
    "read_only_error",
    "resolve_placeholders",
    "resolved_entry",
]
