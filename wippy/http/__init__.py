"""HTTP entry kinds: ``http.service`` (a server), ``http.router``, ``http.endpoint``,
``http.static``, and the ``fs.directory`` a static mount serves from.

A plugin like any provider: the kinds are published in the ``wippy.providers`` entry-point
group, and the core never imports this package. Only ``http.service`` runs (it reads its
routers, endpoints and mounts from the registry when it starts); the others are
configuration. See docs/http.md.
"""

from __future__ import annotations

from typing import Any

from wippy.http.config import (
    ENDPOINT_FIELDS,
    ENDPOINT_KIND,
    FS_FIELDS,
    FS_KIND,
    ROUTER_FIELDS,
    ROUTER_KIND,
    SERVICE_FIELDS,
    SERVICE_KIND,
    STATIC_FIELDS,
    STATIC_KIND,
    validate_endpoint,
    validate_router,
    validate_service,
    validate_static,
)
from wippy.registry.kinds import DATA, SERVICE, KindSpec


def _service(kernel: Any, entry: Any) -> Any:
    from wippy.http.server import HttpService  # aiohttp is imported only when a server starts

    return HttpService(kernel, entry)


SPECS = [
    KindSpec(SERVICE_KIND, role=SERVICE, factory=_service, validate=validate_service, fields=SERVICE_FIELDS,
             description="HTTP server", requires=("aiohttp",), install="pip install aiohttp"),
    KindSpec(ROUTER_KIND, role=DATA, validate=validate_router, fields=ROUTER_FIELDS,
             description="HTTP router (prefix and middleware) of an http.service"),
    KindSpec(ENDPOINT_KIND, role=DATA, validate=validate_endpoint, fields=ENDPOINT_FIELDS,
             description="HTTP route answered by a function"),
    KindSpec(STATIC_KIND, role=DATA, validate=validate_static, fields=STATIC_FIELDS,
             description="static files mounted on an http.service"),
    KindSpec(FS_KIND, role=DATA, fields=FS_FIELDS, description="a directory of files (served by http.static)"),
]

__all__ = ["SPECS"]
