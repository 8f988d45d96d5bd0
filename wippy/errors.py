"""Error kinds and the Python error hierarchy.

Lua code sees errors as objects with ``kind()``, ``message()``, ``retryable()``,
``details()`` and ``stack()``; Python code sees :class:`WippyError` carrying the same
fields. The two convert into each other at the Lua boundary (``wippy.lua.convert``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The kind strings are upstream's (``errors.NOT_FOUND == "NotFound"`` in Lua); an error
# without a kind has the empty kind.
NOT_FOUND = "NotFound"
ALREADY_EXISTS = "AlreadyExists"
INVALID = "Invalid"
PERMISSION_DENIED = "PermissionDenied"
UNAVAILABLE = "Unavailable"
INTERNAL = "Internal"
CANCELED = "Canceled"
CONFLICT = "Conflict"
TIMEOUT = "Timeout"
RATE_LIMITED = "RateLimited"
UNKNOWN = ""
# A runtime resource limit (CPU budget per step, memory, a full inbox); not an upstream kind.
LIMIT_EXCEEDED = "LimitExceeded"

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

# Kind names this runtime used before it took upstream's (histories written then hold them).
LEGACY_KINDS = {
    "NOT_FOUND": NOT_FOUND, "ALREADY_EXISTS": ALREADY_EXISTS, "INVALID": INVALID,
    "PERMISSION_DENIED": PERMISSION_DENIED, "UNAVAILABLE": UNAVAILABLE, "INTERNAL": INTERNAL,
    "CANCELED": CANCELED, "CONFLICT": CONFLICT, "TIMEOUT": TIMEOUT, "RATE_LIMITED": RATE_LIMITED,
    "UNKNOWN": UNKNOWN,
}


def normalize_kind(kind: str) -> str:
    """A stored kind in today's spelling (``"NOT_FOUND"`` from an old history is ``"NotFound"``)."""
    return LEGACY_KINDS.get(kind, kind)


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
        context: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.details = details
        self.stack = stack
        self.context = context  # what errors.wrap added: shown before the message

    @property
    def text(self) -> str:
        """The message with the context it was wrapped in (what ``tostring`` shows in Lua)."""
        return f"{self.context}: {self.message}" if self.context else self.message

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}" if self.kind else self.text

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
    # What was found besides the problems that would not have stopped the load.
    warnings: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found while loading the project"
        return head + "\n" + "\n".join(f"  {p}" for p in self.problems)
