"""``temporal.client``: a connection to a Temporal server, kept up in the background.

Starting never blocks the runtime on the network: the service connects in a task it
owns, retrying with back-off and logging a clear error while the server is unreachable.
Workers wait for :meth:`connected`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.service import KeepAliveConfig, TLSConfig

from wippy.durations import parse_duration
from wippy.errors import INVALID, UNAVAILABLE, WippyError
from wippy.providers.temporal.context import ContextInterceptor
from wippy.providers.temporal.converter import DATA_CONVERTER

if TYPE_CHECKING:
    from wippy.host.runtime import Runtime
    from wippy.registry import Entry

log = logging.getLogger("wippy.temporal")

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any, where: str) -> Any:
    """Replace ``${env:NAME}`` placeholders; a missing variable is an error naming it."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise WippyError(INVALID, f"{where}: environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where) for v in value]
    return value


def _pem(value: str | None, root: Path, what: str) -> bytes | None:
    """A PEM given inline or as a file path."""
    if value is None:
        return None
    if "-----BEGIN" in value:
        return value.encode()
    path = Path(value)
    path = path if path.is_absolute() else root / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WippyError(INVALID, f"{what}: cannot read {path}: {exc}") from None


class ClientSettings:
    """The ``temporal.client`` fields, validated."""

    def __init__(self, entry: Entry, root: Path) -> None:
        data = expand_env(dict(entry.data), entry.id)
        where = entry.id
        self.address = str(data.get("address", "localhost:7233"))
        self.namespace = str(data.get("namespace", "default"))
        self.tq_prefix = str(data.get("tq_prefix", ""))
        self.connection_timeout = parse_duration(str(data.get("connection_timeout", "10s")))
        keep = data.get("keep_alive") or data.get("keepalive")
        self.keep_alive: KeepAliveConfig | None = KeepAliveConfig.default
        if isinstance(keep, dict):
            self.keep_alive = KeepAliveConfig(
                interval_millis=int(parse_duration(str(keep.get("interval", "30s"))) * 1000),
                timeout_millis=int(parse_duration(str(keep.get("timeout", "15s"))) * 1000),
            )
        elif keep is False:
            self.keep_alive = None
        auth = data.get("auth") or {"type": "none"}
        tls = data.get("tls") or {}
        if not isinstance(auth, dict) or not isinstance(tls, dict):
            raise WippyError(INVALID, f"{where}: auth and tls must be mappings")
        kind = auth.get("type", "none")
        self.api_key: str | None = None
        client_cert = client_key = None
        if kind == "api_key":
            self.api_key = auth.get("api_key")
            key_file = auth.get("api_key_file")
            if not self.api_key and key_file:
                path = Path(key_file)
                path = path if path.is_absolute() else root / path
                try:
                    self.api_key = path.read_text().strip()
                except OSError as exc:
                    raise WippyError(INVALID, f"{where}: auth.api_key_file: cannot read {path}: {exc}") from None
            if not self.api_key:
                raise WippyError(INVALID, f"{where}: auth type api_key needs api_key or api_key_file")
        elif kind == "mtls":
            client_cert = _pem(auth.get("cert_file") or auth.get("cert_pem"), root, f"{where}: auth.cert")
            client_key = _pem(auth.get("key_file") or auth.get("key_pem"), root, f"{where}: auth.key")
            if not client_cert or not client_key:
                raise WippyError(INVALID, f"{where}: auth type mtls needs a certificate and a key (files or PEM)")
        elif kind != "none":
            raise WippyError(INVALID, f"{where}: auth.type {kind!r} is not one of none, api_key, mtls")
        self.tls: TLSConfig | bool = False
        if tls.get("enabled") or client_cert or self.api_key:
            if tls.get("insecure_skip_verify"):
                log.warning("%s: tls.insecure_skip_verify is not supported by the Temporal SDK; verifying", where)
            self.tls = TLSConfig(
                server_root_ca_cert=_pem(tls.get("ca_file"), root, f"{where}: tls.ca_file"),
                domain=tls.get("server_name"),
                client_cert=client_cert,
                client_private_key=client_key,
            )


class TemporalClientService:
    """The service behind a ``temporal.client`` entry."""

    def __init__(self, runtime: Runtime, entry: Entry) -> None:
        self.runtime = runtime
        self.entry = entry
        self.settings = ClientSettings(entry, runtime.registry.root)
        self.client: Client | None = None
        self._ready: asyncio.Event | None = None
        self._attempted: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        """Start connecting; wait for the first attempt so a reachable server is ready when
        start returns, but never fail: an unreachable one is retried in the background."""
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()
        self._task = asyncio.create_task(self._connect_loop(), name=f"connect {self.entry.id}")
        await self._attempted.wait()

    async def stop(self, timeout: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def connected(self, timeout: float | None = None) -> Client:
        """The client once connected; UNAVAILABLE after ``timeout`` seconds."""
        assert self._ready is not None, f"{self.entry.id} is not started"
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            self.require()  # raises with the last connection error
        assert self.client is not None
        return self.client

    def require(self) -> Client:
        if self.client is None:
            why = f" ({self.last_error})" if self.last_error else ""
            raise WippyError(UNAVAILABLE, f"{self.entry.id} is not connected to {self.settings.address} yet{why}",
                             retryable=True)
        return self.client

    async def _connect_loop(self) -> None:
        s = self.settings
        delay = 0.5
        while True:
            try:
                self.client = await asyncio.wait_for(Client.connect(
                    s.address, namespace=s.namespace, api_key=s.api_key, tls=s.tls,
                    keep_alive_config=s.keep_alive, data_converter=DATA_CONVERTER,
                    interceptors=[ContextInterceptor()],
                    identity=f"wippy@{os.getpid()}",
                ), s.connection_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = str(exc) or type(exc).__name__
                assert self._attempted is not None
                self._attempted.set()
                log.error("%s: cannot connect to Temporal at %s: %s; retrying in %.1fs",
                          self.entry.id, s.address, self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.last_error = None
            log.info("%s: connected to Temporal at %s (namespace %s)", self.entry.id, s.address, s.namespace)
            assert self._ready is not None and self._attempted is not None
            self._ready.set()
            self._attempted.set()
            return


def timedelta_of(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
