"""Bytes for Python values that came out of Lua (``wippy.lua.convert``): msgpack, with
extension types so errors and typed values (Time, Duration) keep their type on disk."""

from __future__ import annotations

from typing import Any

import msgpack

from wippy.errors import WippyError, normalize_kind
from wippy.lua.convert import TypedValue

_EXT_ERROR = 1
_EXT_TYPED = 2


def _default(value: Any) -> Any:
    if isinstance(value, WippyError):
        body = [value.kind, value.message, value.retryable, value.details, value.stack, value.context]
        return msgpack.ExtType(_EXT_ERROR, pack(body))
    if isinstance(value, TypedValue):
        return msgpack.ExtType(_EXT_TYPED, pack([value.type_name, value.data]))
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} value")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_ERROR:
        kind, message, retryable, details, stack, *rest = unpack(data)  # older records: no context
        return WippyError(normalize_kind(kind), message, retryable=retryable, details=details, stack=stack,
                          context=rest[0] if rest else None)
    if code == _EXT_TYPED:
        name, body = unpack(data)
        return TypedValue(name, body)
    return msgpack.ExtType(code, data)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True, strict_types=False)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
