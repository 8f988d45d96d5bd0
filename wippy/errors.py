"""Error kinds and the Python error hierarchy.

Lua code sees errors as objects with ``kind()``, ``message()``, ``retryable()``,
``details()`` and ``stack()``; Python code sees :class:`WippyError` carrying the same
fields. The two convert into each other at the Lua boundary (``wippy.lua.convert``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NOT_FOUND = "NOT_FOUND"
ALREADY_EXISTS = "ALREADY_EXISTS"
INVALID = "INVALID"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAVAILABLE = "UNAVAILABLE"
INTERNAL = "INTERNAL"
CANCELED = "CANCELED"
CONFLICT = "CONFLICT"
TIMEOUT = "TIMEOUT"
RATE_LIMITED = "RATE_LIMITED"
UNKNOWN = "UNKNOWN"

KINDS: tuple[str, ...] = (
    NOT_FOUND,
    ALREADY_EXISTS,
    INVALID,
    PERMISSION_DENIED,
    UNAVAILABLE,
    INTERNAL,
    CANCELED,
    CONFLICT,
    TIMEOUT,
    RATE_LIMITED,
    UNKNOWN,
)


class WippyError(Exception):
    """An application-level error with a kind, as Lua code sees it."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retryable: bool | None = None,
        details: Any = None,
        stack: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.details = details
        self.stack = stack

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"WippyError({self.kind!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WippyError):
            return NotImplemented
        return (self.kind, self.message, self.retryable, self.details) == (
            other.kind,
            other.message,
            other.retryable,
            other.details,
        )

    __hash__ = Exception.__hash__


def invalid(message: str) -> WippyError:
    return WippyError(INVALID, message, retryable=False)


def not_found(message: str) -> WippyError:
    return WippyError(NOT_FOUND, message, retryable=False)


def internal(message: str) -> WippyError:
    return WippyError(INTERNAL, message, retryable=False)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a project, located as precisely as we can."""

    file: str | None
    message: str
    entry: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<project>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.entry:
            parts.append(f"entry {self.entry}")
        if self.field:
            parts.append(f"field {self.field}")
        return ": ".join(parts) + ": " + self.message


@dataclass
class LoadError(Exception):
    """A project failed to load; ``problems`` lists everything that was found."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found while loading the project"
        return head + "\n" + "\n".join(f"  {p}" for p in self.problems)
