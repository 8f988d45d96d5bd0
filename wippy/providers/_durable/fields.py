"""The YAML fields of the durable providers' kinds (``workflow.host``, ``temporal.client``,
``temporal.worker``), so ``wippy check`` reports unknown and mistyped ones with a "did you
mean" (see :mod:`wippy.registry.schema`).

Only the tables: what a value must look like beyond its type (an address, a PEM, a client
that exists) stays in each kind's ``validate``. Both providers import from here, neither
from the other. A field marked ``ignored`` is an upstream field this runtime accepts
without acting on it; ``wippy check`` shows a warning saying why.
"""

from __future__ import annotations

from wippy.registry.schema import BOOL, DURATION, INT, LIMITS, MAP, NUMBER, STRING, Field

_STORE = Field(STRING, doc='the SQLite journal: a path relative to the project root, or ":memory:"')

WORKFLOW_HOST_FIELDS: dict[str, Field] = {
    "store": _STORE,
    "task_queue": Field(STRING, doc="the name workflows may use for this host when they start children"),
    "limits": LIMITS,
}

_PEM = {  # <base>_pem (inline), <base>_pem_env (a variable holding it), <base>_file
    f"{base}_{suffix}": Field(STRING) for base in ("cert", "key", "ca") for suffix in ("pem", "pem_env", "file")
}

TEMPORAL_CLIENT_FIELDS: dict[str, Field] = {
    "address": Field(STRING, doc="host:port of the Temporal frontend (default localhost:7233)"),
    "namespace": Field(STRING),
    "tq_prefix": Field(STRING, doc="prefixed to every task queue name"),
    "connection_timeout": Field(DURATION),
    "keep_alive_time": Field(DURATION),
    "keep_alive_timeout": Field(DURATION),
    "keep_alive": Field(MAP, also=(BOOL,), fields={"interval": Field(DURATION), "timeout": Field(DURATION)}),
    "keepalive": Field(MAP, also=(BOOL,), fields={"interval": Field(DURATION), "timeout": Field(DURATION)}),
    "auth": Field(MAP, fields={
        "type": Field(STRING, choices=("none", "api_key", "mtls")),
        "api_key": Field(STRING), "api_key_env": Field(STRING), "api_key_file": Field(STRING),
        **{k: v for k, v in _PEM.items() if not k.startswith("ca_")},
    }),
    "tls": Field(MAP, also=(BOOL,), fields={
        "enabled": Field(BOOL),
        "server_name": Field(STRING),
        "insecure_skip_verify": Field(BOOL, ignored="the Temporal Python SDK always verifies the server "
                                                    "certificate (set tls.ca_file to trust a private CA)"),
        **{k: v for k, v in _PEM.items() if k.startswith("ca_")},
    }),
    "health_check": Field(MAP, fields={"enabled": Field(BOOL), "interval": Field(DURATION)},
                          ignored="there is no periodic health check; a lost connection is retried in the "
                                  "background"),
}

_GO_ONLY = "a Go SDK option; the Temporal Python SDK has no equivalent"

# Upstream's names (Go SDK worker.Options) and the Python SDK's names this runtime accepted
# first. Which Python Worker argument each upstream name becomes is the worker's business.
WORKER_OPTIONS: dict[str, Field] = {
    # upstream (Go) names
    "identity": Field(STRING),
    "max_concurrent_activity_execution_size": Field(INT),
    "max_concurrent_workflow_task_execution_size": Field(INT),
    "max_concurrent_local_activity_execution_size": Field(INT),
    "max_concurrent_session_execution_size": Field(INT, ignored=_GO_ONLY + " (sessions)"),
    "max_concurrent_eager_activity_execution_size": Field(INT, ignored=_GO_ONLY),
    "max_concurrent_activity_task_pollers": Field(INT),
    "max_concurrent_workflow_task_pollers": Field(INT),
    "worker_activities_per_second": Field(NUMBER),
    "worker_local_activities_per_second": Field(NUMBER, ignored=_GO_ONLY),
    "task_queue_activities_per_second": Field(NUMBER),
    "sticky_schedule_to_start_timeout": Field(DURATION),
    "worker_stop_timeout": Field(DURATION),
    "deadlock_detection_timeout": Field(DURATION, ignored="the Python SDK's deadlock timeout is fixed"),
    "max_heartbeat_throttle_interval": Field(DURATION),
    "default_heartbeat_throttle_interval": Field(DURATION),
    "enable_logging_in_replay": Field(BOOL, ignored=_GO_ONLY),
    "enable_session_worker": Field(BOOL, ignored=_GO_ONLY + " (sessions)"),
    "disable_workflow_worker": Field(BOOL),
    "local_activity_worker_only": Field(BOOL),
    "disable_eager_activities": Field(BOOL),
    "disable_registration_aliasing": Field(BOOL, ignored=_GO_ONLY),
    "use_versioning": Field(BOOL),
    "deployment_name": Field(STRING),
    "build_id": Field(STRING),
    "build_id_env": Field(STRING),
    "default_versioning_behavior": Field(STRING, choices=("pinned", "auto_upgrade")),
    # Python SDK names
    "max_concurrent_activities": Field(INT),
    "max_concurrent_workflow_tasks": Field(INT),
    "max_concurrent_local_activities": Field(INT),
    "max_concurrent_workflow_task_polls": Field(INT),
    "max_concurrent_activity_task_polls": Field(INT),
    "max_activities_per_second": Field(NUMBER),
    "max_task_queue_activities_per_second": Field(NUMBER),
    "max_cached_workflows": Field(INT),
    "sticky_queue_schedule_to_start_timeout": Field(DURATION),
    "graceful_shutdown_timeout": Field(DURATION),
}

TEMPORAL_WORKER_FIELDS: dict[str, Field] = {
    "client": Field(doc="the temporal.client entry (checked by the kind's validate)"),
    "task_queue": Field(STRING),
    "workflow_task_timeout": Field(DURATION),
    "worker_options": Field(MAP, fields=WORKER_OPTIONS),
    "limits": LIMITS,
}

__all__ = ["TEMPORAL_CLIENT_FIELDS", "TEMPORAL_WORKER_FIELDS", "WORKER_OPTIONS", "WORKFLOW_HOST_FIELDS"]
