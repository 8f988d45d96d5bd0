"""``temporal.worker`` ``worker_options`` as the Python SDK ``Worker``'s arguments.

Both spellings work: upstream's (the Go SDK's ``worker.Options``, e.g.
``max_concurrent_activity_execution_size``) and the Python SDK's
(``max_concurrent_activities``); giving both for one setting is an error. As upstream, a
size, poller count, rate or duration of 0 means the SDK's default, and
``sticky_schedule_to_start_timeout`` defaults to upstream's 5s. Options the Python SDK has
no equivalent for (the fields marked ``ignored`` in
:data:`wippy.providers._durable.fields.WORKER_OPTIONS`) are accepted and reported as
warnings. Upstream's checks apply: ``max_concurrent_workflow_task_pollers`` must not be 1,
rates must not be negative, and ``disable_workflow_worker`` excludes
``local_activity_worker_only``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from wippy.errors import INVALID, WippyError
from wippy.providers._durable.fields import WORKER_OPTIONS
from wippy.providers._durable.options import seconds
from wippy.registry.schema import describe_value

# upstream name -> Python Worker argument, for the ones that only change names
SIZES = {
    "max_concurrent_activity_execution_size": "max_concurrent_activities",
    "max_concurrent_workflow_task_execution_size": "max_concurrent_workflow_tasks",
    "max_concurrent_local_activity_execution_size": "max_concurrent_local_activities",
}
RATES = {
    "worker_activities_per_second": "max_activities_per_second",
    "task_queue_activities_per_second": "max_task_queue_activities_per_second",
}
DURATIONS = {
    "sticky_schedule_to_start_timeout": "sticky_queue_schedule_to_start_timeout",
    "worker_stop_timeout": "graceful_shutdown_timeout",
    "max_heartbeat_throttle_interval": "max_heartbeat_throttle_interval",
    "default_heartbeat_throttle_interval": "default_heartbeat_throttle_interval",
}
POLLERS = {
    "max_concurrent_activity_task_pollers": "activity_task_poller_behavior",
    "max_concurrent_workflow_task_pollers": "workflow_task_poller_behavior",
}
FLAGS = {
    "local_activity_worker_only": "no_remote_activities",
    "disable_eager_activities": "disable_eager_activity_execution",
}
# the Python SDK's own names, passed on as given (durations parsed)
PYTHON_INTS = ("max_concurrent_activities", "max_concurrent_workflow_tasks", "max_concurrent_local_activities",
               "max_concurrent_workflow_task_polls", "max_concurrent_activity_task_polls", "max_cached_workflows")
PYTHON_RATES = ("max_activities_per_second", "max_task_queue_activities_per_second")
PYTHON_DURATIONS = ("sticky_queue_schedule_to_start_timeout", "graceful_shutdown_timeout")
# Python names that set what an upstream poller option sets
_SAME_SETTING = {"max_concurrent_workflow_task_polls": "workflow_task_poller_behavior",
                 "max_concurrent_activity_task_polls": "activity_task_poller_behavior"}
VERSIONING = ("use_versioning", "deployment_name", "build_id", "build_id_env", "default_versioning_behavior")
STICKY_DEFAULT = 5.0  # seconds: upstream's sticky_schedule_to_start_timeout (the Python SDK's is 10s)


@dataclass
class WorkerSettings:
    """What ``worker_options`` make of the worker."""

    kwargs: dict[str, Any] = field(default_factory=dict)  # Worker(...) arguments
    workflows: bool = True  # False: disable_workflow_worker (register no workflows)
    warnings: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, where: str, given: Mapping[str, Any]) -> None:
        self.where = where
        self.given = given
        self.out = WorkerSettings()
        self.source: dict[str, str] = {}  # Worker argument -> the option that set it

    def fail(self, name: str, problem: str) -> WippyError:
        return WippyError(INVALID, f"{self.where}: worker_options.{name}: {problem}", retryable=False)

    def set(self, arg: str, name: str, value: Any, setting: str | None = None) -> None:
        """Worker argument ``arg`` = ``value``, from the option ``name``; one option per
        ``setting`` (by default the argument)."""
        setting = setting or arg
        other = self.source.get(setting)
        if other is not None:
            raise self.fail(name, f"sets what {other} sets ({setting} of the Python SDK); give one of them")
        self.source[setting] = name
        self.out.kwargs[arg] = value

    def integer(self, name: str) -> int:
        value = self.given[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"must be an integer, not {describe_value(value)}")
        return value

    def rate(self, name: str) -> float:
        value = self.given[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise self.fail(name, f"must be a number >= 0, not {describe_value(value)}")
        return float(value)

    def duration(self, name: str) -> float:
        try:
            value = seconds(name, self.given[name])
        except WippyError as err:
            raise self.fail(name, err.message) from None
        if value is None or value < 0:
            raise self.fail(name, f"must be a duration >= 0, not {describe_value(self.given[name])}")
        return value

    def flag(self, name: str) -> bool:
        value = self.given[name]
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {describe_value(value)}")
        return value

    def string(self, name: str) -> str:
        value = self.given[name]
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {describe_value(value)}")
        return value


def _upstream(p: _Parser) -> None:
    """The options under upstream's names that map onto a Worker argument."""
    from temporalio.worker import PollerBehaviorSimpleMaximum

    given = p.given
    if given.get("identity") is not None:
        p.set("identity", "identity", p.string("identity"))
    for name, arg in SIZES.items():
        if name in given and p.integer(name) > 0:  # 0 or less: the default, as upstream
            p.set(arg, name, given[name])
    for name, arg in RATES.items():
        if name in given and p.rate(name) > 0:  # 0: unlimited
            p.set(arg, name, p.rate(name))
    for name, arg in POLLERS.items():
        if name in given:
            count = p.integer(name)
            if count == 1 and name == "max_concurrent_workflow_task_pollers":
                raise p.fail(name, "must not be 1 (a worker needs at least 2 workflow task pollers: one for its "
                                   "sticky queue)")
            if count > 0:
                p.set(arg, name, PollerBehaviorSimpleMaximum(maximum=count))
    for name, arg in DURATIONS.items():
        if name in given and p.duration(name) > 0:
            p.set(arg, name, timedelta(seconds=p.duration(name)))
    for name, arg in FLAGS.items():
        if name in given and p.flag(name):
            p.set(arg, name, True)
    if "disable_workflow_worker" in given and p.flag("disable_workflow_worker"):
        if given.get("local_activity_worker_only") is True:
            raise p.fail("disable_workflow_worker", "cannot be used together with local_activity_worker_only "
                                                    "(local activities run only for this worker's workflows)")
        p.out.workflows = False


def _python(p: _Parser) -> None:
    """The options under the Python SDK's names (the first names this runtime took)."""
    given = p.given
    for name in PYTHON_INTS:
        if name in given:
            p.set(name, name, p.integer(name), _SAME_SETTING.get(name))
    for name in PYTHON_RATES:
        if name in given:
            p.set(name, name, p.rate(name))
    for name in PYTHON_DURATIONS:
        if name in given:
            p.set(name, name, timedelta(seconds=p.duration(name)))


def _versioning(p: _Parser, env: Callable[[str], str | None] | None) -> None:
    """``use_versioning`` with ``deployment_name``, ``build_id`` (or ``build_id_env``) and
    ``default_versioning_behavior`` -> ``deployment_config``; without it a ``build_id`` is
    the Python SDK's ``build_id`` (as before) and the rest has no effect."""
    from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
    from temporalio.worker import WorkerDeploymentConfig

    given = p.given
    for name in ("deployment_name", "build_id", "build_id_env", "default_versioning_behavior"):
        if given.get(name) is not None:
            p.string(name)
    build_id = given.get("build_id") or None
    if build_id is None and given.get("build_id_env") and env is not None:
        build_id = env(str(given["build_id_env"])) or None
    if not ("use_versioning" in given and p.flag("use_versioning")):
        if build_id is not None and given.get("build_id"):
            p.out.kwargs["build_id"] = build_id
        for name in ("deployment_name", "build_id_env", "default_versioning_behavior"):
            if given.get(name) is not None:
                p.out.warnings.append(f"worker_options.{name} has no effect without use_versioning: true")
        return
    deployment = given.get("deployment_name")
    if not deployment:
        raise p.fail("use_versioning", "needs deployment_name")
    if build_id is None:
        if env is None and given.get("build_id_env"):
            return  # checked at start, where the environment is
        raise p.fail("use_versioning", "needs build_id (or build_id_env naming a variable that is set)")
    behaviors = {"pinned": VersioningBehavior.PINNED, "auto_upgrade": VersioningBehavior.AUTO_UPGRADE}
    behavior = given.get("default_versioning_behavior")
    if behavior is not None and behavior not in behaviors:
        raise p.fail("default_versioning_behavior", f"must be pinned or auto_upgrade, not {describe_value(behavior)}")
    p.out.kwargs["deployment_config"] = WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=deployment, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=behaviors.get(behavior or "", VersioningBehavior.UNSPECIFIED),
    )


def worker_settings(where: str, given: Any, env: Callable[[str], str | None] | None = None) -> WorkerSettings:
    """The Worker arguments of the ``worker_options`` mapping ``given`` of the entry
    ``where``; INVALID naming the option when one is wrong. ``env`` looks up the variable
    ``build_id_env`` names (None: not checked, as at load time)."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise WippyError(INVALID, f"{where}: worker_options: must be a mapping, not {describe_value(given)}",
                         retryable=False)
    p = _Parser(where, given)
    _upstream(p)
    _python(p)
    _versioning(p, env)
    if "sticky_queue_schedule_to_start_timeout" not in p.out.kwargs:
        p.out.kwargs["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=STICKY_DEFAULT)
    for name in sorted(given):
        spec = WORKER_OPTIONS.get(name)
        if spec is not None and spec.ignored:
            p.out.warnings.append(f"worker_options.{name} has no effect: {spec.ignored}")
    return p.out
