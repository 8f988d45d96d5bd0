"""Handlers of the ``env`` module's commands, over the kernel's :class:`EnvSystem`."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from wippy.errors import WippyError
from wippy.registry.env import EnvSystem

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

_SYSTEMS: weakref.WeakKeyDictionary[Kernel, EnvSystem] = weakref.WeakKeyDictionary()


def env_system(kernel: Kernel) -> EnvSystem:
    """The environment of ``kernel`` (made on first use; memory storages live with it)."""
    env = _SYSTEMS.get(kernel)
    if env is None:
        env = _SYSTEMS[kernel] = EnvSystem(kernel.registry)
    return env


def _namespace(task: LuaTask) -> str | None:
    entry_id = getattr(task.actor, "entry_id", None)
    return entry_id.rpartition(":")[0] if isinstance(entry_id, str) else None


def commands(kernel: Kernel) -> dict[str, Any]:
    env = env_system(kernel)
    to_lua = kernel.vm.to_lua

    def get(task: LuaTask, name: bytes) -> Any:
        try:
            return (env.get(name.decode("utf-8", "replace"), _namespace(task)).encode(),)
        except WippyError as err:
            return (None, to_lua(err))

    def set_(task: LuaTask, name: bytes, value: bytes) -> Any:
        try:
            env.set(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"), _namespace(task))
        except WippyError as err:
            return (None, to_lua(err))
        return (True,)

    def get_all(task: LuaTask) -> Any:
        try:
            return (to_lua(env.get_all(), "variables"),)
        except WippyError as err:
            return (None, to_lua(err))

    return {"env.get": get, "env.set": set_, "env.get_all": get_all}
