"""PIDs, the name registry, and routing between hosts.

A PID is ``{host|id}`` (``{node@host|id}`` is reserved for clustering). The router finds
the host that owns a PID and hands it the message, event or signal; hosts never talk to
each other directly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wippy.actors.host import ExitResult
from wippy.errors import ALREADY_EXISTS, INVALID, NOT_FOUND, WippyError
from wippy.registry.kinds import HOST, lookup_kind

if TYPE_CHECKING:
    from wippy.actors.host import Host
    from wippy.registry import Registry

CALLBACK_HOST = "wippy:watchers"
_PID = re.compile(r"^\{(?:[^@|{}]+@)?([^|{}]+)\|([^|{}]+)\}$")


def make_pid(host_id: str, local_id: str) -> str:
    return f"{{{host_id}|{local_id}}}"


def parse_pid(pid: str) -> tuple[str, str]:
    """``(host_id, local_id)``; raises INVALID naming the bad value."""
    m = _PID.match(pid)
    if m is None:
        raise WippyError(INVALID, f"malformed PID {pid!r} (expected {{host|id}})", retryable=False)
    return m.group(1), m.group(2)


@functools.lru_cache(maxsize=1 << 16)
def _host_id_of(pid: str) -> str:
    """The host ID of a PID, parsed once per PID string (raises INVALID like parse_pid)."""
    return parse_pid(pid)[0]


class Router:
    """Owns the host table and the LOCAL name registry of one kernel."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}
        self.names: dict[str, str] = {}
        self._names_of: dict[str, set[str]] = {}
        self._callbacks: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._callback_seq = 0

    # Python-side watchers (process.exec, supervisors) ----------------------------------
    def callback_pid(self, on_event: Callable[[dict[str, Any]], None]) -> str:
        """A PID that is a Python callback: events sent to it call ``on_event``."""
        self._callback_seq += 1
        pid = make_pid(CALLBACK_HOST, f"{self._callback_seq:x}")
        self._callbacks[pid] = on_event
        return pid

    def drop_callback(self, pid: str) -> None:
        self._callbacks.pop(pid, None)

    # Hosts -------------------------------------------------------------------------------
    def add_host(self, host: Host) -> None:
        self.hosts[host.host_id] = host

    def remove_host(self, host_id: str) -> None:
        self.hosts.pop(host_id, None)

    def host_for_spawn(self, host_id: str, registry: Registry) -> Host:
        """The started host ``host_id``, or the error a spawner should get for it."""
        host = self.hosts.get(host_id)
        if host is not None and host.running:
            return host
        entry = registry.get(host_id)
        if entry is None:
            raise WippyError(NOT_FOUND, f"host {host_id} does not exist", retryable=False)
        spec = lookup_kind(entry.kind)
        if spec is None or spec.role != HOST:
            raise WippyError(INVALID, f"{host_id} is a {entry.kind} entry, not a host", retryable=False)
        raise WippyError(
            "Unavailable",
            f"host {host_id} is not started (give it lifecycle.auto_start: true or start it first)",
            retryable=True,
        )

    def route(self, dest: bytes) -> tuple[str, Host | None]:
        """The PID and host for a destination as Lua passes it (a PID or a registered name)."""
        pid = self.resolve(dest.decode())
        return pid, self.hosts.get(_host_id_of(pid))

    def host_of(self, pid: str) -> Host | None:
        return self.hosts.get(_host_id_of(pid))

    # Names -------------------------------------------------------------------------------
    def resolve(self, dest: str) -> str:
        """A PID for a PID or a registered name."""
        if dest.startswith("{"):
            _host_id_of(dest)  # (validates it; parsed once per PID string)
            return dest
        pid = self.names.get(dest)
        if pid is None:
            raise WippyError(NOT_FOUND, f"no process is registered as {dest!r}", retryable=False)
        return pid

    def register(self, name: str, pid: str) -> None:
        if not name or name.startswith("{"):
            raise WippyError(INVALID, f"invalid process name {name!r}", retryable=False)
        owner = self.names.get(name)
        if owner is not None and owner != pid:
            raise WippyError(ALREADY_EXISTS, f"name {name!r} is already registered to {owner}", retryable=False)
        self.names[name] = pid
        self._names_of.setdefault(pid, set()).add(name)

    def unregister(self, name: str, pid: str | None = None) -> bool:
        owner = self.names.get(name)
        if owner is None or (pid is not None and owner != pid):
            return False
        del self.names[name]
        names = self._names_of.get(owner)
        if names is not None:
            names.discard(name)
            if not names:
                del self._names_of[owner]
        return True

    def release_names(self, pid: str) -> None:
        for name in self._names_of.pop(pid, ()):
            self.names.pop(name, None)

    # Delivery ----------------------------------------------------------------------------
    def send(self, dest: str, topic: str, payload: Any, sender: str | None) -> bool:
        pid = self.resolve(dest)
        host = self.host_of(pid)
        return host is not None and host.deliver(pid, topic, payload, sender)

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        callback = self._callbacks.get(pid)
        if callback is not None:
            callback(event)
            return True
        host = self.host_of(pid)
        return host is not None and host.deliver_event(pid, event)

    def watch(self, target: str, watcher: str, link: bool) -> bool:
        host = self.host_of(target)
        return host is not None and host.add_watcher(target, watcher, link)

    def unwatch(self, target: str, watcher: str, link: bool) -> None:
        host = self.host_of(target)
        if host is not None:
            host.remove_watcher(target, watcher, link)

    def exited(self, pid: str, result: ExitResult, monitors: set[str], links: set[str]) -> None:
        """Tell monitors (EXIT) and links (LINK_DOWN, abnormal exits only) that ``pid`` ended."""
        self.release_names(pid)
        event_result = {"value": result.value, "error": result.error}
        for watcher in monitors:
            self.deliver_event(watcher, {"kind": "EXIT", "from": pid, "result": event_result})
        for peer in links:
            self.unwatch(peer, pid, link=True)  # the link is gone either way
            if result.abnormal:
                self.deliver_event(peer, {"kind": "LINK_DOWN", "from": pid, "result": event_result})
