"""Handlers of the ``security`` commands: the actor and scope kept in the context."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

RESERVED_PREFIX = "@"  # context keys of the runtime (``@actor``, ``@scope``), hidden from ctx


def commands(kernel: Kernel) -> dict[str, Any]:
    to_lua = kernel.vm.to_lua

    def get(task: LuaTask, key: bytes) -> Any:
        return (to_lua(task.actor.context.get(key.decode())),)

    return {"security.get": get}
