"""Entries and the registry that holds them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
        return {str(k): self.resolve(str(v)) for k, v in imports.items()}

    def resolve(self, ref: str) -> str:
        """An entry reference as a full ID (``name`` means ``<this namespace>:name``)."""
        return ref if ":" in ref else f"{self.namespace}:{ref}"

    def __repr__(self) -> str:
        return f"<Entry {self.id} ({self.kind})>"


@dataclass
class Registry:
    """Entries of a project by ID, in load order."""

    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(entry_id)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def of_kind(self, *kinds: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.kind in kinds]
