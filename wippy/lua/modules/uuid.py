"""Python side of ``uuid``: generation as commands, parsing and name-based UUIDs as natives.

v1, v4 and v7 depend on the clock or on randomness, so they are commands: a durable
provider records the string and replays it. v3/v5 and inspection are pure and run inline.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid as std_uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

_HEX32 = re.compile(rb"[0-9a-fA-F]{32}")
_GREGORIAN_TO_UNIX = 0x01B21DD213814000  # 100 ns ticks from 1582-10-15 to 1970-01-01


def parse(text: bytes) -> std_uuid.UUID | None:
    """Strict parse of the forms Go's uuid.Parse accepts: canonical (36), braced (38),
    ``urn:uuid:`` (45) and bare hex (32)."""
    n = len(text)
    if n == 45:
        if text[:9].lower() != b"urn:uuid:":
            return None
        text = text[9:]
    elif n == 38:
        if text[:1] != b"{" or text[-1:] != b"}":
            return None
        text = text[1:-1]
    if len(text) == 36:
        if any(text[i : i + 1] != b"-" for i in (8, 13, 18, 23)):
            return None
        text = text.replace(b"-", b"")
    if not _HEX32.fullmatch(text):
        return None
    return std_uuid.UUID(text.decode("ascii"))


def variant_name(u: std_uuid.UUID) -> bytes:
    """RFC 4122 section 4.1.1 names for the variant bits of octet 8."""
    b = u.bytes[8]
    if b & 0x80 == 0:
        return b"NCS"
    if b & 0xC0 == 0x80:
        return b"RFC4122"
    if b & 0xE0 == 0xC0:
        return b"Microsoft"
    return b"Future"


def unix_seconds(u: std_uuid.UUID) -> int | None:
    """Creation time in whole Unix seconds for time-based UUIDs (v1, v7), else None."""
    version = u.bytes[6] >> 4
    if version == 1:
        return (u.time - _GREGORIAN_TO_UNIX) // 10_000_000
    if version == 7:
        return (u.int >> 80) // 1000
    return None


def _name_based(namespace: std_uuid.UUID, name: bytes, algorithm: str, version: int) -> bytes:
    digest = hashlib.new(algorithm, namespace.bytes + name, usedforsecurity=False).digest()
    return str(std_uuid.UUID(bytes=digest[:16], version=version)).encode()


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua = vm.to_lua

    def canonical(text: bytes) -> bytes | None:
        u = parse(text)
        return None if u is None else str(u).encode()

    def info(text: bytes) -> Any:
        u = parse(text)
        if u is None:
            return None
        out: dict[str, Any] = {"version": u.bytes[6] >> 4, "variant": variant_name(u).decode()}
        seconds = unix_seconds(u)
        if seconds is not None:
            out["timestamp"] = seconds
        if out["version"] == 1:
            out["node"] = f"{u.node:012x}"
        return to_lua(out)

    def name_based(namespace: bytes, name: bytes, version: int) -> bytes | None:
        ns = parse(namespace)
        if ns is None:
            return None
        if version == 3:
            return _name_based(ns, name, "md5", 3)
        return _name_based(ns, name, "sha1", 5)

    return {"canonical": canonical, "info": info, "name_based": name_based}


class V7Generator:
    """RFC 9562 v7 UUIDs, strictly increasing within this process: a 12-bit counter in
    ``rand_a`` orders ids made in the same millisecond (method 1 of section 6.2)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def __call__(self) -> std_uuid.UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
                if self._seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                    ms += 1
                    self._seq = secrets.randbits(11)
            else:
                self._seq = secrets.randbits(11)  # leave room to count up
            self._last_ms = ms
            seq = self._seq
        value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | seq << 64
        value |= 0b10 << 62 | secrets.randbits(62)
        return std_uuid.UUID(int=value)
