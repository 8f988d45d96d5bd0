"""``workflow.host``: durable workflows on an embedded SQLite journal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.providers._base import ProviderSpec
from wippy.providers._durable.fields import WORKFLOW_HOST_FIELDS

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry, Registry
    from wippy.registry.kinds import Report


def _host(kernel: Kernel, entry: Entry) -> Any:
    from wippy.providers.workflow.host import WorkflowHost  # imported when first started

    return WorkflowHost(kernel, entry)


def _admin(entry: Entry, registry: Registry) -> Any:
    from wippy.providers.workflow.admin import JournalAdmin

    return JournalAdmin(entry, registry)


def _validate(entry: Entry, registry: Registry, report: Report) -> None:
    store = entry.data.get("store")
    if store is not None and not isinstance(store, str):
        report("store", "must be a file path or \":memory:\"")
    queue = entry.data.get("task_queue")
    if queue is not None and (not isinstance(queue, str) or not queue):
        report("task_queue", "must be a non-empty string")


SPEC = ProviderSpec("workflow.host", factory=_host, admin=_admin, validate=_validate, fields=WORKFLOW_HOST_FIELDS,
                    description="embedded durable workflow host")
