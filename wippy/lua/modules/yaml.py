"""Python side of ``yaml``: encoding and decoding with PyYAML (pure computation).

Decoding keeps to the YAML types Lua has: mappings, sequences, strings, integers, floats,
booleans and null. Timestamps stay strings. Encoding writes block style with keys sorted
(Go's map order), four spaces of indentation, or two when options are given, as upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import yaml

from wippy.errors import INTERNAL, INVALID, WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM


class _Loader(yaml.SafeLoader):
    """Safe loading without timestamps (Lua has no date type: they stay strings)."""

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        return str(self.construct_scalar(node)).lower() == "true"


_Loader.add_constructor("tag:yaml.org,2002:bool", _Loader.construct_yaml_bool)


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Booleans as YAML 1.2 (and Go's yaml.v3) have them: yes/no/on/off stay strings.
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


class _Dumper(yaml.SafeDumper):
    """Block style with sequences indented under their key, as Go's yaml.v3 writes them."""

    _item = False  # the node being emitted is the value of a "- " sequence item

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        if self._item and not flow and self.indent is not None:
            self.indents.append(self.indent)
            self.indent += 2  # a mapping or sequence starts right after its "- "
            return
        super().increase_indent(flow, False)

    def expect_block_sequence_item(self, first: bool = False) -> None:
        self._item = True
        try:
            super().expect_block_sequence_item(first)
        finally:
            self._item = False

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return _text(key)


def _ordered(value: Any, order: dict[str, int]) -> Any:
    """``value`` with every mapping's keys in output order: the ``order`` keys first (in
    that order), the rest sorted."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (0, order[k], "") if k in order else (1, 0, _key_text(k)))
        return {_key_text(k): _ordered(value[k], order) for k in keys}
    if isinstance(value, list):
        return [_ordered(v, order) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def encode(data: Any, field_order: Iterable[str] = (), with_options: bool = False) -> str:
    """YAML text of converted Lua data."""
    order = {name: i for i, name in enumerate(dict.fromkeys(field_order))}
    return yaml.dump(_ordered(data, order), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, indent=2 if with_options else 4, width=1 << 30)


def decode(text: str) -> Any:
    """The value of a YAML document (INTERNAL on a syntax error)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506  # a safe loader
    except yaml.YAMLError as exc:
        raise WippyError(INTERNAL, f"decode failed: {' '.join(str(exc).split())}", retryable=False) from None


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua, to_python = vm.to_lua, vm.to_python

    def fail(kind: str, message: str) -> tuple[bool, Any]:
        return False, to_lua(WippyError(kind, message, retryable=False))

    def lua_encode(value: Any, field_order: Any, with_options: bool) -> tuple[bool, Any]:
        try:
            data = to_python(value, "value")
        except WippyError as err:
            return fail(INVALID, f"yaml.encode: {err.message}")
        order = [_text(v) for v in field_order.values()] if field_order is not None else []
        try:
            return True, encode(data, order, with_options).encode("utf-8")
        except (yaml.YAMLError, TypeError, ValueError) as exc:
            return fail(INTERNAL, f"yaml.encode: encode failed: {exc}")

    def lua_decode(text: bytes) -> tuple[bool, Any]:
        try:
            value = decode(text.decode("utf-8", "replace"))
            return True, to_lua(value, "document")
        except WippyError as err:
            return fail(err.kind, f"yaml.decode: {err.message}")

    return {"encode": lua_encode, "decode": lua_decode}
