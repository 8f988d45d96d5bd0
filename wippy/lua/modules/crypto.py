"""Python side of ``crypto``: stdlib HMAC, PBKDF2, constant-time compare and HMAC JWTs.

Randomness and the clock (for JWT ``exp``/``nbf``) are commands so a durable host can
record them. AES-GCM, ChaCha20-Poly1305 and RS256 need a third-party library
(``cryptography``) and are reported as unsupported by the Lua side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from wippy.errors import INTERNAL, INVALID, WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

JWT_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
HMAC_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_decode(part: bytes) -> bytes:
    if b"=" in part:
        raise ValueError("padding is not allowed in a JWT segment")
    return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))


def _int_or_float(text: str) -> int | float:
    n = int(text)
    return n if INT64_MIN <= n <= INT64_MAX else float(n)


def _loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"), parse_int=_int_or_float)


def _dumps(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sign_jwt(claims: dict[str, Any], header: dict[str, Any], key: bytes, alg: str) -> bytes:
    """Compact JWS with an HMAC algorithm; `alg` in the header always names the real one."""
    head = {**header, "alg": alg, "typ": header.get("typ", "JWT")}
    signing_input = _b64url(_dumps(head)) + b"." + _b64url(_dumps(claims))
    mac = hmac.new(key, signing_input, JWT_HASHES[alg]).digest()
    return signing_input + b"." + _b64url(mac)


def verify_jwt(token: bytes, key: bytes, alg: str) -> dict[str, Any]:
    """Check structure, algorithm and signature; returns the claims. Time claims are
    checked by the caller, which owns the clock."""
    parts = token.split(b".")
    if len(parts) != 3:
        raise WippyError(
            INTERNAL, "token is malformed: it must have 3 dot-separated segments", retryable=False
        )
    try:
        header = _loads(_b64url_decode(parts[0]))
        claims = _loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise WippyError(INTERNAL, f"token is malformed: {exc}", retryable=False) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise WippyError(
            INTERNAL, "token is malformed: header and claims must be JSON objects", retryable=False
        )
    if header.get("alg") != alg:
        raise WippyError(
            INTERNAL,
            f"token signing method {header.get('alg')!r} is not the expected {alg!r}",
            retryable=False,
        )
    expected = hmac.new(key, parts[0] + b"." + parts[1], JWT_HASHES[alg]).digest()
    if not hmac.compare_digest(expected, signature):
        raise WippyError(INTERNAL, "token signature is invalid", retryable=False)
    return claims


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua, to_python = vm.to_lua, vm.to_python

    def error(kind: str, message: str) -> tuple[None, Any]:
        return None, to_lua(WippyError(kind, message, retryable=False))

    def map_charset(data: bytes, charset: bytes) -> bytes:
        # Each random byte picks charset[b % len(charset)], as upstream does.
        table = bytes(charset[i % len(charset)] for i in range(256))
        return data.translate(table)

    def hmac_hex(name: bytes, key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, HMAC_HASHES[name.decode()]).hexdigest().encode()

    def pbkdf2(password: bytes, salt: bytes, iterations: int, length: int, name: bytes) -> bytes:
        return hashlib.pbkdf2_hmac(name.decode(), password, salt, iterations, length)

    def compare(a: bytes, b: bytes) -> bool:
        return hmac.compare_digest(a, b)

    def jwt_encode(payload: Any, key: bytes, alg: bytes) -> tuple[Any, Any]:
        try:
            claims = to_python(payload, "payload")
        except WippyError as exc:
            return error(INVALID, f"crypto.jwt.encode: {exc.message}")
        if claims == []:
            claims = {}
        if not isinstance(claims, dict):
            return error(
                INVALID, "crypto.jwt.encode: payload must be a table of claims (string keys)"
            )
        header = claims.pop("_header", None)
        if not isinstance(header, dict):
            header = {}
        try:
            return sign_jwt(claims, header, key, alg.decode()), None
        except (TypeError, ValueError) as exc:
            return error(INVALID, f"crypto.jwt.encode: payload cannot be encoded as JSON: {exc}")

    def jwt_verify(token: bytes, key: bytes, alg: bytes) -> tuple[Any, Any]:
        try:
            claims = verify_jwt(token, key, alg.decode())
        except WippyError as exc:
            return error(exc.kind, f"crypto.jwt.verify: {exc.message}")
        try:
            return to_lua(claims, "claims"), None
        except (WippyError, UnicodeError) as exc:
            return error(INTERNAL, f"crypto.jwt.verify: claims cannot be represented in Lua: {exc}")

    return {
        "map_charset": map_charset,
        "hmac": hmac_hex,
        "pbkdf2": pbkdf2,
        "compare": compare,
        "jwt_encode": jwt_encode,
        "jwt_verify": jwt_verify,
    }
