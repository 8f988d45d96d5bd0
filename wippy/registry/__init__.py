"""The registry: entries loaded from a project's YAML files, validated."""

from wippy.durations import DurationError, parse_duration
from wippy.registry.entry import Entry, Registry
from wippy.registry.kinds import KINDS, KindSpec, claim_prefix, lookup_kind, register_kind
from wippy.registry.loader import load_project

__all__ = [
    "DurationError",
    "Entry",
    "KINDS",
    "KindSpec",
    "Registry",
    "claim_prefix",
    "load_project",
    "lookup_kind",
    "parse_duration",
    "register_kind",
]
