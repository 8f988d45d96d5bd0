"""Search attributes: the types the namespace registered (described once per client and
cached), and Lua values checked against them.

Temporal refuses a search attribute the namespace does not have, or a value of another
type, only when the worker completes the workflow task -- which then fails and is retried
forever. So values are checked first: an unregistered name, or a value that is not of the
registered type, is an ``Invalid`` error naming the attribute (and its type). A value that
converts to the registered type without loss is converted: a number or boolean for a
Keyword or Text attribute becomes its text, a whole float for an Int its integer, a number
for a Double a float, a single value for a KeywordList a one-item list.

When the server will not list its search attributes (a Temporal Cloud API key may lack the
permission), values are sent typed by their Lua type, as before: Bool, Int, Double, and
Keyword for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from wippy.errors import INVALID, WippyError
from wippy.registry.schema import describe_value

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger("wippy.temporal")

# IndexedValueType -> the name Temporal's tools use
TYPE_NAMES = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime", 7: "KeywordList"}
UNCHECKED = "?"  # the type of a name the server would not describe: typed by its value
REFRESH_AFTER = 2.0  # seconds: a name missing from the cache describes the namespace again, at most this often
_INT64 = 2 ** 63


async def describe(client: Client, namespace: str, timeout: float) -> dict[str, str] | None:
    """The namespace's custom search attributes (name -> type name), or None when the
    server will not say."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=timedelta(seconds=timeout))
    except Exception as exc:
        log.debug("cannot list the search attributes of namespace %s: %s", namespace, exc)
        return None
    return {name: TYPE_NAMES.get(int(kind), str(kind)) for name, kind in resp.custom_attributes.items()}


class SearchAttributeTypes:
    """The registered search attributes of one client's namespace, described on first use
    and again (at most every REFRESH_AFTER seconds) when a name is not among them."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.types: dict[str, str] | None = None
        self._described = -math.inf  # loop time of the last description (or attempt)
        self._lock: asyncio.Lock | None = None
        self._warned = False

    async def lookup(self, client: Client, names: list[str], timeout: float = 10.0) -> dict[str, str | None] | None:
        """The type of each name (None: not registered); None when the server will not
        describe the namespace's search attributes."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = asyncio.get_running_loop().time()
            missing = self.types is None or any(n not in self.types for n in names)
            if missing and now - self._described >= REFRESH_AFTER:
                self._described = now
                fresh = await describe(client, self.namespace, timeout)
                if fresh is not None:
                    self.types = fresh
                elif self.types is None and not self._warned:
                    self._warned = True
                    log.warning("cannot list the search attributes of namespace %s: values of workflow.attrs "
                                "and of the search_attributes start option are sent unchecked, typed by their "
                                "Lua type", self.namespace)
            if self.types is None:
                return None
            return {n: self.types.get(n) for n in names}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and -_INT64 <= value < _INT64:
        return value
    return None


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None


def _keyword_list(value: Any) -> list[str] | None:
    items = value if isinstance(value, list) else ([] if value == {} else [value])
    texts = [_text(v) for v in items]
    return None if any(t is None for t in texts) else [t for t in texts if t is not None]


def _convert(kind: str, value: Any) -> Any:
    """``value`` as a value of the search attribute type ``kind``, or None."""
    if kind in ("Keyword", "Text"):
        return _text(value)
    if kind == "Int":
        return _int(value)
    if kind == "Double":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else None
    if kind == "Bool":
        return value if isinstance(value, bool) else None
    if kind == "Datetime":
        return _datetime(value)
    if kind == "KeywordList":
        return _keyword_list(value)
    return None


_KEYS: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {"Keyword": SearchAttributeKey.for_keyword, "Text": SearchAttributeKey.for_text,
         "Int": SearchAttributeKey.for_int, "Double": SearchAttributeKey.for_float,
         "Bool": SearchAttributeKey.for_bool, "Datetime": SearchAttributeKey.for_datetime,
         "KeywordList": SearchAttributeKey.for_keyword_list}
_EXPECTED = {"Keyword": "a string (or a number or boolean, sent as its text)",
             "Text": "a string (or a number or boolean, sent as its text)",
             "Int": "an integer", "Double": "a number", "Bool": "a boolean",
             "Datetime": "an RFC 3339 time with a zone, e.g. 2025-01-02T15:04:05Z",
             "KeywordList": "a list of strings"}


def _by_value(name: str, value: Any) -> SearchAttributePair[Any]:
    if isinstance(value, bool):
        return SearchAttributePair(SearchAttributeKey.for_bool(name), value)
    if isinstance(value, int):
        return SearchAttributePair(SearchAttributeKey.for_int(name), value)
    if isinstance(value, float):
        return SearchAttributePair(SearchAttributeKey.for_float(name), value)
    return SearchAttributePair(SearchAttributeKey.for_keyword(name), str(value))


def typed_pairs(values: dict[Any, Any], types: dict[str, str | None] | None, namespace: str,
                what: str) -> list[SearchAttributePair[Any]]:
    """``values`` as typed search attributes: each converted to its registered type
    (``types``: name -> type name, None for a name that is not registered, UNCHECKED or a
    missing ``types`` for one typed by its value). INVALID naming every attribute that
    cannot be sent; ``what`` says where the values come from (``workflow.attrs``)."""
    pairs: list[SearchAttributePair[Any]] = []
    problems: list[str] = []
    for name in sorted(values, key=str):
        value = values[name]
        if not isinstance(name, str) or not name:
            problems.append(f"{describe_value(name)} is not a search attribute name")
            continue
        kind = UNCHECKED if types is None else types.get(name)
        if kind == UNCHECKED:
            pairs.append(_by_value(name, value))
        elif kind is None:
            problems.append(f"search attribute {name!r} is not registered in namespace {namespace} (register it: "
                            f"`temporal operator search-attribute create --name {name} --type Keyword`, or "
                            f"`wippy temporal dev --search-attribute {name}=Keyword` for a local server)")
        elif kind not in _KEYS:
            problems.append(f"search attribute {name!r} has the type {kind}, which wippy cannot set")
        else:
            converted = _convert(kind, value)
            if converted is None:
                problems.append(f"search attribute {name!r} is registered as {kind}: it takes "
                                f"{_EXPECTED[kind]}, not {describe_value(value)}")
            else:
                pairs.append(SearchAttributePair(_KEYS[kind](name), converted))
    if problems:
        raise WippyError(INVALID, f"{what}: " + "; ".join(problems), retryable=False)
    return pairs


def typed_search_attributes(values: dict[Any, Any], types: dict[str, str | None] | None, namespace: str,
                            what: str) -> TypedSearchAttributes:
    """:func:`typed_pairs` as the start option ``search_attributes``."""
    return TypedSearchAttributes(typed_pairs(values, types, namespace, what))


def search_attribute_updates(values: dict[Any, Any], types: dict[str, str | None] | None, namespace: str,
                             what: str) -> list[SearchAttributeUpdate[Any]]:
    """:func:`typed_pairs` as ``workflow.upsert_search_attributes`` updates."""
    return [pair.key.value_set(pair.value) for pair in typed_pairs(values, types, namespace, what)]
