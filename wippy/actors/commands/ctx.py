"""In-memory handlers of the ``ctx`` commands: the actor's context dict (without the
runtime's reserved ``@`` keys, which hold the security actor and scope)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.actors.commands.security import RESERVED_PREFIX
from wippy.actors.scheduler import LuaTask
from wippy.errors import NOT_FOUND, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel


def commands(kernel: Kernel) -> dict[str, Any]:
    to_lua = kernel.vm.to_lua

    def get(task: LuaTask, key: bytes) -> Any:
        name = key.decode("utf-8", "replace")
        context = task.actor.context
        if name not in context or name.startswith(RESERVED_PREFIX):
            return (None, to_lua(WippyError(NOT_FOUND, f"key not found: {name}", retryable=False)))
        return (to_lua(context[name], f"context.{name}"), None)

    def get_all(task: LuaTask) -> Any:
        values = {k: v for k, v in task.actor.context.items() if not k.startswith(RESERVED_PREFIX)}
        return (to_lua(values), None)

    return {"ctx.get": get, "ctx.all": get_all}
