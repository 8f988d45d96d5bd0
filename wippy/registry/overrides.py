"""Entry overrides: ``-o namespace:entry:path=value`` on the command line and the
``override:`` map of ``.wippy.yaml``, as upstream Wippy has them.

A path names what to set in the entry:

- ``kind``: the entry's kind (a non-empty string);
- ``meta.<a.b>``: a field of its ``meta``;
- ``data.<a.b>`` or a bare ``<a.b>``: a field of its data (``addr``, ``lifecycle.auto_start``).

Mappings on the way are created. Replacing the whole ``meta`` or ``data`` is an error, and
so is an override of an entry that does not exist (the loader reports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_INT = re.compile(r"-?(0|[1-9][0-9]*)")
# Where a comma starts another override ("-o a:b:c=1,a:b:d=2"); other commas are part of
# the value ("-o app:gw:addr=x,y" sets "x,y").
_NEXT = re.compile(r",(?=[^,=:\s]+:[^,=:\s]+:[^,=\s]+=)")


class OverrideError(ValueError):
    """A malformed override (the message says what is wrong)."""


@dataclass(frozen=True)
class Override:
    entry: str  # namespace:name
    path: str  # as given, without a leading "."
    value: Any
    origin: str  # where it was given, for messages: "--override" or ".wippy.yaml"

    @property
    def text(self) -> str:
        return f"{self.entry}:{self.path}"

    def target(self) -> tuple[str, list[str]]:
        """``("kind", [])``, ``("meta", keys)`` or ``("data", keys)``."""
        head, _, rest = self.path.partition(".")
        if self.path == "kind":
            return "kind", []
        if head in ("meta", "data"):
            return head, rest.split(".")
        return "data", self.path.split(".")

    @property
    def field(self) -> str:
        """The field as problems name it (entry data holds ``meta`` too)."""
        where, keys = self.target()
        return "kind" if where == "kind" else ".".join(["meta", *keys] if where == "meta" else keys)


def coerce(text: str) -> Any:
    """A command-line value as upstream reads it: true/false (any case) are booleans, an
    integer that reads back the same (so not ``007``) is an integer, text with ``.``, ``e``
    or ``E`` that parses as a number is a float; anything else stays the text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if any(c in text for c in ".eE"):
        try:
            return float(text)
        except ValueError:
            pass
    return text


def split(values: list[str]) -> list[str]:
    """``-o`` values with several overrides in one (comma-separated) split apart."""
    out: list[str] = []
    for value in values:
        out.extend(_NEXT.split(value))
    return out


def make(key: str, value: Any, origin: str) -> Override:
    """An override of ``key`` (``namespace:entry:path``); raises :class:`OverrideError`."""
    namespace, sep, rest = key.partition(":")
    name, sep2, path = rest.partition(":")
    path = path.removeprefix(".")
    if not (sep and sep2 and namespace and name and path):
        raise OverrideError(f"{key!r}: expected namespace:entry:path (e.g. app:gateway:addr)")
    if any(not part for part in path.split(".")):
        raise OverrideError(f"{key!r}: the path {path!r} has an empty part")
    override = Override(f"{namespace}:{name}", path, value, origin)
    where, keys = override.target()
    if where != "kind" and keys == [""]:
        raise OverrideError(f"{key!r}: cannot replace the whole {where}; name a field in it ({where}.field)")
    if where == "data" and keys[0] in ("name", "kind", "meta"):
        what = "an entry cannot be renamed" if keys[0] == "name" else f"use {keys[0]} instead of data.{keys[0]}"
        raise OverrideError(f"{key!r}: {what}")
    if where == "kind" and (not isinstance(value, str) or not value):
        raise OverrideError(f"{key!r}: the kind must be a non-empty string")
    return override


def parse(text: str, origin: str = "--override") -> Override:
    """``namespace:entry:path=value`` from the command line (value coerced by :func:`coerce`)."""
    key, sep, value = text.partition("=")
    if not sep:
        raise OverrideError(f"{text!r}: expected namespace:entry:path=value")
    return make(key.strip(), coerce(value), origin)


def apply(item: dict[str, Any], override: Override) -> str | None:
    """Set the override in ``item`` (an entry as read from YAML: name, kind, meta, fields);
    returns why it cannot be set, or None."""
    where, keys = override.target()
    if where == "kind":
        item["kind"] = override.value
        return None
    node: Any = item
    walked: list[str] = []
    for key in (["meta"] if where == "meta" else []) + keys[:-1]:
        walked.append(key)
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            return f"cannot set {override.field}: {'.'.join(walked)} is {_a(child)}, not a mapping"
        node = child
    node[keys[-1]] = override.value
    return None


def _a(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


__all__ = ["Override", "OverrideError", "apply", "coerce", "make", "parse", "split"]
