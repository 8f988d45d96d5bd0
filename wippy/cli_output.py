"""Lua results as JSON, the way ``wippy exec`` prints them.

- Strings that are not UTF-8 show their bad bytes as ``\\xNN``; NaN and infinities become
  strings; table keys become strings, sorted (numbers by value first: Lua has no key order).
- Error values: ``{"kind", "message"[, "details"]}`` (the message with its wrap context).
- A Time: RFC 3339 with nanoseconds in its own zone (``2023-11-14T22:13:20.000000005Z``); a
  Duration: Go's duration text (``1m30s``); a Location: its name.
- A message (``process.inbox():receive()``): ``{"topic", "from", "payload"}``, the payload
  as its data; a payload (``future:result()``) is its data.
- Other typed values show their data.
"""

from __future__ import annotations

import json
from typing import Any

from wippy.errors import WippyError
from wippy.lua.convert import TypedValue

RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: what :func:`jsonable` leaves alone is shown by ``repr``."""
    return repr(value)


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False, default=json_default)


def jsonable(value: Any, depth: int = 0) -> Any:
    """A Lua result (as Python data) as JSON-ready data (see the module docs)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if depth > 500:
        return "..."
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):  # Lua has no key order: numbers first, by value, then text
        keys = sorted(value, key=_key_order)
        return {json_key(k): jsonable(value[k], depth + 1) for k in keys}
    if isinstance(value, WippyError):
        out: dict[str, Any] = {"kind": value.kind, "message": value.text}
        if value.details is not None:
            out["details"] = jsonable(value.details, depth + 1)
        return out
    if isinstance(value, TypedValue):
        return typed_json(value, depth)
    return json_default(value)


def _key_order(key: Any) -> tuple[int, Any, str]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key, "")
    return (1, 0, json_key(key))


def json_key(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "backslashreplace")
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def typed_json(value: TypedValue, depth: int = 0) -> Any:
    data = value.data
    kind = value.type_name
    try:
        if kind == "time":
            from wippy.lua.modules._gotime import format_time

            offset = data.get("offset")
            return format_time(RFC3339_NANO, int(data["sec"]), int(data.get("nsec") or 0),
                               _text(data.get("zone") or "UTC"), None if offset is None else int(offset))
        if kind == "duration":
            from wippy.lua.modules._gotime import duration_string

            return duration_string(int(data["ns"]))
        if kind == "location":
            return _text(data.get("name"))
        if kind == "payload":
            return jsonable(data.get("_v"), depth + 1)
        if kind == "message":
            payload = data.get("_p")
            body = payload.data.get("_v") if isinstance(payload, TypedValue) else payload
            return {"topic": jsonable(data.get("_t"), depth + 1), "from": jsonable(data.get("_f") or "", depth + 1),
                    "payload": jsonable(body, depth + 1)}
    except (KeyError, TypeError, ValueError):  # odd data: show it as it is
        pass
    return jsonable(data, depth + 1)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


__all__ = ["RFC3339_NANO", "dumps", "json_default", "json_key", "jsonable", "typed_json"]
