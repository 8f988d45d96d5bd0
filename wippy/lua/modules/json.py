"""Python side of ``json``: UTF-8 repair for the Lua encoder and JSON Schema validation.

Encoding and decoding are plain Lua (json.lua). Validation works on converted data, so it
is written here, where regexes and structural equality are at hand. It covers the common
draft-07 / 2019-09 / 2020-12 keywords; ``$ref`` resolves only inside the schema itself.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterator
from datetime import date, datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

MAX_REPORTED = 10  # errors named in the message; all of them go in details


class SchemaError(Exception):
    """The schema itself is broken (unknown type, bad regex, unresolvable $ref)."""


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua, to_python = vm.to_lua, vm.to_python

    def fail(message: str, details: Any = None) -> tuple[bool, Any]:
        return False, to_lua(WippyError(INVALID, message, retryable=False, details=details))

    def load_schema(schema: Any) -> Any:
        if isinstance(schema, bytes):
            try:
                return _parse_schema_text(schema)
            except ValueError as exc:
                raise SchemaError(f"schema is not valid JSON: {exc}") from None
        return to_python(schema, "schema")

    def run(fn: str, schema: Any, get_data: Any) -> tuple[bool, Any]:
        try:
            parsed = load_schema(schema)
            data = get_data()
            problems = list(_validate(parsed, data, "$", parsed, 0))
        except SchemaError as exc:
            return fail(f"json.{fn}: schema compilation failed: {exc}")
        except (TypeError, ValueError) as exc:  # a keyword with a value of the wrong type
            return fail(f"json.{fn}: schema compilation failed: {exc}")
        except WippyError as exc:
            return fail(f"json.{fn}: {exc.message}")
        if not problems:
            return True, None
        shown = "; ".join(problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        return fail(f"json.{fn}: validation failed: {shown}{more}", {"errors": problems})

    def validate(schema: Any, data: Any) -> tuple[bool, Any]:
        return run("validate", schema, lambda: to_python(data, "data"))

    def validate_string(schema: Any, text: bytes) -> tuple[bool, Any]:
        def parse() -> Any:
            try:
                return json.loads(text.decode("utf-8", "replace"))
            except ValueError as exc:
                raise WippyError(INVALID, f"JSON text is not valid: {exc}") from None

        return run("validate_string", schema, parse)

    def fix_utf8(data: bytes) -> bytes:
        return data.decode("utf-8", "replace").encode("utf-8")

    return {"validate": validate, "validate_string": validate_string, "fix_utf8": fix_utf8}


@lru_cache(maxsize=256)
def _parse_schema_text(text: bytes) -> Any:
    """Schemas given as JSON text are parsed once (they are never mutated)."""
    return json.loads(text.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------
_FORMATS: dict[str, Any] = {}


def _format(name: str) -> Any:
    def register(fn: Any) -> Any:
        _FORMATS[name] = fn
        return fn

    return register


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")


@_format("email")
def _is_email(s: str) -> bool:
    return bool(_EMAIL.match(s))


@_format("uuid")
def _is_uuid(s: str) -> bool:
    return bool(_UUID.match(s))


@_format("hostname")
def _is_hostname(s: str) -> bool:
    return bool(_HOSTNAME.match(s))


@_format("uri")
def _is_uri(s: str) -> bool:
    return bool(_URI.match(s))


@_format("ipv4")
def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


@_format("ipv6")
def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


@_format("date")
def _is_date(s: str) -> bool:
    try:
        date.fromisoformat(s)
    except ValueError:
        return False
    return len(s) == 10


@_format("time")
def _is_time(s: str) -> bool:
    try:
        time.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


@_format("date-time")
def _is_datetime(s: str) -> bool:
    if len(s) < 20 or s[10] not in "Tt ":
        return False
    try:
        datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_empty(v: Any) -> bool:
    # An empty Lua table is both an empty array and an empty object.
    return isinstance(v, (list, dict)) and not v


_TYPES: dict[str, Any] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "number": _is_number,
    "string": lambda v: isinstance(v, (str, bytes)),
    "array": lambda v: isinstance(v, list) or _is_empty(v),
    "object": lambda v: isinstance(v, dict) or _is_empty(v),
}


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if _is_integer(v):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, (str, bytes)):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1, and an empty table matches [] and {}."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if _is_empty(a) and _is_empty(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, bytes) or isinstance(b, bytes):
        ab = a.encode() if isinstance(a, str) else a
        bb = b.encode() if isinstance(b, str) else b
        return ab == bb
    return type(a) is type(b) and a == b


def _seq(v: Any) -> list[Any]:
    """A schema list keyword (`required`, `enum`...); an empty Lua table is an empty list."""
    if isinstance(v, list):
        return v
    if isinstance(v, dict) and not v:
        return []
    raise SchemaError(f"expected an array, got {_type_name(v)}")


def _obj(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, list) and not v:
        return {}
    raise SchemaError(f"expected an object, got {_type_name(v)}")


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SchemaError(f"invalid pattern {pattern!r}: {exc}") from None


def _resolve(ref: str, root: Any) -> Any:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise SchemaError(f"unsupported $ref {ref!r} (only references inside the schema, '#/...')")
    node = root
    for part in ref[2:].split("/"):
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise SchemaError(f"$ref {ref!r} does not resolve")
    return node


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _short(v: Any) -> str:
    s = json.dumps(v, default=str, ensure_ascii=False) if not isinstance(v, bytes) else repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _valid(schema: Any, value: Any, root: Any, depth: int) -> bool:
    return next(_validate(schema, value, "$", root, depth), None) is None


def _validate(schema: Any, value: Any, path: str, root: Any, depth: int) -> Iterator[str]:
    """Yield one message per violation, each prefixed with the JSON path of the value."""
    if depth > 100:
        raise SchemaError("schema recursion is too deep (a $ref cycle?)")
    if schema is True or _is_empty(schema):
        return
    if schema is False:
        yield f"{path}: no value is allowed here"
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema must be an object or a boolean, got {_type_name(schema)}")
    s = schema
    if "$ref" in s:
        yield from _validate(_resolve(str(s["$ref"]), root), value, path, root, depth + 1)

    if "type" in s:
        names = s["type"] if isinstance(s["type"], list) else [s["type"]]
        for name in names:
            if name not in _TYPES:
                raise SchemaError(f"unknown type {name!r}")
        if not any(_TYPES[name](value) for name in names):
            yield f"{path}: expected {' or '.join(names)}, got {_type_name(value)}"
            return
    if "enum" in s and not any(_equal(value, e) for e in _seq(s["enum"])):
        yield f"{path}: must be one of {_short(_seq(s['enum']))}, got {_short(value)}"
    if "const" in s and not _equal(value, s["const"]):
        yield f"{path}: must be {_short(s['const'])}, got {_short(value)}"

    if _is_number(value):
        yield from _numeric(s, value, path)
    elif isinstance(value, (str, bytes)):
        yield from _string(s, _text(value), path)
    if isinstance(value, list) or _is_empty(value):
        yield from _array(s, value or [], path, root, depth)
    if isinstance(value, dict) or _is_empty(value):
        yield from _object(s, value or {}, path, root, depth)

    for sub in _seq(s.get("allOf", [])):
        yield from _validate(sub, value, path, root, depth + 1)
    if "anyOf" in s and not any(_valid(sub, value, root, depth + 1) for sub in _seq(s["anyOf"])):
        yield f"{path}: does not match any schema in anyOf"
    if "oneOf" in s:
        matched = sum(1 for sub in _seq(s["oneOf"]) if _valid(sub, value, root, depth + 1))
        if matched != 1:
            yield f"{path}: must match exactly one schema in oneOf (matched {matched})"
    if "not" in s and _valid(s["not"], value, root, depth + 1):
        yield f"{path}: must not match the schema in 'not'"
    if "if" in s:
        branch = "then" if _valid(s["if"], value, root, depth + 1) else "else"
        if branch in s:
            yield from _validate(s[branch], value, path, root, depth + 1)


def _numeric(s: dict[str, Any], v: Any, path: str) -> Iterator[str]:
    lo, hi = s.get("minimum"), s.get("maximum")
    xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if xlo is True:  # draft-04 booleans modify minimum/maximum
        xlo, lo = lo, None
    if xhi is True:
        xhi, hi = hi, None
    if _is_number(lo) and v < lo:
        yield f"{path}: must be >= {lo}, got {v}"
    if _is_number(hi) and v > hi:
        yield f"{path}: must be <= {hi}, got {v}"
    if _is_number(xlo) and v <= xlo:
        yield f"{path}: must be > {xlo}, got {v}"
    if _is_number(xhi) and v >= xhi:
        yield f"{path}: must be < {xhi}, got {v}"
    step = s.get("multipleOf")
    if step is not None and _is_number(step) and step > 0:
        q = v / step
        if not (math.isfinite(q) and abs(q - round(q)) < 1e-9):
            yield f"{path}: must be a multiple of {step}, got {v}"


def _string(s: dict[str, Any], v: str, path: str) -> Iterator[str]:
    if "minLength" in s and len(v) < s["minLength"]:
        yield f"{path}: must be at least {s['minLength']} characters long, got {len(v)}"
    if "maxLength" in s and len(v) > s["maxLength"]:
        yield f"{path}: must be at most {s['maxLength']} characters long, got {len(v)}"
    if "pattern" in s and not _regex(str(s["pattern"])).search(v):
        yield f"{path}: does not match pattern {s['pattern']!r}"
    check = _FORMATS.get(str(s.get("format")))
    if check is not None and not check(v):
        yield f"{path}: is not a valid {s['format']}, got {_short(v)}"


def _array(s: dict[str, Any], v: list[Any], path: str, root: Any, depth: int) -> Iterator[str]:
    if "minItems" in s and len(v) < s["minItems"]:
        yield f"{path}: must have at least {s['minItems']} items, got {len(v)}"
    if "maxItems" in s and len(v) > s["maxItems"]:
        yield f"{path}: must have at most {s['maxItems']} items, got {len(v)}"
    if s.get("uniqueItems") is True:
        for i in range(len(v)):
            if any(_equal(v[i], v[j]) for j in range(i)):
                yield f"{path}: items must be unique ({path}[{i}] repeats an earlier item)"
                break
    items = s.get("items")
    prefix = s.get("prefixItems")
    if isinstance(items, list) and items:  # draft-07 tuple form
        prefix, items = items, s.get("additionalItems")
    prefix = _seq(prefix) if prefix is not None else []
    for i, item in enumerate(v):
        sub = prefix[i] if i < len(prefix) else items
        if sub is not None:
            yield from _validate(sub, item, f"{path}[{i}]", root, depth + 1)
    if "contains" in s:
        hits = sum(1 for item in v if _valid(s["contains"], item, root, depth + 1))
        least, most = s.get("minContains", 1), s.get("maxContains")
        if hits < least:
            yield f"{path}: must contain at least {least} matching item(s), found {hits}"
        if most is not None and hits > most:
            yield f"{path}: must contain at most {most} matching item(s), found {hits}"


def _object(
    s: dict[str, Any], v: dict[Any, Any], path: str, root: Any, depth: int
) -> Iterator[str]:
    props = _obj(s.get("properties", {}))
    for name in _seq(s.get("required", [])):
        if name not in v:
            yield f"{path}: missing required property {name!r}"
    if "minProperties" in s and len(v) < s["minProperties"]:
        yield f"{path}: must have at least {s['minProperties']} properties, got {len(v)}"
    if "maxProperties" in s and len(v) > s["maxProperties"]:
        yield f"{path}: must have at most {s['maxProperties']} properties, got {len(v)}"
    patterns = [(_regex(p), sub) for p, sub in _obj(s.get("patternProperties", {})).items()]
    extra = s.get("additionalProperties")
    for key, item in v.items():
        name = _text(key) if isinstance(key, (str, bytes)) else str(key)
        sub_path = f"{path}.{name}"
        matched = False
        if name in props:
            matched = True
            yield from _validate(props[name], item, sub_path, root, depth + 1)
        for rx, sub in patterns:
            if rx.search(name):
                matched = True
                yield from _validate(sub, item, sub_path, root, depth + 1)
        if not matched and extra is not None:
            if extra is False:
                yield f"{path}: property {name!r} is not allowed"
            else:
                yield from _validate(extra, item, sub_path, root, depth + 1)
        if "propertyNames" in s and not _valid(s["propertyNames"], name, root, depth + 1):
            yield f"{path}: property name {name!r} is not valid"
    deps = dict(_obj(s.get("dependencies", {})))
    deps.update(_obj(s.get("dependentRequired", {})))
    for name, need in deps.items():
        if name not in v:
            continue
        if isinstance(need, list):
            for other in need:
                if other not in v:
                    yield f"{path}: property {other!r} is required when {name!r} is present"
        else:
            yield from _validate(need, v, path, root, depth + 1)
    for name, sub in _obj(s.get("dependentSchemas", {})).items():
        if name in v:
            yield from _validate(sub, v, path, root, depth + 1)
