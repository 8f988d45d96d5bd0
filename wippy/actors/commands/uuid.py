"""In-memory handlers of the ``uuid`` commands (v1, v4, v7 depend on the clock or chance,
so a durable provider records them)."""

from __future__ import annotations

import secrets
import uuid as std_uuid
from typing import TYPE_CHECKING, Any

from wippy.lua.modules.uuid import V7Generator

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

def commands(kernel: Kernel) -> dict[str, Any]:
    node = secrets.randbits(48) | 1 << 40  # random node id, multicast bit set (RFC 4122 4.5)
    v7 = V7Generator()

    def gen_v1(task: LuaTask) -> tuple[bytes]:
        return (str(std_uuid.uuid1(node=node)).encode(),)

    def gen_v4(task: LuaTask) -> tuple[bytes]:
        return (str(std_uuid.uuid4()).encode(),)

    def gen_v7(task: LuaTask) -> tuple[bytes]:
        return (str(v7()).encode(),)

    return {"uuid.v1": gen_v1, "uuid.v4": gen_v4, "uuid.v7": gen_v7}
