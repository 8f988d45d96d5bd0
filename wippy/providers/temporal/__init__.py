"""``temporal.client`` and ``temporal.worker``: Lua workflows on a real Temporal server.

Needs the ``temporal`` extra (``pip install 'wippy[temporal]'``); nothing here imports
``temporalio`` until an entry of these kinds is validated or started."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.errors import WippyError
from wippy.providers._base import ProviderSpec
from wippy.providers._durable.fields import TEMPORAL_CLIENT_FIELDS, TEMPORAL_WORKER_FIELDS
from wippy.registry.kinds import SERVICE, KindSpec, all_of, require_ref

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry, Registry
    from wippy.registry.kinds import Report

REQUIRES = ("temporalio",)
INSTALL = "pip install 'wippy[temporal]'"


def _client(kernel: Kernel, entry: Entry) -> Any:
    from wippy.providers.temporal.client import TemporalClientService

    return TemporalClientService(kernel, entry)


def _worker(kernel: Kernel, entry: Entry) -> Any:
    from wippy.providers.temporal.worker import TemporalWorkerHost

    return TemporalWorkerHost(kernel, entry)


def _admin(entry: Entry, registry: Registry) -> Any:
    from wippy.providers.temporal.admin import TemporalAdmin

    return TemporalAdmin(entry, registry)


def _validate_client(entry: Entry, registry: Registry, report: Report) -> None:
    """Check the connection settings at load time (``wippy check``), not first at start."""
    from wippy.providers.temporal.client import ClientSettings

    try:
        ClientSettings(entry, registry.root)
    except WippyError as err:
        if "environment variable" in err.message:
            return  # secrets may exist only where the runtime runs: checked at start
        prefix = f"{entry.id}: "
        report(None, err.message[len(prefix):] if err.message.startswith(prefix) else err.message)


def _validate_worker_options(entry: Entry, registry: Registry, report: Report) -> None:
    """``worker_options`` as the worker will read them (``wippy check`` sees conflicts and
    upstream's rules; types are the declared fields' business)."""
    from wippy.providers.temporal.worker_options import worker_settings
    from wippy.registry.schema import check_value

    options = entry.data.get("worker_options")
    mistyped: list[str] = []
    check_value(options, TEMPORAL_WORKER_FIELDS["worker_options"], "worker_options", lambda f, m: mistyped.append(m))
    if options is None or mistyped:
        return  # (nothing to check, or reported by the declared fields already)
    try:
        worker_settings(entry.id, options)
    except WippyError as err:
        field, _, problem = err.message.removeprefix(f"{entry.id}: ").partition(": ")
        report(field, problem)


SPECS = (
    KindSpec("temporal.client", role=SERVICE, factory=_client, validate=_validate_client, fields=TEMPORAL_CLIENT_FIELDS,
             requires=REQUIRES, install=INSTALL, description="Temporal server connection"),
    ProviderSpec("temporal.worker", factory=_worker, admin=_admin, fields=TEMPORAL_WORKER_FIELDS,
                 validate=all_of(require_ref("client", ("temporal.client",)), _validate_worker_options), starts_after=("client",),
                 requires=REQUIRES, install=INSTALL, description="Temporal worker"),
)
