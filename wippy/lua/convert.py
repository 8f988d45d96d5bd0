"""The one place where values cross between Lua and Python.

Lua tables become lists (keys exactly 1..n) or dicts; Lua strings become ``str`` when they
are valid UTF-8 and ``bytes`` otherwise; integers stay integers. Error objects become
:class:`~wippy.errors.WippyError`, other typed values (Time, Duration) become
:class:`TypedValue`. Functions, userdata, coroutines and cycles are ``INVALID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lupa import lua54

from wippy.errors import UNKNOWN, WippyError, invalid

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 200
_SCALARS = frozenset((int, float, bool, type(None)))  # values that convert to themselves
_probe = lua54.LuaRuntime()
_LuaTable = type(_probe.table())
# lupa hands out a coroutine that has not started as a function-like object.
_LuaCoroutineFunction = type(_probe.eval("coroutine.create(print)"))
del _probe
_lua_type = lua54.lua_type


@dataclass(frozen=True)
class TypedValue:
    """A Lua value with a registered value type (``time``, ``duration``): its data plus
    its type name, so it keeps its type when it goes back into Lua."""

    type_name: str
    data: dict[str, Any]


def text(value: Any) -> str:
    """Decode a Lua string argument for Python code that needs text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _text(value: bytes) -> str | bytes:
    """A Lua string as Python text, or as the bytes it is when it is not UTF-8."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


class Converter:
    """Converts values for one Lua state."""

    def __init__(self, vm: LuaVM) -> None:
        self._lua = vm.lua
        rt = vm.rt
        self._value_type = rt.value_type_of
        self._new_error = rt.new_error
        self._type_mts = rt.value_type_names
        self._setmetatable = vm.lua.globals().setmetatable
        self._empty_array_mt = rt.EmptyArray
        self._error_fields = rt.error_fields

    # Lua -> Python -------------------------------------------------------------------
    def to_python(self, value: Any, path: str = "value") -> Any:
        if value is None or value is True or value is False:
            return value
        t = type(value)
        if t is int or t is float:
            return value
        if t is bytes:
            return _text(value)
        if t is _LuaTable:
            return self._table_to_python(value, path, 0)
        raise invalid(f"{path}: a {_describe(value)} cannot cross an actor boundary (only data can)")

    def _table_to_python(self, table: Any, path: str, depth: int) -> Any:
        # lupa hands out a fresh wrapper per access, so identity is not visible here; a
        # depth bound catches cycles (Lua's own copier names them exactly).
        if depth > MAX_DEPTH:
            raise invalid(f"{path}: table is cyclic or nested deeper than {MAX_DEPTH} levels")
        vtype = self._value_type(table)
        if vtype is not None:
            vtype = vtype.decode()
            if vtype == "error":
                return self._error_to_python(table, path, depth)
            if vtype == "array":
                return [self._item(v, f"{path}[{i}]", depth) for i, v in enumerate(table.values(), 1)]
            return TypedValue(vtype, self._plain_table(table, path, depth))
        return self._plain_table(table, path, depth)

    def _plain_table(self, table: Any, path: str, depth: int) -> Any:
        items = list(table.items())
        n = len(items)
        if n and all(type(k) is int for k, _ in items):
            keys = sorted(k for k, _ in items)
            if keys[0] == 1 and keys[-1] == n:
                values = dict(items)
                out_list = []
                for i in range(1, n + 1):
                    v = values[i]
                    # plain scalars need no path (it only names a value in an error)
                    out_list.append(v if type(v) in _SCALARS else self._item(v, f"{path}[{i}]", depth))
                return out_list
        out: dict[Any, Any] = {}
        for k, v in items:
            pk = self._key(k, path)
            tv = type(v)
            if tv in _SCALARS:
                out[pk] = v
            elif tv is bytes:
                out[pk] = _text(v)
            else:
                out[pk] = self._item(v, f"{path}.{pk}" if isinstance(pk, str) else f"{path}[{pk}]", depth)
        if len(out) != n:  # Python equates true/1 and false/0 as keys; never drop one silently
            raise invalid(f"{path}: table has both a boolean key and the equal number key (true/1, false/0)")
        return out

    def _key(self, k: Any, path: str) -> Any:
        t = type(k)
        if t is bytes:
            return _text(k)
        if t is int or t is float or t is bool:
            return k
        raise invalid(f"{path}: table key of type {_describe(k)} cannot cross an actor boundary")

    def _item(self, v: Any, path: str, depth: int) -> Any:
        if type(v) is _LuaTable:
            return self._table_to_python(v, path, depth + 1)
        return self.to_python(v, path)

    def _error_to_python(self, table: Any, path: str, depth: int) -> WippyError:
        kind, message, retryable, details, stack, context = self._error_fields(table)
        return WippyError(
            kind.decode() if isinstance(kind, bytes) else UNKNOWN,
            text(message) if message is not None else "",
            retryable=retryable,
            details=None if details is None else self._item(details, f"{path}.details", depth),
            stack=text(stack) if stack else None,
            context=text(context) if context else None,
        )

    # Python -> Lua -------------------------------------------------------------------
    def to_lua(self, value: Any, path: str = "value") -> Any:
        return self._to_lua(value, path, set())

    def _to_lua(self, value: Any, path: str, seen: set[int]) -> Any:
        if value is None or value is True or value is False:
            return value
        t = type(value)
        if t is str:
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates
                raise invalid(f"{path}: string is not valid Unicode ({exc.reason})") from None
        if t is int:
            if INT64_MIN <= value <= INT64_MAX:
                return value
            raise invalid(f"{path}: integer {value} does not fit in 64 bits")
        if t is float or t is bytes:
            return value
        if isinstance(value, WippyError):
            details = None if value.details is None else self._to_lua(value.details, path, seen)
            context = value.context.encode() if value.context else None
            return self._new_error(value.kind.encode(), value.message.encode(), value.retryable, details,
                                   None, None, context)
        if isinstance(value, (list, tuple, dict, TypedValue)):
            if id(value) in seen:
                raise invalid(f"{path}: cyclic value cannot cross into Lua")
            seen.add(id(value))
            try:
                return self._container_to_lua(value, path, seen)
            finally:
                seen.discard(id(value))
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return self._to_lua(int(value), path, seen)
        if isinstance(value, float):
            return float(value)
        raise invalid(f"{path}: a Python {t.__name__} cannot cross into Lua (only data can)")

    def _container_to_lua(self, value: Any, path: str, seen: set[int]) -> Any:
        table = self._lua.table()
        if isinstance(value, TypedValue):
            for k, v in value.data.items():
                table[self._to_lua(k, path, seen)] = self._to_lua(v, f"{path}.{k}", seen)
            mt = self._type_mts[value.type_name.encode()]
            if mt is None:
                raise invalid(f"{path}: unknown value type {value.type_name!r}")
            self._setmetatable(table, mt)
            return table
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, (str, bytes, int, float)):
                    raise invalid(f"{path}: dict key {k!r} must be a string or a number")
                table[self._to_lua(k, path, seen)] = self._to_lua(v, f"{path}.{k}", seen)
            return table
        if not value:
            self._setmetatable(table, self._empty_array_mt)
            return table
        for i, v in enumerate(value, 1):
            table[i] = self._to_lua(v, f"{path}[{i}]", seen)
        return table


def _describe(value: Any) -> str:
    if type(value) is _LuaCoroutineFunction:  # lua_type says "function"
        return "coroutine"
    lt = _lua_type(value)
    if lt == "function":
        return "function"
    if lt == "thread":
        return "coroutine"
    if lt == "userdata" or lt is None and not isinstance(value, (str, bytes, int, float)):
        return "userdata value"
    return lt or type(value).__name__
