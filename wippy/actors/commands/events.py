"""The event bus (``events`` module): publish ``{system, kind, path, data}`` events and
deliver them to every matching subscription, the sender's own included.

Delivery is asynchronous (after ``send`` returns), in order per sender, and best effort:
a subscription that stops reading keeps at most :data:`MAX_QUEUED` events, then drops the
newest. Python code publishes with :func:`event_bus` ``(kernel).publish(...)``.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.actor import Actor
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

log = logging.getLogger("wippy.events")

MAX_QUEUED = 10_000  # undelivered events one subscription may hold


def matches(pattern: str, value: str) -> bool:
    """``""`` and ``"*"`` match everything; ``"x*"`` is a prefix match; else exact."""
    if pattern in ("", "*"):
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


class Subscription:
    """One ``events.subscribe``: its patterns, the channel it delivers to, its owner."""

    __slots__ = ("system", "kind", "channel", "owner", "cleanup", "dropped", "__weakref__")

    def __init__(self, system: str, kind: str, channel: Channel, owner: Actor | None) -> None:
        self.system = system
        self.kind = kind
        self.channel = channel
        self.owner = owner
        self.cleanup = -1
        self.dropped = False

    def wants(self, system: str, kind: str) -> bool:
        return matches(self.system, system) and matches(self.kind, kind)


class EventBus:
    """The subscriptions of one kernel, and delivery to them."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.subscriptions: list[Subscription] = []

    def subscribe(self, system: str, kind: str | None, owner: Actor | None = None) -> Subscription:
        """A subscription delivering to a new channel; it ends with ``owner``."""
        sub = Subscription(system, kind or "", Channel(self.kernel.scheduler, None), owner)
        self.subscriptions.append(sub)
        if owner is not None:
            sub.cleanup = owner.on_close(lambda: self.unsubscribe(sub))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Detach ``sub`` and close its channel (receivers get ``nil, false``). Idempotent."""
        try:
            self.subscriptions.remove(sub)
        except ValueError:
            return
        if sub.owner is not None and sub.cleanup >= 0:
            sub.owner.discard_cleanup(sub.cleanup)
        sub.channel.close()

    def publish(self, system: str, kind: str, path: str, data: Any = None) -> None:
        """Queue an event (Python data) for delivery once the current step is done."""
        if not self.subscriptions:
            return
        self.kernel.scheduler.loop.call_soon(self._deliver, system, kind, path, data)

    def _deliver(self, system: str, kind: str, path: str, data: Any) -> None:
        to_lua = self.kernel.vm.to_lua
        event = {"system": system, "kind": kind, "path": path}
        if data is not None:
            event["data"] = data
        for sub in list(self.subscriptions):
            if not sub.wants(system, kind):
                continue
            channel = sub.channel
            if len(channel.buffer) >= MAX_QUEUED:
                if not sub.dropped:
                    sub.dropped = True
                    log.warning("an event subscription (%s, %s) is not being read; dropping events",
                                sub.system, sub.kind or "*")
                continue
            try:
                channel.push(to_lua(event, "event"))
            except WippyError as err:  # the data cannot be Lua data (too deep, say)
                log.warning("event %s/%s not delivered: %s", system, kind, err)
                return


_BUSES: weakref.WeakKeyDictionary[Kernel, EventBus] = weakref.WeakKeyDictionary()


def event_bus(kernel: Kernel) -> EventBus:
    """The event bus of ``kernel`` (made on first use)."""
    bus = _BUSES.get(kernel)
    if bus is None:
        bus = _BUSES[kernel] = EventBus(kernel)
    return bus


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def commands(kernel: Kernel) -> dict[str, Any]:
    bus = event_bus(kernel)
    to_python, to_lua = kernel.vm.to_python, kernel.vm.to_lua

    def subscribe(task: LuaTask, system: bytes, kind: bytes | None) -> tuple[Subscription, Channel]:
        sub = bus.subscribe(_text(system), _text(kind) if kind is not None else None, task.actor)
        return sub, sub.channel

    def unsubscribe(task: LuaTask, sub: Any) -> tuple[()]:
        if not isinstance(sub, Subscription):
            raise WippyError(INVALID, "not an event subscription", retryable=False)
        bus.unsubscribe(sub)
        return ()

    def send(task: LuaTask, system: bytes, kind: bytes, path: bytes, data: Any) -> Any:
        try:
            value = None if data is None else to_python(data, "data")
        except WippyError as err:
            return (None, to_lua(WippyError(INVALID, f"events.send: {err.message}", retryable=False)))
        bus.publish(_text(system), _text(kind), _text(path), value)
        return (True,)

    return {"events.subscribe": subscribe, "events.unsubscribe": unsubscribe, "events.send": send}
