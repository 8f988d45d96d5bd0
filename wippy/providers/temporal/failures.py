"""Errors both ways: a Lua error object becomes a Temporal ApplicationError carrying kind,
retryable and message; a Temporal failure becomes a WippyError with the same fields."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
)

from wippy.errors import CANCELED, INTERNAL, TIMEOUT, UNKNOWN, WippyError


def to_application_error(error: Any) -> ApplicationError:
    if not isinstance(error, WippyError):
        error = WippyError(INTERNAL, str(error))
    details = [] if error.details is None else [error.details]
    # as upstream: the type is the kind (an error without one is Internal), and only an
    # error that says retryable == false is non-retryable (Temporal retries the rest)
    return ApplicationError(error.message, *details, type=error.kind or INTERNAL,
                            non_retryable=error.retryable is False)


def from_failure(exc: BaseException) -> WippyError:
    """The WippyError a Lua caller should see for a Temporal failure."""
    cause: BaseException | None = exc
    while isinstance(cause, (ActivityError, ChildWorkflowError)) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else None
        return WippyError(cause.type or UNKNOWN, cause.message, retryable=not cause.non_retryable, details=details)
    if isinstance(cause, TimeoutError):
        return WippyError(TIMEOUT, f"timed out ({cause.type.name.lower() if cause.type else 'timeout'})", retryable=True)
    if isinstance(cause, (CancelledError, TerminatedError)):
        return WippyError(CANCELED, str(cause) or "canceled", retryable=False)
    return WippyError(INTERNAL, str(cause or exc), retryable=False)
