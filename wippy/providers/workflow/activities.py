"""Activities: the function calls a workflow makes, run live with retries and timeouts.

Options come from ``funcs.new():with_options{...}`` with the upstream keys, parsed by
:class:`wippy.providers._durable.options.ActivityOptions` (``activity.start_to_close_timeout``,
``activity.schedule_to_close_timeout``, ``activity.heartbeat_timeout``, accepted but with no
heartbeat API yet, and ``activity.retry_policy``, each also as ``temporal.activity.*``).
Only the final outcome is recorded; attempts are not, so a restart retries from the first
one.

As on Temporal, a failed attempt is retried unless its error says ``retryable == false``,
and an activity with no function entry behind it fails each attempt with a *retryable*
NotFound (on Temporal it may be registered by a worker deployed later), so it is retried
per the policy too.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from wippy.errors import NOT_FOUND, TIMEOUT, WippyError
from wippy.providers._durable.options import ActivityOptions, RetryPolicy
from wippy.providers.workflow import history

if TYPE_CHECKING:
    from wippy.providers.workflow.execution import Op, Workflow
    from wippy.providers.workflow.host import WorkflowHost

log = logging.getLogger("wippy.workflow")


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
        try:
            options = ActivityOptions.parse(op.record.get("opts"))
        except WippyError as err:
            wf.input(history.done(op.seq, error=err))
            return
        total = options.schedule_to_close
        state = _Attempts(options.retry_policy or RetryPolicy(), options.start_to_close,
                          time.monotonic() + total if total else None)
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
        args, op.lua_args = op.lua_args, None  # (an attempt may change its arguments: one use)
        if args is None:
            args = self.kernel.lua_args(record.get("args") or [])
        try:
            state.call = self.kernel.functions.start(
                record["key"], args, context, options,
                lambda ok, value: self._done(wf, op, state, ok, value), owner=wf)
        except WippyError as err:
            if err.kind != NOT_FOUND:  # a bad call (e.g. not a function): the same every time
                self._finish(wf, op, None, err)
                return
            self._failed(wf, op, state, WippyError(NOT_FOUND, f"activity {record['key']} is not registered: "
                                                              f"{err.message}", retryable=True))

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
            error = WippyError("", str(error))
        self._failed(wf, op, state, error)

    def _failed(self, wf: Workflow, op: Op, state: _Attempts, error: WippyError) -> None:
        """Attempt ``state.attempt`` failed with ``error``: retry, or finish with it."""
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
        if error is not None:
            wf.input(history.done(op.seq, error=error))
        else:
            wf.input(history.done(op.seq, value))

    def cancel(self, wf: Workflow, op: Op) -> None:
        state = self._live.pop((wf.run.run_id, op.seq), None)
        if state is None:
            return
        if state.timer is not None:
            state.timer.cancel()
        if state.call is not None:
            call, state.call = state.call, None
            call.close()
