"""The registry: entries loaded from a project's YAML files, validated."""

from wippy.registry.entry import Entry, Registry
from wippy.registry.kinds import KINDS, KindSpec, register_kind
from wippy.registry.loader import load_project

__all__ = ["Entry", "KINDS", "KindSpec", "Registry", "load_project", "register_kind"]
