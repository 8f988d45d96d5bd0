"""In-memory handlers of the commands Lua modules yield, one module per Lua module.

Each ``<name>.py`` here defines ``commands(kernel) -> {op: handler}``. These are what a
``process.host`` does; a provider builds its dispatcher from them and replaces the
commands it carries out differently (a durable timer, a recorded clock)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel

MODULES = ("crypto", "ctx", "env", "events", "funcs", "http", "http_client", "io", "process", "registry",
           "security", "time", "uuid", "workflow")


def default_commands(kernel: Kernel) -> dict[str, Any]:
    """The in-memory handlers of every module's commands."""
    from wippy.actors.channel import channel_commands, direct_receive
    from wippy.actors.scheduler import task_commands

    kernel.vm.rt[b"direct_recv"] = direct_receive(kernel.scheduler)
    out: dict[str, Any] = {**channel_commands(), **task_commands()}
    for name in MODULES:
        out.update(importlib.import_module(f"{__name__}.{name}").commands(kernel))
    return out
