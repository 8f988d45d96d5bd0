"""Start and activity options (parsed by :mod:`wippy.providers._durable.options`, as on
``workflow.host``) as the Temporal SDK's arguments."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from wippy.providers._durable.options import ActivityOptions, RetryPolicy, StartOptions

if TYPE_CHECKING:
    from wippy.providers.temporal.worker import TemporalWorkerHost

DEFAULT_ACTIVITY_TIMEOUT = timedelta(minutes=10)

_CONFLICT = {"use_existing": WorkflowIDConflictPolicy.USE_EXISTING, "fail": WorkflowIDConflictPolicy.FAIL,
             "terminate_existing": WorkflowIDConflictPolicy.TERMINATE_EXISTING}
_REUSE = {"allow_duplicate": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
          "allow_duplicate_failed_only": WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          "reject_duplicate": WorkflowIDReusePolicy.REJECT_DUPLICATE}
_PARENT_CLOSE = {"terminate": workflow.ParentClosePolicy.TERMINATE, "abandon": workflow.ParentClosePolicy.ABANDON,
                 "request_cancel": workflow.ParentClosePolicy.REQUEST_CANCEL}


def _delta(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None


def retry_policy(policy: RetryPolicy) -> TemporalRetryPolicy:
    return TemporalRetryPolicy(
        initial_interval=timedelta(seconds=policy.initial_interval),
        backoff_coefficient=policy.backoff_coefficient,
        maximum_interval=_delta(policy.maximum_interval),
        maximum_attempts=policy.maximum_attempts,
        non_retryable_error_types=list(policy.non_retryable_error_types),
    )


def activity_options(opts: dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments of ``workflow.execute_activity`` for ``activity.*`` options; an
    activity without a timeout gets :data:`DEFAULT_ACTIVITY_TIMEOUT` start-to-close."""
    parsed = ActivityOptions.parse(opts)
    out: dict[str, Any] = {}
    for name, value in (("start_to_close_timeout", parsed.start_to_close),
                        ("schedule_to_close_timeout", parsed.schedule_to_close),
                        ("heartbeat_timeout", parsed.heartbeat)):
        if value:
            out[name] = timedelta(seconds=value)
    if not parsed.start_to_close and not parsed.schedule_to_close:
        out["start_to_close_timeout"] = DEFAULT_ACTIVITY_TIMEOUT
    if parsed.retry_policy is not None:
        out["retry_policy"] = retry_policy(parsed.retry_policy)
    return out


def _task_timeout(host: TemporalWorkerHost, options: StartOptions) -> timedelta | None:
    """The run's workflow task timeout: its own option, else the worker's setting."""
    return _delta(options.task_timeout or host.task_timeout)


def child_options(host: TemporalWorkerHost, options: StartOptions, workflow_id: str) -> dict[str, Any]:
    """Keyword arguments of ``workflow.start_child_workflow`` for a child of ``host``."""
    out: dict[str, Any] = {"id": workflow_id, "task_queue": host.task_queue,
                           "parent_close_policy": _PARENT_CLOSE[options.parent_close_policy]}
    for name, value in (("execution_timeout", _delta(options.execution_timeout)),
                        ("run_timeout", _delta(options.run_timeout)),
                        ("task_timeout", _task_timeout(host, options))):
        if value is not None:
            out[name] = value
    if options.memo:
        out["memo"] = options.memo
    return out


def start_options(host: TemporalWorkerHost, options: StartOptions, workflow_id: str) -> dict[str, Any]:
    """Keyword arguments of ``Client.start_workflow`` for a start through ``host`` (but
    ``search_attributes``: they are checked against the namespace's types when it starts)."""
    out: dict[str, Any] = {
        "id": workflow_id, "task_queue": options.task_queue or host.task_queue,
        "id_conflict_policy": _CONFLICT[options.conflict_policy],
        "id_reuse_policy": _REUSE[options.reuse_policy],
    }
    for name, value in (("execution_timeout", _delta(options.execution_timeout)),
                        ("run_timeout", _delta(options.run_timeout)),
                        ("start_delay", _delta(options.start_delay)),
                        ("task_timeout", _task_timeout(host, options))):
        if value is not None:
            out[name] = value
    if options.memo:
        out["memo"] = options.memo
    if options.eager_start:
        out["request_eager_start"] = True
    if options.cron_schedule:
        out["cron_schedule"] = str(options.cron_schedule)
    policy = options.retry()
    if policy is not None:
        out["retry_policy"] = retry_policy(policy)
    return out
