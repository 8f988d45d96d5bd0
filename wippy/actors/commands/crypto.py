"""In-memory handlers of the ``crypto`` commands: randomness and the clock JWTs read."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

def commands(kernel: Kernel) -> dict[str, Any]:
    def random_bytes(task: LuaTask, n: int) -> tuple[bytes]:
        return (secrets.token_bytes(int(n)),)

    def now(task: LuaTask) -> tuple[float]:
        return (time.time(),)

    return {"crypto.random_bytes": random_bytes, "crypto.now": now}
