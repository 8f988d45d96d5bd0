"""Python side of ``http_client``: URL query escaping and duration strings (the requests are
commands)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, unquote_to_bytes

from wippy.durations import DurationError, parse_duration

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def natives(vm: LuaVM) -> dict[str, Any]:
    def encode_uri(s: bytes) -> bytes:
        return quote_plus(s, safe="").encode()

    def decode_uri(s: bytes) -> bytes | None:
        if _BAD_ESCAPE.search(s):
            return None
        return unquote_to_bytes(s.replace(b"+", b" "))

    def seconds(s: bytes) -> float | None:
        """A Go duration string in seconds (``"1m30s"`` -> 90.0), or None."""
        try:
            return parse_duration(s.decode("utf-8", "replace"))
        except DurationError:
            return None

    return {"encode_uri": encode_uri, "decode_uri": decode_uri, "seconds": seconds}
