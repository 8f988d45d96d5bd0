"""Start options for workflows: ``process.with_options`` keys, Temporal-style.

The ``temporal.workflow.*`` keys of the upstream docs are accepted as written, so code
written for Temporal runs unchanged here; the short forms (``id``, ``id_conflict_policy``,
...) work too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wippy.durations import parse_duration
from wippy.errors import INVALID, WippyError

PREFIX = "temporal.workflow."
CONFLICT_POLICIES = ("use_existing", "fail", "terminate_existing")
REUSE_POLICIES = ("allow_duplicate", "allow_duplicate_failed_only", "reject_duplicate")
PARENT_CLOSE_POLICIES = ("terminate", "abandon", "request_cancel")
KNOWN = {
    "id", "task_queue", "execution_timeout", "run_timeout", "task_timeout", "id_conflict_policy",
    "id_reuse_policy", "execution_error_when_already_started", "retry_policy", "cron_schedule",
    "memo", "search_attributes", "enable_eager_start", "start_delay", "parent_close_policy",
    "wait_for_cancellation", "namespace",
}


def seconds(name: str, value: Any) -> float | None:
    """A duration option: a string like "5m" or a number of milliseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000
    if isinstance(value, str):
        return parse_duration(value)
    raise WippyError(INVALID, f"start option {name} must be a duration string or milliseconds")


@dataclass
class StartOptions:
    raw: dict[str, Any] = field(default_factory=dict)
    workflow_id: str | None = None
    conflict_policy: str = "use_existing"
    reuse_policy: str = "allow_duplicate"
    search: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)
    execution_timeout: float | None = None
    run_timeout: float | None = None
    start_delay: float | None = None
    parent_close_policy: str = "terminate"

    @classmethod
    def parse(cls, options: dict[str, Any]) -> StartOptions:
        opts: dict[str, Any] = {}
        for key, value in options.items():
            short = key[len(PREFIX):] if key.startswith(PREFIX) else key
            if short in KNOWN:
                opts[short] = value
        out = cls(raw=dict(options))
        if "id" in opts:
            if not isinstance(opts["id"], str) or not opts["id"]:
                raise WippyError(INVALID, "start option temporal.workflow.id must be a non-empty string")
            out.workflow_id = opts["id"]
        policy = opts.get("id_conflict_policy")
        if opts.get("execution_error_when_already_started") is True:
            policy = "fail"
        if policy is not None:
            if policy not in CONFLICT_POLICIES:
                raise WippyError(INVALID, f"id_conflict_policy {policy!r} is not one of {', '.join(CONFLICT_POLICIES)}")
            out.conflict_policy = policy
        reuse = opts.get("id_reuse_policy")
        if reuse is not None:
            if reuse not in REUSE_POLICIES:
                raise WippyError(INVALID, f"id_reuse_policy {reuse!r} is not one of {', '.join(REUSE_POLICIES)}")
            out.reuse_policy = reuse
        pcp = opts.get("parent_close_policy")
        if pcp is not None:
            if pcp not in PARENT_CLOSE_POLICIES:
                raise WippyError(INVALID, f"parent_close_policy {pcp!r} is not one of {', '.join(PARENT_CLOSE_POLICIES)}")
            out.parent_close_policy = pcp
        for name in ("search_attributes", "memo"):
            value = opts.get(name)
            if value is not None and not isinstance(value, dict):
                raise WippyError(INVALID, f"start option {name} must be a table")
        out.search = dict(opts.get("search_attributes") or {})
        out.memo = dict(opts.get("memo") or {})
        out.execution_timeout = seconds("execution_timeout", opts.get("execution_timeout"))
        out.run_timeout = seconds("run_timeout", opts.get("run_timeout"))
        out.start_delay = seconds("start_delay", opts.get("start_delay"))
        return out
