"""Commands in durable workflows: the ones that need nothing durable, and the conversion of
command arguments into plain data a history (or a Temporal payload) can hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.scheduler import Handler
    from wippy.lua.vm import LuaVM

INTERNAL_COMMANDS = (
    "chan.new", "chan.send", "chan.recv", "chan.close", "chan.select", "coroutine.spawn",
    "future.state", "ctx.get", "ctx.all", "process.pid", "process.id", "process.inbox",
    "process.events", "process.listen", "process.unlisten", "process.get_options",
    "process.set_options", "workflow.host_id",
)
"""Commands a workflow runs with the ordinary in-memory handlers: they only touch the
workflow's own state (channels, coroutines, inbox, context), so replaying the code
replays them. Every other command a durable provider must handle itself, or refuse."""


UNSUPPORTED_WATCHES = {
    "process.monitor": "process.monitor is not supported in workflow context: a workflow hears about "
                       "the end of each child it starts (an EXIT event) without monitoring it",
    "process.unmonitor": "process.unmonitor is not supported in workflow context",
    "process.link": "process.link is not supported in workflow context: a durable workflow cannot be "
                    "linked both ways",
    "process.unlink": "process.unlink is not supported in workflow context",
}
"""Commands a workflow may not issue, as upstream refuses them: watches taken from inside
a workflow would not survive a replay on another worker. Each answers ``nil, err``
(Invalid, not retryable); processes outside may still monitor and link workflows."""


def refused(op: str) -> Handler:
    """A handler answering ``op`` with ``nil, err`` (see :data:`UNSUPPORTED_WATCHES`),
    for a dispatcher whose ``to_lua`` makes the error a Lua value."""
    message = UNSUPPORTED_WATCHES[op]

    def handler(task: Any, *args: Any) -> Any:
        return (None, task.actor.kernel.vm.to_lua(WippyError(INVALID, message, retryable=False)))

    return handler


def refusals() -> dict[str, Handler]:
    """The handlers of every command in :data:`UNSUPPORTED_WATCHES`."""
    return {op: refused(op) for op in UNSUPPORTED_WATCHES}


def internal_handlers(base: Mapping[bytes, Handler]) -> dict[str, Handler]:
    """The handlers of :data:`INTERNAL_COMMANDS` out of the kernel's dispatcher table."""
    return {op: base[op.encode()] for op in INTERNAL_COMMANDS if op.encode() in base}


def packed_args(vm: LuaVM, args: Any) -> list[Any]:
    """A packed Lua argument table ``{n = count, ...}`` as a list of Python values
    (INVALID naming the argument that cannot be converted)."""
    n = args[b"n"] or 0
    return [vm.to_python(args[i], f"argument #{i}") for i in range(1, n + 1)]


def plain_messages(vm: LuaVM, messages: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Start messages ``(topic, Lua payload)`` as ``(topic, Python payload)``."""
    return [(topic, vm.to_python(payload, "message")) for topic, payload in messages]
