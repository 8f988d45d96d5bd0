"""The standard actors of wippy's host-contract suite (``wippy.testing``), written as
Python actors: what ``python.host`` is tested with, and small examples of the API.

:func:`host_under_test` describes them for the suite (it needs ``wippy.testing``,
which needs pytest)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.errors import INTERNAL, WippyError

from wippy_python_host._actor import CANCEL, EXIT, LINK_DOWN, Actor, Event

if TYPE_CHECKING:
    from wippy.testing import HostUnderTest


async def echo(actor: Actor) -> Any:
    """Sends every message back to its sender; "stop" ends it with the payload, "fail"
    fails with the payload as the error message. It never looks at its events."""
    while True:
        msg = await actor.receive()
        if msg.topic == "stop":
            return msg.payload
        if msg.topic == "fail":
            raise WippyError(INTERNAL, str(msg.payload))
        if msg.sender is not None:
            actor.send(msg.sender, msg.topic, msg.payload)


async def fail(actor: Actor, message: str) -> None:
    """Fails at once with ``message``."""
    raise WippyError(INTERNAL, message)


async def cancellable(actor: Actor) -> dict[str, Any]:
    """Waits for CANCEL and ends normally with who asked and why."""
    while True:
        event = await actor.event()
        if event.kind == CANCEL:
            return {"reason": event.reason, "from": event.sender}


async def watcher(actor: Actor, report_to: str) -> Any:
    """Monitors, links, unmonitors and unlinks as asked ("ok" answers), and reports every
    EXIT and LINK_DOWN it gets to ``report_to``; traps links."""
    actor.trap_links = True
    ops = {"monitor": actor.monitor, "unmonitor": actor.unmonitor, "link": actor.link, "unlink": actor.unlink}
    while True:
        item = await actor.next()
        if isinstance(item, Event):
            _report(actor, report_to, item)
            continue
        if item.topic == "stop":
            return item.payload
        if item.topic == "fail":
            raise WippyError(INTERNAL, str(item.payload))
        op = ops.get(item.topic)
        if op is not None and item.sender is not None:
            op(item.payload)
            actor.send(item.sender, "ok", item.payload)


def _report(actor: Actor, report_to: str, event: Event) -> None:
    topic = {EXIT: "exit", LINK_DOWN: "link_down"}.get(event.kind)
    if topic is not None:
        error = event.error.message if event.error is not None else None
        actor.send(report_to, topic, {"from": event.sender, "value": event.value, "error": error})


def host_under_test() -> HostUnderTest:
    """``python.host`` and these four actors, for ``wippy.testing.HostContract``."""
    from wippy.testing import STANDARD_ACTORS, HostUnderTest

    actors = {name: {"kind": "python.actor", "handler": f"{__name__}:{name}"} for name in STANDARD_ACTORS}
    return HostUnderTest(host={"kind": "python.host"}, actors=actors)
