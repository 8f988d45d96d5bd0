"""Python side of ``hash``: digests, HMACs and FNV-1 hashes (pure computation)."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

ALGORITHMS = ("md5", "sha1", "sha256", "sha512")

FNV32_OFFSET, FNV32_PRIME = 0x811C9DC5, 0x01000193
FNV64_OFFSET, FNV64_PRIME = 0xCBF29CE484222325, 0x100000001B3
MASK32, MASK64 = (1 << 32) - 1, (1 << 64) - 1


def fnv1_32(data: bytes) -> int:
    """FNV-1 (multiply, then xor), 32 bits, as an unsigned integer."""
    h = FNV32_OFFSET
    for byte in data:
        h = ((h * FNV32_PRIME) & MASK32) ^ byte
    return h


def fnv1_64(data: bytes) -> int:
    """FNV-1, 64 bits, as the signed 64-bit integer with the same bits (a Lua integer)."""
    h = FNV64_OFFSET
    for byte in data:
        h = ((h * FNV64_PRIME) & MASK64) ^ byte
    return h - (1 << 64) if h >= 1 << 63 else h


def natives(vm: LuaVM) -> dict[str, Any]:
    def digest(name: bytes, data: bytes, raw: bool) -> bytes:
        h = hashlib.new(name.decode(), data)
        return h.digest() if raw else h.hexdigest().encode()

    def mac(name: bytes, data: bytes, secret: bytes, raw: bool) -> bytes:
        h = hmac.new(secret, data, name.decode())
        return h.digest() if raw else h.hexdigest().encode()

    return {"digest": digest, "hmac": mac, "fnv32": fnv1_32, "fnv64": fnv1_64}
