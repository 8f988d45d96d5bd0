"""Options of durable work, parsed and checked in one place for both durable providers.

- :class:`StartOptions`: how a workflow starts (``process.with_options``). Upstream's
  canonical ``workflow.*`` keys and their legacy ``temporal.workflow.*`` aliases are both
  accepted (the canonical key wins when both are given), so code written for Temporal runs
  unchanged on ``workflow.host``; the short forms (``id``, ``id_conflict_policy``, ...) work
  too. ``retry_policy`` and ``cron_schedule`` are kept
  as written by :meth:`StartOptions.parse`; :meth:`StartOptions.retry` and
  :meth:`StartOptions.schedule` parse them, and :meth:`StartOptions.check_durable` checks
  everything a provider that carries the options out itself (``workflow.host``) acts on.
- :class:`ActivityOptions`: how an activity runs (``funcs.new():with_options``):
  ``activity.start_to_close_timeout``, ``activity.schedule_to_close_timeout``,
  ``activity.heartbeat_timeout`` and ``activity.retry_policy``, each also under its legacy
  ``temporal.activity.*`` name (:func:`option`).
- :class:`RetryPolicy`: an activity's or a workflow's retry policy, with Temporal's fields
  (snake_case or camelCase, as upstream reads them) and defaults: ``initial_interval`` (1s),
  ``backoff_coefficient`` (2, at least 1), ``maximum_interval`` (100 x
  ``initial_interval``), ``maximum_attempts`` (0 = unlimited) and
  ``non_retryable_error_types`` (error kinds never retried). As on Temporal, an error is
  retried unless it says ``retryable == false`` (an error that says nothing is retried).

Durations are duration strings (``"5m"``) or numbers of milliseconds (:func:`seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wippy.durations import parse_duration
from wippy.errors import INVALID, WippyError
from wippy.providers._durable import cron

PREFIX = "temporal.workflow."
CANONICAL = "workflow."
LEGACY = "temporal."
CONFLICT_POLICIES = ("use_existing", "fail", "terminate_existing")
REUSE_POLICIES = ("allow_duplicate", "allow_duplicate_failed_only", "reject_duplicate")
PARENT_CLOSE_POLICIES = ("terminate", "abandon", "request_cancel")
KNOWN = {
    "id", "task_queue", "execution_timeout", "run_timeout", "task_timeout", "id_conflict_policy",
    "id_reuse_policy", "execution_error_when_already_started", "retry_policy", "cron_schedule",
    "memo", "search_attributes", "enable_eager_start", "start_delay", "parent_close_policy",
    "wait_for_cancellation", "namespace",
}


def option(opts: dict[str, Any], name: str) -> Any:
    """The option ``name`` (canonical, e.g. ``activity.retry_policy``), else its legacy
    ``temporal.``-prefixed alias, else None."""
    value = opts.get(name)
    return opts.get(LEGACY + name) if value is None else value


def _field(raw: dict[str, Any], snake: str) -> Any:
    """A retry-policy field by its snake_case name, its camelCase name, or either in any
    letter case (as upstream looks them up)."""
    camel = snake.split("_")[0] + "".join(part.title() for part in snake.split("_")[1:])
    for key in (snake, camel):
        if key in raw:
            return raw[key]
    for key, value in raw.items():
        if isinstance(key, str) and key.lower() in (snake, camel.lower()):
            return value
    return None


def seconds(name: str, value: Any) -> float | None:
    """A duration option: a string like "5m" or a number of milliseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000
    if isinstance(value, str):
        return parse_duration(value)
    raise WippyError(INVALID, f"start option {name} must be a duration string or milliseconds")


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
        attempts = _field(raw, "maximum_attempts")
        if attempts is None:
            attempts = 0
        if not isinstance(attempts, int) or attempts < 0:
            raise WippyError(INVALID, f"{what}.maximum_attempts must be a non-negative integer")
        kinds = _field(raw, "non_retryable_error_types") or []
        if isinstance(kinds, str):  # one kind (upstream takes a string or a list)
            kinds = [kinds]
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise WippyError(INVALID, f"{what}.non_retryable_error_types must be a list of error kinds")
        coefficient = _field(raw, "backoff_coefficient")
        if coefficient is None:
            coefficient = 2.0
        if not isinstance(coefficient, (int, float)) or coefficient < 1:
            raise WippyError(INVALID, f"{what}.backoff_coefficient must be a number >= 1")
        return cls(
            initial_interval=seconds("initial_interval", _field(raw, "initial_interval")) or 1.0,
            backoff_coefficient=float(coefficient),
            maximum_interval=seconds("maximum_interval", _field(raw, "maximum_interval")),
            maximum_attempts=attempts,
            non_retryable_error_types=tuple(kinds),
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        cap = self.maximum_interval if self.maximum_interval is not None else 100 * self.initial_interval
        return min(self.initial_interval * self.backoff_coefficient ** (attempt - 1), cap)

    def retries(self, error: WippyError, attempt: int) -> bool:
        """Whether attempt ``attempt`` that failed with ``error`` is followed by another:
        unless the error says ``retryable == false`` or its kind is listed as non-retryable,
        and while attempts are left (Temporal's rule: an unknown retryable is retried)."""
        if error.retryable is False or error.kind in self.non_retryable_error_types:
            return False
        return self.maximum_attempts == 0 or attempt < self.maximum_attempts


@dataclass(frozen=True)
class ActivityOptions:
    """The ``activity.*`` options of one call; timeouts in seconds, None when not set."""

    start_to_close: float | None = None
    schedule_to_close: float | None = None
    heartbeat: float | None = None  # accepted; there is no heartbeat API yet
    retry_policy: RetryPolicy | None = None  # None: the provider's default policy

    @classmethod
    def parse(cls, opts: dict[str, Any] | None) -> ActivityOptions:
        if not opts:
            return _NO_ACTIVITY_OPTIONS
        raw_policy = option(opts, "activity.retry_policy")
        return cls(
            start_to_close=seconds("activity.start_to_close_timeout", option(opts, "activity.start_to_close_timeout")),
            schedule_to_close=seconds("activity.schedule_to_close_timeout",
                                      option(opts, "activity.schedule_to_close_timeout")),
            heartbeat=seconds("activity.heartbeat_timeout", option(opts, "activity.heartbeat_timeout")),
            retry_policy=None if raw_policy is None else RetryPolicy.parse(raw_policy),
        )


_NO_ACTIVITY_OPTIONS = ActivityOptions()


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
    task_timeout: float | None = None
    start_delay: float | None = None
    parent_close_policy: str = "terminate"
    task_queue: str | None = None
    eager_start: bool = False
    retry_policy: Any = None  # the table as written; see retry()
    cron_schedule: Any = None  # as written (a string, or None); see schedule()

    @classmethod
    def parse(cls, options: dict[str, Any]) -> StartOptions:
        opts: dict[str, Any] = {}
        # the short form, then the legacy temporal.workflow.X, then the canonical
        # workflow.X: a later form wins when a start gives more than one
        found: list[tuple[int, str, Any]] = []
        for key, value in options.items():
            if key.startswith(PREFIX):
                rank, short = 1, key[len(PREFIX):]
            elif key.startswith(CANONICAL):
                rank, short = 2, key[len(CANONICAL):]
            else:
                rank, short = 0, key
            if short in KNOWN and value is not None:
                found.append((rank, short, value))
        for _, short, value in sorted(found, key=lambda f: f[0]):
            opts[short] = value
        out = cls(raw=dict(options))
        if not opts:  # (the common case: nothing to check)
            return out
        if "id" in opts:
            if not isinstance(opts["id"], str) or not opts["id"]:
                raise WippyError(INVALID, "start option temporal.workflow.id must be a non-empty string")
            out.workflow_id = opts["id"]
        out.conflict_policy = _policy(opts, out.conflict_policy)
        out.reuse_policy = _choice(opts, "id_reuse_policy", REUSE_POLICIES, out.reuse_policy)
        out.parent_close_policy = _choice(opts, "parent_close_policy", PARENT_CLOSE_POLICIES,
                                          out.parent_close_policy)
        for name in ("search_attributes", "memo"):
            value = opts.get(name)
            if value is not None and not isinstance(value, dict):
                raise WippyError(INVALID, f"start option {name} must be a table")
        out.search = dict(opts.get("search_attributes") or {})
        out.memo = dict(opts.get("memo") or {})
        out.execution_timeout = seconds("execution_timeout", opts.get("execution_timeout"))
        out.run_timeout = seconds("run_timeout", opts.get("run_timeout"))
        out.task_timeout = seconds("task_timeout", opts.get("task_timeout"))
        out.start_delay = seconds("start_delay", opts.get("start_delay"))
        out.task_queue = opts.get("task_queue") or None
        out.eager_start = bool(opts.get("enable_eager_start"))
        out.retry_policy = opts.get("retry_policy")
        schedule = opts.get("cron_schedule")
        out.cron_schedule = (schedule.strip() or None) if isinstance(schedule, str) else schedule
        return out

    def retry(self) -> RetryPolicy | None:
        """The workflow's own retry policy, or None (a failed run is final)."""
        if self.retry_policy is None:
            return None
        return RetryPolicy.parse(self.retry_policy, "temporal.workflow.retry_policy")

    def schedule(self) -> cron.Schedule | None:
        """The workflow's cron schedule, or None (it runs once)."""
        if self.cron_schedule is None:
            return None
        if not isinstance(self.cron_schedule, str):
            raise WippyError(INVALID, "start option cron_schedule must be a string")
        return cron.parse(self.cron_schedule)

    def check_durable(self) -> StartOptions:
        """Raise INVALID unless the options a provider carries out itself are usable."""
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


def _choice(opts: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = opts.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise WippyError(INVALID, f"{name} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _policy(opts: dict[str, Any], default: str) -> str:
    """The ID conflict policy; ``execution_error_when_already_started`` means ``fail``."""
    if opts.get("execution_error_when_already_started") is True:
        opts = {**opts, "id_conflict_policy": "fail"}
    return _choice(opts, "id_conflict_policy", CONFLICT_POLICIES, default)
