"""Python side of ``types``: regular expressions for the ``@pattern`` validator.

Patterns are regular expressions (Python's :mod:`re`, close to the RE2 syntax upstream
uses), searched anywhere in the string unless anchored, like Go's ``MatchString``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM


@lru_cache(maxsize=512)
def _compile(pattern: bytes) -> re.Pattern[str] | str:
    """The compiled pattern, or why it does not compile."""
    try:
        return re.compile(pattern.decode("utf-8", "surrogateescape"))
    except re.error as exc:
        return f"invalid regular expression: {exc}"


def natives(vm: LuaVM) -> dict[str, Any]:
    def pattern_error(pattern: bytes) -> bytes | None:
        compiled = _compile(pattern)
        return compiled.encode() if isinstance(compiled, str) else None

    def pattern_find(pattern: bytes, text: bytes) -> bool:
        compiled = _compile(pattern)
        if isinstance(compiled, str):
            return False
        return compiled.search(text.decode("utf-8", "surrogateescape")) is not None

    return {"pattern_error": pattern_error, "pattern_find": pattern_find}
