"""Start options for workflows: ``process.with_options`` keys, Temporal-style.

The ``temporal.workflow.*`` keys of the upstream docs are accepted as written, so code
written for Temporal runs unchanged here; the short forms (``id``, ``id_conflict_policy``,
...) work too.

``retry_policy`` and ``cron_schedule`` are kept as written by :meth:`StartOptions.parse`
(a Temporal worker hands them to the server); :meth:`StartOptions.check_durable` parses
them for ``workflow.host``, which carries them out itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wippy.durations import parse_duration
from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.providers.workflow.activities import RetryPolicy
    from wippy.providers.workflow.cron import Schedule

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
    retry_policy: Any = None  # the table as written; see retry()
    cron_schedule: Any = None  # as written (a string, or None); see schedule()

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
        out.retry_policy = opts.get("retry_policy")
        cron = opts.get("cron_schedule")
        out.cron_schedule = (cron.strip() or None) if isinstance(cron, str) else cron
        return out

    def retry(self) -> RetryPolicy | None:
        """The workflow's own retry policy, or None (a failed run is final)."""
        if self.retry_policy is None:
            return None
        from wippy.providers.workflow.activities import RetryPolicy

        return RetryPolicy.parse(self.retry_policy, "temporal.workflow.retry_policy")

    def schedule(self) -> Schedule | None:
        """The workflow's cron schedule, or None (it runs once)."""
        if self.cron_schedule is None:
            return None
        if not isinstance(self.cron_schedule, str):
            raise WippyError(INVALID, "start option cron_schedule must be a string")
        from wippy.providers.workflow import cron

        return cron.parse(self.cron_schedule)

    def check_durable(self) -> StartOptions:
        """Raise INVALID unless the options workflow.host acts on are usable."""
        self.retry()
        self.schedule()
        if self.cron_schedule is not None and self.start_delay:
            raise WippyError(INVALID, "start options cron_schedule and start_delay cannot be used together "
                                      "(a cron workflow starts at its first scheduled time)")
        for name in ("execution_timeout", "run_timeout", "start_delay"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise WippyError(INVALID, f"start option {name} must not be negative")
        return self
