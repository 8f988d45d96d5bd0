"""Payloads for Temporal: readable JSON for JSON-shaped values, msgpack for the rest.

A value that JSON can carry exactly (string keys, no bytes, no error or typed values,
finite floats) goes as ``json/plain`` so the Temporal UI, CLI and other SDKs read it;
anything else (binary strings, integer keys, errors, Time values) goes as
``binary/wippy-msgpack`` through the project's one codec; a value that is nothing but bytes
goes as ``binary/plain``, which every SDK reads as a byte array.
"""

from __future__ import annotations

import json
import math
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
)

from wippy.lua import codec

MSGPACK_ENCODING = "binary/wippy-msgpack"


def json_exact(value: Any) -> bool:
    """True when JSON round-trips ``value`` unchanged (and so shows it readably)."""
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(json_exact(v) for v in value)
    if t is dict:
        return all(type(k) is str and json_exact(v) for k, v in value.items())
    return False


class ExactJSONConverter(EncodingPayloadConverter):
    @property
    def encoding(self) -> str:
        return "json/plain"

    def to_payload(self, value: Any) -> Payload | None:
        if not json_exact(value):
            return None
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return Payload(metadata={"encoding": self.encoding.encode()}, data=data)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        return json.loads(payload.data)


class MsgpackConverter(EncodingPayloadConverter):
    @property
    def encoding(self) -> str:
        return MSGPACK_ENCODING

    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={"encoding": self.encoding.encode()}, data=codec.pack(value))

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        return codec.unpack(payload.data)


class WippyPayloadConverter(CompositePayloadConverter):
    """Tried in order when encoding; decoding picks by the payload's encoding. ``binary/plain``
    is what other SDKs send for a byte array (Go ``[]byte``, the CLI's ``--input-meta
    encoding=binary/plain``): a top-level bytes value goes that way too, and comes back as bytes."""

    def __init__(self) -> None:
        super().__init__(BinaryNullPayloadConverter(), BinaryPlainPayloadConverter(), ExactJSONConverter(),
                         MsgpackConverter())


DATA_CONVERTER = DataConverter(payload_converter_class=WippyPayloadConverter)

