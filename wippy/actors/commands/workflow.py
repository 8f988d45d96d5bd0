"""In-memory answers to the ``workflow`` commands, for workflow code running on an
ephemeral host (``process.host``). ``workflow.host`` replaces them with recorded ones."""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any

from wippy.actors.process import Process
from wippy.actors.scheduler import LuaTask
from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel


def commands(kernel: Kernel) -> dict[str, Any]:
    to_lua = kernel.vm.to_lua
    started: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()  # actor -> first info()

    def host_id(task: LuaTask) -> Any:
        actor = task.actor
        if not isinstance(actor, Process):
            raise WippyError(INVALID, "workflow.exec is only available inside a workflow or process")
        return (actor.host.host_id.encode(),)

    def info(task: LuaTask) -> Any:
        from wippy.lua.modules.time import NS, time_value

        actor = task.actor
        pid = getattr(actor, "pid", "")
        start = started.setdefault(actor, time.time())
        return (to_lua({
            "workflow_id": pid, "run_id": pid, "workflow_type": getattr(actor, "entry_id", ""),
            "task_queue": getattr(getattr(actor, "host", None), "host_id", ""), "namespace": "default",
            "attempt": 1, "start_time": time_value(*divmod(int(start * NS), NS)),
            "history_length": 0, "history_size": 0,
        }),)

    def version(task: LuaTask, change_id: bytes, low: int, high: int) -> Any:
        return (high,)

    def attrs(task: LuaTask, search: Any, memo: Any) -> Any:
        return (True,)

    def zero(task: LuaTask) -> Any:
        return (0,)

    return {
        "workflow.host_id": host_id,
        "workflow.info": info,
        "workflow.version": version,
        "workflow.attrs": attrs,
        "workflow.history_length": zero,
        "workflow.history_size": zero,
    }
