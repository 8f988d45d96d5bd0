"""``temporal.client``: a connection to a Temporal server, kept up in the background.

Starting never blocks the runtime on the network: the service connects in a task it
owns, retrying with back-off while the server is unreachable. The first failure is one
ERROR line naming the address, the reason and what to do (:func:`server_hint`); later
attempts log at DEBUG (at ERROR again when the reason changes). Workers wait for :meth:`TemporalClientService.connected`; a caller
that waits with a timeout (a spawn) gets a fresh attempt at once instead of the next one
of the back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
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
from wippy.providers.temporal.search import SearchAttributeTypes

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry

log = logging.getLogger("wippy.temporal")

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):([0-9]{1,5})$")
AUTH_TYPES = ("none", "api_key", "mtls")
FIRST_ATTEMPT_WAIT = 5.0  # seconds start() waits for a first connection attempt, at most
FRESH_ATTEMPT = 0.5  # seconds: an attempt that failed this recently answers a waiter without a new one
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")
# inside the transport's error text: `kind: ConnectionRefused, message: "Connection refused"`
_TRANSPORT_MESSAGE = re.compile(r'(?:message|error): "([^"]+)"')


def server_hint(address: str) -> str:
    """What to do about a Temporal server that does not answer at ``address``."""
    host, _, port = address.rpartition(":")
    if host.strip("[]").lower() in _LOCAL_HOSTS:
        command = "wippy temporal dev" + ("" if port == "7233" else f" --port {port}")
        return f"is it running? Start a local development server with `{command}`"
    return "check the temporal.client address and that the server is running and reachable"


def connect_error_text(exc: BaseException, timeout: float) -> str:
    """Why a connection attempt failed, in a few words: the SDK's text nests the
    transport's error (``tonic::transport::Error(Transport, ConnectError(...))``)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within connection_timeout {timeout:g}s"
    text = str(exc).strip() or type(exc).__name__
    if "tonic::transport" not in text:
        return text.removeprefix("Failed client connect: ")
    found = _TRANSPORT_MESSAGE.search(text)
    inner = found.group(1) if found else None
    if "dns error" in text:
        return f"cannot resolve the host name ({inner})" if inner else "cannot resolve the host name"
    if "InvalidContentType" in text or "InvalidMessage" in text:
        return "the TLS handshake failed (does the server use TLS? see the client's tls and auth fields)"
    if inner:
        return inner[:1].lower() + inner[1:]
    return text.split("tonic::transport::Error", 1)[1].strip("()") or text


def _fail(entry_id: str, field: str, problem: str) -> WippyError:
    return WippyError(INVALID, f"{entry_id}: {field}: {problem}", retryable=False)


def expand_env(value: Any, where: str, path: str = "") -> Any:
    """Replace ``${env:NAME}`` placeholders; a missing variable is an error naming the
    entry (``where``), the field and the variable."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise _fail(where, path or "value", f"environment variable {name} is not set")
            return os.environ[name]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, where, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _path(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _read(path: Path, entry_id: str, field: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(entry_id, field, f"cannot read {path}: {exc.strerror or exc}") from None
    if not data.strip():
        raise _fail(entry_id, field, f"{path} is empty")
    return data


def _pem(section: dict[str, Any], base: str, root: Path, entry_id: str, prefix: str) -> bytes | None:
    """A PEM from ``<base>_pem`` (inline, or from the variable named by ``<base>_pem_env``)
    or ``<base>_file``."""
    inline = section.get(f"{base}_pem")
    env_name = section.get(f"{base}_pem_env")  # deprecated upstream; same as ${env:NAME}
    file = section.get(f"{base}_file")
    if inline is None and env_name:
        if str(env_name) not in os.environ:
            raise _fail(entry_id, f"{prefix}.{base}_pem_env", f"environment variable {env_name} is not set")
        inline = os.environ[str(env_name)]
    if inline is not None:
        if not isinstance(inline, str) or "-----BEGIN" not in inline:
            raise _fail(entry_id, f"{prefix}.{base}_pem", "expected a PEM block (-----BEGIN ...)")
        return inline.encode()
    if file is not None:
        if not isinstance(file, str) or not file:
            raise _fail(entry_id, f"{prefix}.{base}_file", "expected a file path")
        return _read(_path(file, root), entry_id, f"{prefix}.{base}_file")
    return None


def _duration(data: dict[str, Any], key: str, default: str, entry_id: str, field: str | None = None) -> float:
    value = data.get(key, default)
    try:
        seconds = parse_duration(value)
    except WippyError as exc:
        raise _fail(entry_id, field or key, exc.message) from None
    if seconds <= 0:
        raise _fail(entry_id, field or key, f"must be a positive duration, not {value!r}")
    return seconds


class ClientSettings:
    """The ``temporal.client`` fields, validated. Every error names the entry and field."""

    def __init__(self, entry: Entry, root: Path) -> None:
        where = entry.id
        data = expand_env(dict(entry.data), where)
        address = data.get("address", "localhost:7233")
        if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
            raise _fail(where, "address", f"expected host:port (e.g. localhost:7233), not {address!r}")
        self.address = address.strip()
        namespace = data.get("namespace", "default")
        if not isinstance(namespace, str) or not namespace:
            raise _fail(where, "namespace", f"expected a non-empty string, not {namespace!r}")
        self.namespace = namespace
        tq_prefix = data.get("tq_prefix", "")
        if not isinstance(tq_prefix, str):
            raise _fail(where, "tq_prefix", f"expected a string, not {tq_prefix!r}")
        self.tq_prefix = tq_prefix
        self.connection_timeout = _duration(data, "connection_timeout", "10s", where)
        self.keep_alive = self._keep_alive(data, where)
        self.api_key: str | None = None
        self.tls: TLSConfig | bool = False
        self._auth(data, where, root)

    @staticmethod
    def _keep_alive(data: dict[str, Any], where: str) -> KeepAliveConfig | None:
        """``keep_alive_time`` / ``keep_alive_timeout`` (upstream's names), or a
        ``keep_alive: {interval, timeout}`` mapping; ``keep_alive: false`` turns it off."""
        keep = data.get("keep_alive", data.get("keepalive"))
        if keep is False:
            return None
        if keep is not None and not isinstance(keep, dict):
            raise _fail(where, "keep_alive", "expected a mapping {interval, timeout} or false")
        keep = keep or {}
        interval = _duration(keep, "interval", data.get("keep_alive_time", "30s"), where,
                             "keep_alive.interval" if "interval" in keep else "keep_alive_time")
        timeout = _duration(keep, "timeout", data.get("keep_alive_timeout", "10s"), where,
                            "keep_alive.timeout" if "timeout" in keep else "keep_alive_timeout")
        return KeepAliveConfig(interval_millis=int(interval * 1000), timeout_millis=int(timeout * 1000))

    def _auth(self, data: dict[str, Any], where: str, root: Path) -> None:
        auth = data.get("auth")
        tls = data.get("tls")
        if auth is None:
            auth = {"type": "none"}
        if not isinstance(auth, dict):
            raise _fail(where, "auth", "expected a mapping with a type (none, api_key or mtls)")
        if tls is None or isinstance(tls, bool):
            tls = {} if tls is None else {"enabled": tls}
        if not isinstance(tls, dict):
            raise _fail(where, "tls", "expected a mapping {enabled, ca_file, server_name, insecure_skip_verify}")
        kind = auth.get("type")
        if kind is None:
            credentials = [k for k in ("api_key", "api_key_file", "api_key_env", "cert_file", "cert_pem", "key_file",
                                       "key_pem") if k in auth]
            if credentials:
                raise _fail(where, "auth.type", f"is missing (one of {', '.join(AUTH_TYPES)}); auth has "
                                                f"{', '.join(credentials)}")
            kind = "none"
        client_cert = client_key = None
        if kind == "api_key":
            api_key = auth.get("api_key")
            if api_key is None and auth.get("api_key_env"):  # deprecated upstream; same as ${env:NAME}
                name = str(auth["api_key_env"])
                if name not in os.environ:
                    raise _fail(where, "auth.api_key_env", f"environment variable {name} is not set")
                api_key = os.environ[name]
            if api_key is None and auth.get("api_key_file") is not None:
                key_file = auth["api_key_file"]
                if not isinstance(key_file, str) or not key_file:
                    raise _fail(where, "auth.api_key_file", "expected a file path")
                api_key = _read(_path(key_file, root), where, "auth.api_key_file").decode().strip()
            if api_key is None:
                raise _fail(where, "auth", "type api_key needs api_key, api_key_file or api_key_env")
            if not isinstance(api_key, str) or not api_key.strip():
                raise _fail(where, "auth.api_key", "is empty")
            self.api_key = api_key.strip()
        elif kind == "mtls":
            client_cert = _pem(auth, "cert", root, where, "auth")
            client_key = _pem(auth, "key", root, where, "auth")
            if client_cert is None:
                raise _fail(where, "auth", "type mtls needs a client certificate: cert_file or cert_pem")
            if client_key is None:
                raise _fail(where, "auth", "type mtls needs the certificate's private key: key_file or key_pem")
        elif kind != "none":
            raise _fail(where, "auth.type", f"{kind!r} is not one of {', '.join(AUTH_TYPES)}")
        enabled = tls.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise _fail(where, "tls.enabled", f"expected true or false, not {enabled!r}")
        if enabled is False and kind == "mtls":
            raise _fail(where, "tls.enabled", "is false, but auth type mtls needs TLS")
        if enabled is False and any(tls.get(k) for k in ("ca_file", "ca_pem", "server_name")):
            log.warning("%s: tls.enabled is false; the other tls fields are ignored", where)
        # TLS is on when asked for, for mTLS, and for API keys unless turned off explicitly
        # (Temporal Cloud needs it; a local server behind an API-key proxy may not)
        if enabled or kind == "mtls" or (kind == "api_key" and enabled is None):
            if tls.get("insecure_skip_verify"):
                log.warning("%s: tls.insecure_skip_verify is not supported by the Temporal Python SDK; the "
                            "server certificate is verified (set tls.ca_file to trust a private CA)", where)
            server_name = tls.get("server_name")
            if server_name is not None and (not isinstance(server_name, str) or not server_name):
                raise _fail(where, "tls.server_name", f"expected a host name, not {server_name!r}")
            self.tls = TLSConfig(
                server_root_ca_cert=_pem(tls, "ca", root, where, "tls"),
                domain=server_name,
                client_cert=client_cert,
                client_private_key=client_key,
            )


class TemporalClientService:
    """The service behind a ``temporal.client`` entry."""

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        self.kernel = kernel
        self.entry = entry
        self.settings = ClientSettings(entry, kernel.registry.root)
        self.client: Client | None = None
        self._ready: asyncio.Event | None = None
        self._attempted: asyncio.Event | None = None
        self._kick: asyncio.Event | None = None  # set: try again now instead of after the back-off
        self._progress: asyncio.Event | None = None  # pulsed after each failed attempt
        self._failures = 0  # failed attempts so far
        self._failed_at = 0.0  # loop time of the last failed attempt
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.search_types = SearchAttributeTypes(self.settings.namespace)

    async def start(self) -> None:
        """Start connecting; wait for the first attempt so a reachable server is ready when
        start returns, but never fail: an unreachable one is retried in the background."""
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()
        self._kick = asyncio.Event()
        self._progress = asyncio.Event()
        self._task = asyncio.create_task(self._connect_loop(), name=f"connect {self.entry.id}")
        # bounded: a server that swallows packets must not hold up (or time out) the start
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), min(self.settings.connection_timeout, FIRST_ATTEMPT_WAIT))

    async def stop(self, timeout: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        # Let the SDK's native client go now, not at interpreter exit: freeing it during
        # shutdown can abort the process (a known temporalio issue). It sits in reference
        # cycles (handles, workers), so collect them too (temporalio/sdk-python#300).
        self.client = None
        gc.collect()

    async def connected(self, timeout: float | None = None) -> Client:
        """The client once connected. With a ``timeout``: while disconnected, the outcome
        of a fresh attempt (started now unless one failed just now or is under way), and
        UNAVAILABLE with its reason when it fails or ``timeout`` seconds pass."""
        assert self._ready is not None, f"{self.entry.id} is not started"
        if self.client is not None:
            return self.client
        if timeout is None:
            await self._ready.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fresh_attempt(), timeout)
            self.require()  # raises with the reason of the last failed attempt
        assert self.client is not None
        return self.client

    async def _fresh_attempt(self) -> None:
        """Until connected, or until an attempt that was not older than FRESH_ATTEMPT
        when this was called has failed."""
        assert self._ready is not None and self._kick is not None and self._progress is not None
        loop = asyncio.get_running_loop()
        if self.last_error is not None and loop.time() - self._failed_at < FRESH_ATTEMPT:
            return
        seen = self._failures
        self._kick.set()
        while self.client is None and self._failures == seen:
            progress = self._progress
            ready = asyncio.ensure_future(self._ready.wait())
            pulse = asyncio.ensure_future(progress.wait())
            try:
                await asyncio.wait((ready, pulse), return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
                pulse.cancel()

    def require(self) -> Client:
        if self.client is None:
            address = self.settings.address
            why = f" ({self.last_error}); {server_hint(address)}" if self.last_error else ""
            raise WippyError(UNAVAILABLE, f"{self.entry.id} is not connected to the Temporal server at {address}"
                                          f"{why}", retryable=True)
        return self.client

    async def _connect_loop(self) -> None:
        s = self.settings
        assert self._ready is not None and self._attempted is not None
        assert self._kick is not None and self._progress is not None
        delay = 0.5
        while True:
            self._kick.clear()
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
                why = connect_error_text(exc, s.connection_timeout)
                self._failures += 1
                self._failed_at = asyncio.get_running_loop().time()
                if why != self.last_error:  # the first failure, or a new reason: say it all
                    log.error("%s: cannot connect to the Temporal server at %s: %s; %s (retrying in the "
                              "background)", self.entry.id, s.address, why, server_hint(s.address))
                else:
                    log.debug("%s: still cannot connect to the Temporal server at %s (attempt %d): %s; "
                             "retrying in %.1fs", self.entry.id, s.address, self._failures, why, delay)
                self.last_error = why
                self._attempted.set()
                self._progress.set()  # wake the waiters of this attempt, then arm for the next
                self._progress = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), delay)
                delay = min(delay * 2, 30.0)
                continue
            self.last_error = None
            log.info("%s: connected to Temporal at %s (namespace %s)", self.entry.id, s.address, s.namespace)
            self._ready.set()
            self._attempted.set()
            return


def timedelta_of(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
