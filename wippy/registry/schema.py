"""Declared YAML fields of an entry kind, so ``wippy check`` can report unknown and mistyped
fields (with a "did you mean") for every kind, not only the ones with hand-written checks.

A kind declares ``KindSpec.fields``: field name -> :class:`Field`. ``name``, ``kind``,
``meta`` and ``lifecycle`` are common to every kind and need not be declared. A kind
without declared fields is not checked this way (a third-party kind may skip it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wippy.durations import DurationError, parse_duration

Report = Callable[[str | None, str], None]
# warn(field, message): something that is not an error (the project still loads).
Warn = Callable[[str | None, str], None]

# Field types and the YAML values they accept.
STRING, INT, NUMBER, BOOL, DURATION = "string", "integer", "number", "boolean", "duration"
LIST, MAP, ANY, ENTRY = "list", "mapping", "any", "entry ID"


@dataclass(frozen=True)
class Field:
    """One YAML field: its type, whether it is required, the allowed values, and for a
    mapping the fields inside it (None: any keys) or for a list the type of its items."""

    type: str = ANY
    required: bool = False
    choices: tuple[Any, ...] = ()
    fields: Mapping[str, Field] | None = None
    items: str | None = None  # for LIST: the type of every item
    values: str | None = None  # for MAP without declared fields: the type of every value
    doc: str = ""
    # Other types the field also accepts (``tls: true`` or ``tls: {ca_file: ...}``).
    also: tuple[str, ...] = ()
    # Accepted (an upstream field) but without effect in this runtime: why, shown as a
    # warning by ``wippy check``. Empty: the field works.
    ignored: str = ""


def _type_ok(kind: str, value: Any) -> bool:
    if kind == ANY:
        return True
    if kind in (STRING, ENTRY):
        return isinstance(value, str) and (kind == STRING or bool(value))
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == DURATION:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value >= 0
        if not isinstance(value, str):
            return False
        try:
            parse_duration(value)
        except DurationError:
            return False
        return True
    if kind == LIST:
        return isinstance(value, list)
    if kind == MAP:
        return isinstance(value, Mapping)
    raise ValueError(f"unknown field type {kind!r}")


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"{value!r} (a string)" if len(value) < 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


describe_value = _describe  # "5 (a number)", "'x' (a string)": a YAML value in a message


def _expected_type(kind: str) -> str:
    if kind == DURATION:
        return 'a duration such as "5s" or "250ms"'
    if kind == ENTRY:
        return "an entry ID such as app:name"
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind}"


def _expected(spec: Field) -> str:
    return " or ".join(_expected_type(k) for k in (spec.type, *spec.also))


def suggest(name: str, known: Any) -> str:
    """' (did you mean X?)' for the closest of ``known``, or ''."""
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_fields(data: Mapping[str, Any], fields: Mapping[str, Field], report: Report,
                 prefix: str = "", skip: tuple[str, ...] = (), warn: Warn | None = None) -> None:
    """Report unknown, missing and mistyped fields of ``data`` against ``fields``; fields
    declared ``ignored`` go to ``warn`` (when given)."""
    for key, value in data.items():
        name = str(key)
        if name in skip:
            continue
        spec = fields.get(name)
        where = prefix + name
        if spec is None:
            report(where, "is not a field of this kind" + suggest(name, list(fields) + list(skip)))
            continue
        check_value(value, spec, where, report, warn)
    for name, spec in fields.items():
        if spec.required and name not in data:
            report(prefix + name, f"is required ({_expected(spec)})")


def check_value(value: Any, spec: Field, where: str, report: Report, warn: Warn | None = None) -> None:
    if not any(_type_ok(kind, value) for kind in (spec.type, *spec.also)):
        report(where, f"must be {_expected(spec)}, got {_describe(value)}")
        return
    if spec.choices and value not in spec.choices:
        choices = ", ".join(str(c) for c in spec.choices)
        report(where, f"must be one of {choices}, got {_describe(value)}" + suggest(str(value), spec.choices))
        return
    if spec.ignored and warn is not None:
        warn(where, f"has no effect in this runtime: {spec.ignored}")
    is_map = isinstance(value, Mapping) and MAP in (spec.type, *spec.also)
    if is_map and spec.fields is not None:
        check_fields(value, spec.fields, report, prefix=where + ".", warn=warn)
    elif is_map and spec.values is not None:
        for k, v in value.items():
            check_value(v, Field(spec.values), f"{where}.{k}", report, warn)
    elif isinstance(value, list) and spec.items is not None:
        for i, item in enumerate(value):
            check_value(item, Field(spec.items), f"{where}[{i}]", report, warn)


COMMON = ("meta", "lifecycle")  # every kind has them (lifecycle is checked by registry.lifecycle)
LIMITS = Field(MAP, fields={"step_time": Field(DURATION), "inbox": Field(INT)},
               doc="resource limits of the actors on a host")


# A function's instance pool (upstream: how many Lua states serve calls). One shared Lua
# state serves every call here, so the settings are accepted and have no effect.
POOL = Field(MAP, fields={
    "type": Field(STRING, choices=("inline", "lazy", "static", "adaptive")),
    "size": Field(INT), "workers": Field(INT), "buffer": Field(INT), "max_size": Field(INT),
    "warm_start": Field(BOOL),
}, doc="upstream's Lua state pool; calls here share one Lua state")


def lua_fields(*, method: bool) -> dict[str, Field]:
    """The fields of a Lua entry kind. Their presence and form are checked by the loader's
    Lua checks (with messages about Lua), so here they only make other names unknown."""
    out = {"source": Field(), "modules": Field(), "imports": Field(), "pool": POOL}
    if method:
        out["method"] = Field()
    return out


def check_entry_fields(data: Mapping[str, Any], fields: Mapping[str, Field] | None, report: Report,
                       warn: Warn | None = None) -> None:
    """Check an entry's data against its kind's declared fields (None: not declared)."""
    if fields is not None:
        check_fields(data, fields, report, skip=COMMON, warn=warn)
