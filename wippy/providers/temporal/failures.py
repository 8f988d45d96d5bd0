"""Errors both ways: a Lua error object becomes a Temporal ApplicationError carrying kind,
retryable and message; a Temporal failure becomes a WippyError with the same fields; a
server's refusal (an RPC status) becomes the WippyError kind that says what it means.

Failures of activities that come from the Lua code (an error a function returned or
raised) are expected: the workflow gets them as error values. The SDK logs every failed
activity at WARNING with a traceback; :func:`quiet_expected_failures` turns those into one
line at INFO (the details at DEBUG), and leaves everything else -- Python exceptions in
the runtime, failed workflow tasks -- as the SDK logs it.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
)
from temporalio.service import RPCError, RPCStatusCode

from wippy.errors import (
    ALREADY_EXISTS,
    CANCELED,
    INTERNAL,
    INVALID,
    NOT_FOUND,
    PERMISSION_DENIED,
    RATE_LIMITED,
    TIMEOUT,
    UNAVAILABLE,
    UNKNOWN,
    WippyError,
)

log = logging.getLogger("wippy.temporal")


class LuaApplicationError(ApplicationError):
    """An ApplicationError made from a wippy error value (see :func:`to_application_error`):
    an outcome the Lua code chose or caused, which its caller gets back."""


def to_application_error(error: Any) -> ApplicationError:
    if not isinstance(error, WippyError):
        error = WippyError(INTERNAL, str(error))
    details = [] if error.details is None else [error.details]
    # as upstream: the type is the kind (an error without one is Internal), and only an
    # error that says retryable == false is non-retryable (Temporal retries the rest)
    return LuaApplicationError(error.message, *details, type=error.kind or INTERNAL,
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


# How the server's refusals read as wippy errors (UNAVAILABLE and DEADLINE_EXCEEDED: the
# server did not answer, which callers word themselves, with a hint)
RPC_KINDS = {
    RPCStatusCode.NOT_FOUND: NOT_FOUND, RPCStatusCode.ALREADY_EXISTS: ALREADY_EXISTS,
    RPCStatusCode.INVALID_ARGUMENT: INVALID, RPCStatusCode.FAILED_PRECONDITION: INVALID,
    RPCStatusCode.OUT_OF_RANGE: INVALID, RPCStatusCode.PERMISSION_DENIED: PERMISSION_DENIED,
    RPCStatusCode.UNAUTHENTICATED: PERMISSION_DENIED, RPCStatusCode.RESOURCE_EXHAUSTED: RATE_LIMITED,
    RPCStatusCode.CANCELLED: CANCELED, RPCStatusCode.INTERNAL: INTERNAL,
    RPCStatusCode.UNAVAILABLE: UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
}


def rpc_kind(exc: RPCError) -> str:
    """The wippy error kind of a server refusal (UNKNOWN for a status without one)."""
    return RPC_KINDS.get(exc.status, UNKNOWN) if exc.status is not None else UNKNOWN


def rpc_error(exc: RPCError, what: str) -> WippyError:
    """``what`` (e.g. "cannot start app:wf") failed because the server refused: the kind
    the status means; retryable only when the server did not answer or was overloaded
    (a refused request fails the same way again)."""
    kind = rpc_kind(exc)
    return WippyError(kind, f"{what}: {exc.message}", retryable=kind in (UNAVAILABLE, RATE_LIMITED))


# Logs ------------------------------------------------------------------------------------------
_FAILED = "Completing activity as failed"


class _ExpectedActivityFailures(logging.Filter):
    """On the SDK's ``temporalio.activity`` logger: a failed attempt whose error came from
    the Lua code is one line at INFO on ``wippy.temporal`` (with the traceback at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, LuaApplicationError) or not str(record.msg).startswith(_FAILED):
            return True
        info = getattr(record, "temporal_activity", None) or {}
        line = "activity %s (workflow %s, attempt %s) failed: %s: %s"
        args = (info.get("activity_type", "?"), info.get("workflow_id", "?"), info.get("attempt", "?"),
                exc.type or UNKNOWN, exc.message)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(line + " (%s)", *args, info, exc_info=record.exc_info)
        else:
            log.info(line, *args)
        return False


_FILTER = _ExpectedActivityFailures()


def quiet_expected_failures() -> None:
    """Install the filter of expected activity failures (once; idempotent)."""
    logger = logging.getLogger("temporalio.activity")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
