"""The HTTP entry kinds' YAML: declared fields, load-time checks and parsed configs.

Parents are referenced from ``meta`` (``meta.server`` of a router or static mount,
``meta.router`` of an endpoint); a bare name means the entry's own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wippy.durations import DurationError, parse_duration
from wippy.errors import INVALID, WippyError
from wippy.registry import Entry, Registry
from wippy.registry.kinds import Report
from wippy.registry.schema import BOOL, DURATION, ENTRY, INT, LIST, MAP, STRING, Field

SERVICE_KIND, ROUTER_KIND, ENDPOINT_KIND, STATIC_KIND = "http.service", "http.router", "http.endpoint", "http.static"
FS_KIND = "fs.directory"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
MIDDLEWARE = ("cors", "compress")  # wippy.http.middleware builds them (imported only by a running server)
DEFAULT_MAX_BODY = 125_829_120  # 120 MiB, upstream's per-request default
DEFAULT_IDLE = 75.0  # seconds a keep-alive connection may idle when no timeout is set

_STRINGS = Field(LIST, items=STRING)
SERVICE_FIELDS = {
    "addr": Field(STRING, required=True, doc='listen address: ":8080", "127.0.0.1:9090"'),
    "timeouts": Field(MAP, fields={"read": Field(DURATION), "write": Field(DURATION), "idle": Field(DURATION)}),
    "max_body": Field(INT, doc="largest request body in bytes (413 past it)"),
    "host": Field(MAP, fields={"buffer_size": Field(INT), "worker_count": Field(INT)},
                  doc="upstream's relay settings: accepted, not needed here"),
    "network": Field(ENTRY),
    "tls": Field(MAP),
}
ROUTER_FIELDS = {
    "prefix": Field(STRING),
    "middleware": _STRINGS,
    "options": Field(MAP),
    "post_middleware": _STRINGS,
    "post_options": Field(MAP),
}
ENDPOINT_FIELDS = {
    "method": Field(STRING, required=True, choices=METHODS),
    "path": Field(STRING, required=True),
    "func": Field(ENTRY, required=True),
}
STATIC_FIELDS = {
    "path": Field(STRING, required=True),
    "fs": Field(ENTRY, required=True),
    "static_options": Field(MAP, fields={"spa": Field(BOOL), "index": Field(STRING), "cache": Field(STRING)}),
    "middleware": _STRINGS,
    "options": Field(MAP),
}
FS_FIELDS = {
    "directory": Field(STRING, required=True, doc="a directory, relative to the project root"),
    "auto_init": Field(BOOL),
    "mode": Field(STRING),
}


# Load-time checks ------------------------------------------------------------------------
def _meta_ref(entry: Entry, key: str) -> str | None:
    ref = entry.meta.get(key)
    return entry.resolve(ref) if isinstance(ref, str) and ref else None


def _check_parent(entry: Entry, registry: Registry, report: Report, key: str, kind: str) -> None:
    ref = entry.meta.get(key)
    if not isinstance(ref, str) or not ref:
        report(f"meta.{key}", f"is required: the {kind} entry this {entry.kind} belongs to")
        return
    target_id = entry.resolve(ref)
    target = registry.get(target_id)
    if target is None:
        if target_id not in registry.broken:
            report(f"meta.{key}", f"refers to {target_id}, which does not exist")
    elif target.kind != kind:
        report(f"meta.{key}", f"refers to {target_id}, a {target.kind} entry; expected {kind}")


def _check_ref(entry: Entry, registry: Registry, report: Report, key: str, kinds: tuple[str, ...]) -> None:
    ref = entry.data.get(key)
    if not isinstance(ref, str) or not ref:
        return  # the declared field reports it
    target_id = entry.resolve(ref)
    target = registry.get(target_id)
    if target is None:
        if target_id not in registry.broken:
            report(key, f"refers to {target_id}, which does not exist")
    elif target.kind not in kinds:
        report(key, f"refers to {target_id}, a {target.kind} entry; expected {' or '.join(kinds)}")


def _check_middleware(entry: Entry, report: Report, key: str) -> None:
    names = entry.data.get(key)
    if not isinstance(names, list):
        return
    for i, name in enumerate(names):
        if isinstance(name, str) and name not in MIDDLEWARE:
            report(f"{key}[{i}]", f"middleware not found: {name} (this runtime has: {', '.join(sorted(MIDDLEWARE))})")


def _check_path(entry: Entry, report: Report) -> None:
    path = entry.data.get("path")
    if isinstance(path, str) and not path.startswith("/"):
        report("path", f"must start with '/', got {path!r}")


def validate_service(entry: Entry, registry: Registry, report: Report) -> None:
    addr = entry.data.get("addr")
    if isinstance(addr, str):
        try:
            parse_addr(addr)
        except WippyError as err:
            report("addr", err.message)
    tls = entry.data.get("tls")
    if isinstance(tls, dict) and tls.get("mode"):
        report("tls", "TLS termination is not supported by this runtime yet: put a TLS proxy in front")
    if entry.data.get("network"):
        report("network", "network overlays are not supported by this runtime")
    max_body = entry.data.get("max_body")
    if isinstance(max_body, int) and max_body <= 0:
        report("max_body", f"must be a positive number of bytes, got {max_body}")


def validate_router(entry: Entry, registry: Registry, report: Report) -> None:
    _check_parent(entry, registry, report, "server", SERVICE_KIND)
    _check_middleware(entry, report, "middleware")
    _check_middleware(entry, report, "post_middleware")


def validate_endpoint(entry: Entry, registry: Registry, report: Report) -> None:
    _check_parent(entry, registry, report, "router", ROUTER_KIND)
    _check_ref(entry, registry, report, "func", ("function.lua",))
    _check_path(entry, report)


def validate_static(entry: Entry, registry: Registry, report: Report) -> None:
    _check_parent(entry, registry, report, "server", SERVICE_KIND)
    _check_ref(entry, registry, report, "fs", (FS_KIND,))
    _check_path(entry, report)
    _check_middleware(entry, report, "middleware")
    options = entry.data.get("static_options")
    if isinstance(options, dict) and options.get("spa") and not options.get("index"):
        report("static_options.index", "is required when static_options.spa is true")


# Parsed configs --------------------------------------------------------------------------
def parse_addr(addr: str) -> tuple[str | None, int]:
    """``":8080"`` -> ``(None, 8080)`` (every interface); ``"127.0.0.1:0"`` -> a free port."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise WippyError(INVALID, f"must be host:port or :port (e.g. \":8080\"), got {addr!r}", retryable=False)
    host = host.strip("[]")
    return (host or None), int(port)


def _seconds(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw) or None  # a number of seconds, as lifecycle durations
    try:
        value = parse_duration(raw)
    except (DurationError, WippyError) as err:
        raise WippyError(INVALID, f"{where}: {err}", retryable=False) from None
    return value or None  # 0 disables


def _options(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in raw.items()}


@dataclass(frozen=True)
class ServiceConfig:
    host: str | None
    port: int
    read_timeout: float | None
    write_timeout: float | None
    idle_timeout: float
    max_body: int

    @classmethod
    def from_entry(cls, entry: Entry) -> ServiceConfig:
        addr = entry.data.get("addr")
        if not isinstance(addr, str):
            raise WippyError(INVALID, f"{entry.id}: addr is required", retryable=False)
        try:
            host, port = parse_addr(addr)
        except WippyError as err:
            raise WippyError(INVALID, f"{entry.id}: addr {err.message}", retryable=False) from None
        timeouts = entry.data.get("timeouts") or {}
        read = _seconds(timeouts.get("read"), f"{entry.id}: timeouts.read")
        idle = _seconds(timeouts.get("idle"), f"{entry.id}: timeouts.idle")
        max_body = entry.data.get("max_body")
        return cls(
            host=host,
            port=port,
            read_timeout=read,
            write_timeout=_seconds(timeouts.get("write"), f"{entry.id}: timeouts.write"),
            idle_timeout=idle or read or DEFAULT_IDLE,  # Go: idle defaults to read
            max_body=max_body if isinstance(max_body, int) and max_body > 0 else DEFAULT_MAX_BODY,
        )


@dataclass(frozen=True)
class RouterConfig:
    id: str
    prefix: str
    middleware: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    post_middleware: tuple[str, ...] = ()
    post_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Entry) -> RouterConfig:
        data = entry.data
        prefix = data.get("prefix") or ""
        prefix = "/" + str(prefix).strip("/") if str(prefix).strip("/") else ""
        return cls(
            id=entry.id,
            prefix=prefix,
            middleware=tuple(data.get("middleware") or ()),
            options=_options(data.get("options")),
            post_middleware=tuple(data.get("post_middleware") or ()),
            post_options=_options(data.get("post_options")),
        )


@dataclass(frozen=True)
class EndpointConfig:
    id: str
    router: str
    method: str
    path: str
    func: str

    @classmethod
    def from_entry(cls, entry: Entry) -> EndpointConfig:
        return cls(id=entry.id, router=_meta_ref(entry, "router") or "", method=str(entry.data["method"]).upper(),
                   path=str(entry.data["path"]), func=entry.resolve(str(entry.data["func"])))


@dataclass(frozen=True)
class StaticConfig:
    id: str
    path: str
    directory: str
    spa: bool = False
    index: str | None = None
    cache: str | None = None
    middleware: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Entry, registry: Registry) -> StaticConfig:
        data = entry.data
        fs_id = entry.resolve(str(data.get("fs")))
        fs = registry.get(fs_id)
        if fs is None or not isinstance(fs.data.get("directory"), str):
            raise WippyError(INVALID, f"{entry.id}: filesystem not found: {fs_id}", retryable=False)
        raw_options = data.get("options")
        legacy: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
        opts = {**{k: legacy[k] for k in ("spa", "index", "cache") if k in legacy},
                **(data.get("static_options") or {})}
        directory = fs.data["directory"]
        return cls(
            id=entry.id,
            path="/" + str(data.get("path", "/")).strip("/"),
            directory=str((registry.root / directory) if not directory.startswith("/") else directory),
            spa=bool(opts.get("spa")),
            index=opts.get("index"),
            cache=opts.get("cache"),
            middleware=tuple(data.get("middleware") or ()),
            options={k: v for k, v in _options(legacy).items() if k not in ("spa", "index", "cache")},
        )


def belongs_to(entry: Entry, key: str, parent: str) -> bool:
    return _meta_ref(entry, key) == parent
