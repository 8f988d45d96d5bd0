"""``temporal.worker`` ``worker_options``: upstream's (Go SDK) names and the Python SDK's
both become the Python ``Worker``'s arguments; wrong ones are INVALID naming the option."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("temporalio")

from temporalio.worker import PollerBehaviorSimpleMaximum  # noqa: E402

from wippy.errors import WippyError  # noqa: E402
from wippy.providers.temporal.worker_options import STICKY_DEFAULT, worker_settings  # noqa: E402


def test_upstream_names_map_to_worker_arguments() -> None:
    s = worker_settings("app:worker", {
        "max_concurrent_activity_execution_size": 7,
        "max_concurrent_workflow_task_execution_size": 3,
        "worker_activities_per_second": 2.5,
        "max_concurrent_workflow_task_pollers": 4,
        "worker_stop_timeout": "3s",
        "identity": "w-1",
    })
    kw = s.kwargs
    assert kw["max_concurrent_activities"] == 7
    assert kw["max_concurrent_workflow_tasks"] == 3
    assert kw["max_activities_per_second"] == 2.5
    assert kw["graceful_shutdown_timeout"] == timedelta(seconds=3)
    assert kw["identity"] == "w-1"
    pollers = [v for v in kw.values() if isinstance(v, PollerBehaviorSimpleMaximum)]
    assert [p.maximum for p in pollers] == [4]
    assert s.workflows is True


def test_zero_means_the_sdk_default_and_sticky_timeout_is_upstreams() -> None:
    s = worker_settings("app:worker", {"max_concurrent_activity_execution_size": 0,
                                       "worker_activities_per_second": 0})
    assert "max_concurrent_activities" not in s.kwargs
    assert "max_activities_per_second" not in s.kwargs
    assert s.kwargs["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=STICKY_DEFAULT)
    assert worker_settings("w", None).kwargs == {
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=STICKY_DEFAULT)}


def test_python_names_still_work() -> None:
    s = worker_settings("app:worker", {"max_concurrent_activities": 5})
    assert s.kwargs["max_concurrent_activities"] == 5


@pytest.mark.parametrize(("options", "words"), [
    ({"max_concurrent_activity_execution_size": 5, "max_concurrent_activities": 6},
     ["max_concurrent_activit"]),
    ({"max_concurrent_workflow_task_pollers": 1}, ["max_concurrent_workflow_task_pollers", "must not be 1"]),
    ({"worker_activities_per_second": -1}, ["worker_activities_per_second"]),
    ({"disable_workflow_worker": True, "local_activity_worker_only": True}, ["disable_workflow_worker"]),
    ({"use_versioning": True}, ["deployment_name"]),
    ({"worker_stop_timeout": "soon"}, ["worker_stop_timeout"]),
    ([1, 2], ["must be a mapping"]),
])
def test_wrong_options_are_invalid_naming_the_option(options: object, words: list[str]) -> None:
    with pytest.raises(WippyError) as caught:
        worker_settings("app:worker", options)
    err = caught.value
    assert err.kind == "Invalid"
    assert "app:worker" in err.message
    for word in words:
        assert word in err.message, err.message


def test_disable_workflow_worker_registers_no_workflows() -> None:
    assert worker_settings("w", {"disable_workflow_worker": True}).workflows is False
