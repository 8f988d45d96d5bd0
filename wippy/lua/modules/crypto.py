"""Python side of ``crypto``: stdlib HMAC, PBKDF2, constant-time compare and HMAC JWTs,
and AES-GCM / ChaCha20-Poly1305 through the ``cryptography`` package.

Randomness, the clock (for JWT ``exp``/``nbf``) and encryption (its nonce is random) are
commands so a durable host can record them; decryption is pure. RS256 is not supported.

Encrypted data is laid out as upstream's: ``nonce (12 bytes) || ciphertext || tag (16
bytes)``; AES takes a 16, 24 or 32 byte key, ChaCha20-Poly1305 a 32 byte key; the
optional third argument is additional authenticated data.
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

NONCE_BYTES = 12
KEY_SIZES = {"aes": (16, 24, 32), "chacha20": (32,)}


def _aead(cipher: str, key: bytes) -> Any:
    """The AEAD object of ``cipher`` (``aes`` or ``chacha20``) for ``key`` (size checked
    by the caller)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    return AESGCM(key) if cipher == "aes" else ChaCha20Poly1305(key)


def seal(cipher: str, data: bytes, key: bytes, aad: bytes | None, nonce: bytes) -> bytes:
    """``nonce || ciphertext || tag`` of ``data`` under ``key``."""
    return nonce + _aead(cipher, key).encrypt(nonce, data, aad)


def open_sealed(cipher: str, data: bytes, key: bytes, aad: bytes | None) -> bytes:
    """The plaintext of what :func:`seal` made; INVALID when ``data`` is too short to hold
    a nonce, INTERNAL when it does not authenticate (wrong key, AAD or data)."""
    from cryptography.exceptions import InvalidTag

    if len(data) < NONCE_BYTES:
        raise WippyError(INVALID, "encrypted data too short", retryable=False)
    try:
        return bytes(_aead(cipher, key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad))
    except InvalidTag:
        raise WippyError(INTERNAL, "decrypt: message authentication failed", retryable=False) from None


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

    def decrypt(cipher: bytes, data: bytes, key: bytes, aad: bytes | None) -> tuple[Any, Any]:
        try:
            return open_sealed(cipher.decode(), data, key, aad), None
        except WippyError as exc:
            return None, to_lua(exc)

    return {
        "decrypt": decrypt,
        "map_charset": map_charset,
        "hmac": hmac_hex,
        "pbkdf2": pbkdf2,
        "compare": compare,
        "jwt_encode": jwt_encode,
        "jwt_verify": jwt_verify,
    }
