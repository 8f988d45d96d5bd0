"""Entries and the registry that holds them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wippy.errors import Problem


@dataclass
class Entry:
    """One registry entry. ``data`` holds every field as written in YAML."""

    namespace: str
    name: str
    kind: str
    file: Path
    data: dict[str, Any]
    source: str | None = None  # Lua source text, for Lua kinds
    source_path: Path | None = None
    # Where the type annotations of a typed-Lua source were (``source`` is then the plain
    # Lua the front end made of it, same lines and columns); None for plain Lua.
    annotations: list[Any] | None = None
    line: int | None = None  # YAML line where the entry starts, for problem locations
    field_lines: dict[str, int] = field(default_factory=dict, repr=False)  # "a.b" -> YAML line

    @property
    def id(self) -> str:
        return f"{self.namespace}:{self.name}"

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.data.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def lifecycle(self) -> dict[str, Any]:
        lc = self.data.get("lifecycle")
        return lc if isinstance(lc, dict) else {}

    @property
    def method(self) -> str | None:
        return self.data.get("method")

    @property
    def modules(self) -> list[str]:
        mods = self.data.get("modules")
        return list(mods) if isinstance(mods, list) else []

    @property
    def imports(self) -> dict[str, str]:
        """``alias -> entry ID``, relative names resolved against this namespace."""
        imports = self.data.get("imports")
        if not isinstance(imports, dict):
            return {}
        return {str(k): self.resolve(v) for k, v in imports.items() if isinstance(v, str) and v}

    @property
    def dependencies(self) -> list[str]:
        """Entry IDs from ``lifecycle.requires`` and its legacy alias ``lifecycle.depends_on``,
        resolved and without repeats: what must be running before this entry starts."""
        out: list[str] = []
        for key in ("requires", "depends_on"):
            deps = self.lifecycle.get(key)
            if isinstance(deps, list):
                out += [self.resolve(d) for d in deps if isinstance(d, str) and d]
        return list(dict.fromkeys(out))

    def resolve(self, ref: str) -> str:
        """An entry reference as a full ID (``name`` means ``<this namespace>:name``)."""
        return ref if ":" in ref else f"{self.namespace}:{ref}"

    def line_of(self, field_path: str | None) -> int | None:
        """The YAML line of a (dotted) field, or of its nearest enclosing field, or of the entry."""
        parts = field_path.split(".") if field_path else []
        while parts:
            line = self.field_lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return self.line

    def __repr__(self) -> str:
        return f"<Entry {self.id} ({self.kind})>"


@dataclass
class Registry:
    """Entries of a project by ID, in load order."""

    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    # IDs declared but rejected (e.g. unknown kind): references to them are not reported
    # again as "does not exist", which would only repeat the first problem.
    broken: set[str] = field(default_factory=set)
    # Things `wippy check` reports that do not stop the project from loading (an upstream
    # module this runtime does not provide, a field without effect here).
    warnings: list[Problem] = field(default_factory=list)

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def of_kind(self, *kinds: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.kind in kinds]
