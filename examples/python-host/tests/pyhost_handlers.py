"""Handlers the python.host tests declare (``handler: pyhost_handlers:<name>``); this
directory is on sys.path while pytest runs the tests next to it."""

from __future__ import annotations

import asyncio
from typing import Any

from wippy.errors import CONFLICT, WippyError

from wippy_python_host import CANCEL, Actor, Event


async def counter(actor: Actor, start: int = 0) -> int:
    """"add" adds the payload and answers the total; "stop" ends with the total."""
    total = start
    while True:
        msg = await actor.receive()
        if msg.topic == "stop":
            return total
        total += msg.payload
        if msg.sender is not None:
            actor.send(msg.sender, "total", total)


async def args(actor: Actor, *values: Any) -> dict[str, Any]:
    """Ends at once with its arguments, context and PID."""
    return {"args": list(values), "pid": actor.pid, "entry": actor.entry_id, "context": actor.context}


async def spawner(actor: Actor, entry: str, host: str, value: Any) -> dict[str, Any]:
    """Spawns a Lua process, monitored, and ends with what its EXIT said."""
    child = actor.spawn(entry, host, value, monitor=True)
    event = await actor.event(timeout=5)
    return {"kind": event.kind, "same": event.sender == child, "value": event.value,
            "error": None if event.error is None else event.error.message}


async def linked(actor: Actor, entry: str, host: str, trap: bool) -> Any:
    """Spawns a linked Lua process that fails; with ``trap`` ends with what LINK_DOWN said
    (else the link takes it down)."""
    actor.trap_links = trap
    actor.spawn(entry, host, link=True)
    event = await actor.event(timeout=5)
    return {"kind": event.kind, "error": event.error.message if event.error else None}


async def selective(actor: Actor) -> list[str]:
    """Takes "b" messages before "a" ones, then times out on an empty inbox."""
    order = []
    for topics in (("b",), ("b",), ("a",)):
        order.append((await actor.receive(*topics, timeout=5)).payload)
    try:
        await actor.receive(timeout=0.05)
    except TimeoutError:
        order.append("timeout")
    return order


async def boom(actor: Actor, how: str) -> Any:
    if how == "wippy":
        raise WippyError(CONFLICT, "wippy error from Python", retryable=True)
    if how == "python":
        raise ValueError("plain Python error")
    if how == "not data":
        return object()
    return "fine"


async def named(actor: Actor, name: str, notify: str) -> str:
    """Registers ``name``, tells ``notify``, answers one "who" with its own lookup, ends."""
    actor.register(name)
    actor.send(notify, "registered", name)
    msg = await actor.receive(timeout=5)
    if msg.sender is not None:
        actor.send(msg.sender, "me", actor.lookup(name))
    return name


async def canceler(actor: Actor, entry: str, host: str) -> dict[str, Any]:
    """Cancels a Lua process that reports its CANCEL event, and terminates a sleeper."""
    child = actor.spawn(entry, host, monitor=True)
    actor.cancel(child, deadline=5.0, reason="enough")
    first = await actor.event(timeout=5)
    sleeper = actor.spawn(entry, host, "ignore", monitor=True)
    actor.terminate(sleeper)
    second = await actor.event(timeout=5)
    try:
        actor.send(sleeper, "anyone?")
        sent = "sent"
    except WippyError as err:
        sent = err.kind
    return {"canceled": first.value, "terminated": second.error is not None, "send_after": sent}


async def waits_for_cancel(actor: Actor) -> dict[str, Any]:
    while True:
        item = await actor.next()
        if isinstance(item, Event) and item.kind == CANCEL:
            return {"reason": item.reason, "deadline": item.deadline, "from": item.sender}


async def sleeps(actor: Actor) -> None:
    await asyncio.sleep(3600)


def not_async(actor: Actor) -> None:
    return None

