"""Activities: the function calls a workflow makes, run live with retries and timeouts.

Options come from ``funcs.new():with_options{...}`` with the upstream keys:
``activity.start_to_close_timeout``, ``activity.schedule_to_close_timeout``,
``activity.heartbeat_timeout`` (accepted; there is no heartbeat API yet) and
``activity.retry_policy`` (``initial_interval``, ``backoff_coefficient``,
``maximum_interval``, ``maximum_attempts`` (0 = unlimited),
``non_retryable_error_types``). Intervals are milliseconds or duration strings. Only the
final outcome is recorded; attempts are not, so a restart retries from the first one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, TIMEOUT, WippyError
from wippy.providers.workflow.options import seconds

if TYPE_CHECKING:
    from wippy.providers.workflow.execution import Op, Workflow
    from wippy.providers.workflow.host import WorkflowHost

log = logging.getLogger("wippy.workflow")


@dataclass(frozen=True)
class RetryPolicy:
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float | None = None  # default: 100 x initial_interval
    maximum_attempts: int = 0
    non_retryable_error_types: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any, what: str = "activity.retry_policy") -> RetryPolicy:
        """``what`` names the option in errors (workflows use ``temporal.workflow.retry_policy``)."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise WippyError(INVALID, f"{what} must be a table")
        attempts = raw.get("maximum_attempts", 0)
        if not isinstance(attempts, int) or attempts < 0:
            raise WippyError(INVALID, f"{what}.maximum_attempts must be a non-negative integer")
        kinds = raw.get("non_retryable_error_types") or []
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise WippyError(INVALID, f"{what}.non_retryable_error_types must be a list of error kinds")
        coefficient = raw.get("backoff_coefficient", 2.0)
        if not isinstance(coefficient, (int, float)) or coefficient < 1:
            raise WippyError(INVALID, f"{what}.backoff_coefficient must be a number >= 1")
        return cls(
            initial_interval=seconds("initial_interval", raw.get("initial_interval")) or 1.0,
            backoff_coefficient=float(coefficient),
            maximum_interval=seconds("maximum_interval", raw.get("maximum_interval")),
            maximum_attempts=attempts,
            non_retryable_error_types=tuple(kinds),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        cap = self.maximum_interval if self.maximum_interval is not None else 100 * self.initial_interval
        return min(self.initial_interval * self.backoff_coefficient ** (attempt - 1), cap)

    def retries(self, error: WippyError, attempt: int) -> bool:
        if error.retryable is not True or error.kind in self.non_retryable_error_types:
            return False
        return self.maximum_attempts == 0 or attempt < self.maximum_attempts


class _Attempts:
    __slots__ = ("policy", "start_to_close", "deadline", "attempt", "call", "timer")

    def __init__(self, policy: RetryPolicy, start_to_close: float | None, deadline: float | None) -> None:
        self.policy = policy
        self.start_to_close = start_to_close
        self.deadline = deadline
        self.attempt = 0
        self.call: Any = None
        self.timer: Any = None


class ActivityRunner:
    def __init__(self, host: WorkflowHost) -> None:
        self.host = host
        self.kernel = host.kernel
        self._live: dict[tuple[str, int], _Attempts] = {}

    def start(self, wf: Workflow, op: Op) -> None:
        opts = op.record.get("opts") or {}
        try:
            policy = RetryPolicy.parse(opts.get("activity.retry_policy"))
            start_to_close = seconds("activity.start_to_close_timeout", opts.get("activity.start_to_close_timeout"))
            total = seconds("activity.schedule_to_close_timeout", opts.get("activity.schedule_to_close_timeout"))
        except WippyError as err:
            wf.input({"in": "done", "ref": op.seq, "e": err})
            return
        state = _Attempts(policy, start_to_close, time.monotonic() + total if total else None)
        self._live[(wf.run.run_id, op.seq)] = state
        self._attempt(wf, op, state)

    def _attempt(self, wf: Workflow, op: Op, state: _Attempts) -> None:
        state.timer = None
        if wf.closed:
            return
        state.attempt += 1
        record = op.record
        context = {**wf.context, **(record.get("ctx") or {})}
        timeout = state.start_to_close
        if state.deadline is not None:
            left = state.deadline - time.monotonic()
            timeout = left if timeout is None else min(timeout, left)
        options = {"timeout": max(timeout, 0.001) * 1000} if timeout is not None else None
        try:
            state.call = self.kernel.functions.start(
                record["key"], self.kernel.lua_args(record.get("args") or []), context, options,
                lambda ok, value: self._done(wf, op, state, ok, value), owner=wf)
        except WippyError as err:
            self._finish(wf, op, None, err)

    def _done(self, wf: Workflow, op: Op, state: _Attempts, ok: bool, value: Any) -> None:
        state.call = None
        if wf.closed:
            return
        vm = self.kernel.vm
        if ok:
            self._finish(wf, op, vm.to_python(value, "activity result"), None)
            return
        error = vm.to_python(value, "activity error")
        if not isinstance(error, WippyError):
            error = WippyError("UNKNOWN", str(error))
        out_of_time = state.deadline is not None and time.monotonic() >= state.deadline
        if state.policy.retries(error, state.attempt) and not out_of_time:
            delay = state.policy.delay(state.attempt)
            if state.deadline is not None:
                delay = min(delay, max(0.0, state.deadline - time.monotonic()))
            log.info("%s: activity %s attempt %d failed (%s); retrying in %.3gs",
                     wf.describe(), op.record["key"], state.attempt, error, delay)
            state.timer = self.kernel.scheduler.loop.call_later(delay, self._attempt, wf, op, state)
            return
        if out_of_time and error.kind != TIMEOUT:
            error = WippyError(TIMEOUT, f"activity {op.record['key']} exceeded its schedule_to_close_timeout "
                                        f"(last error: {error})", retryable=False)
        self._finish(wf, op, None, error)

    def _finish(self, wf: Workflow, op: Op, value: Any, error: WippyError | None) -> None:
        self._live.pop((wf.run.run_id, op.seq), None)
        record: dict[str, Any] = {"in": "done", "ref": op.seq}
        if error is not None:
            record["e"] = error
        else:
            record["v"] = value
        wf.input(record)

    def cancel(self, wf: Workflow, op: Op) -> None:
        state = self._live.pop((wf.run.run_id, op.seq), None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        if state.call is not None:
            call, state.call = state.call, None
            call.close()
