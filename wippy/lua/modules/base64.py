"""Python side of ``base64``: standard RFC 4648 Base64 via :mod:`binascii`, with decode
errors that say which byte is wrong (binascii only says *that* something is)."""

from __future__ import annotations

import binascii
import re
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

_NEWLINES = re.compile(rb"[\r\n]")
_BAD_CHAR = re.compile(rb"[^A-Za-z0-9+/=]")
_BAD_PAD = re.compile(rb"=[^=]|={3,}")


def decode_error(data: bytes) -> str | None:
    """Why ``data`` (newlines removed) is not valid padded Base64, or None if it is."""
    bad = _BAD_CHAR.search(data)
    if bad:
        c = bad.group()
        shown = repr(chr(c[0])) if 32 <= c[0] < 127 else f"0x{c[0]:02x}"
        return f"illegal character {shown} at byte {bad.start()}"
    pad = _BAD_PAD.search(data)
    if pad:
        return f"misplaced padding '=' at byte {pad.start()}"
    if len(data) % 4:
        return f"length {len(data)} is not a multiple of 4 (missing or extra padding)"
    return None


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua = vm.to_lua

    def encode(data: bytes) -> bytes:
        return binascii.b2a_base64(data, newline=False)

    def decode(data: bytes) -> tuple[Any, Any]:
        # Like Go's StdEncoding, line breaks are skipped; everything else must be valid.
        clean = _NEWLINES.sub(b"", data)
        why = decode_error(clean)
        if why is None:
            try:
                return binascii.a2b_base64(clean, strict_mode=True), None
            except binascii.Error as exc:
                why = str(exc)
        return None, to_lua(
            WippyError(INVALID, f"base64.decode: invalid base64 data: {why}", retryable=False)
        )

    return {"encode": encode, "decode": decode}
