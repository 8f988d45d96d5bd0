"""In-memory handlers of the ``ctx`` commands: the actor's context dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.actors.scheduler import LuaTask
from wippy.errors import NOT_FOUND, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel


def commands(kernel: Kernel) -> dict[str, Any]:
    to_lua = kernel.vm.to_lua

    def get(task: LuaTask, key: bytes) -> Any:
        name = key.decode("utf-8", "replace")
        context = task.actor.context
        if name not in context:
            return (None, to_lua(WippyError(NOT_FOUND, f"context key {name!r} not found", retryable=False)))
        return (to_lua(context[name], f"context.{name}"), None)

    def get_all(task: LuaTask) -> Any:
        return (to_lua(dict(task.actor.context)), None)

    return {"ctx.get": get, "ctx.all": get_all}
