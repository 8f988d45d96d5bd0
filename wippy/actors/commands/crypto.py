"""In-memory handlers of the ``crypto`` commands: randomness, the clock JWTs read, and
encryption (whose nonce is random)."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from wippy.lua.modules.crypto import NONCE_BYTES, seal

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask

def commands(kernel: Kernel) -> dict[str, Any]:
    def random_bytes(task: LuaTask, n: int) -> tuple[bytes]:
        return (secrets.token_bytes(int(n)),)

    def now(task: LuaTask) -> tuple[float]:
        return (time.time(),)

    def encrypt(task: LuaTask, cipher: bytes, data: bytes, key: bytes, aad: bytes | None) -> tuple[bytes]:
        return (seal(cipher.decode(), data, key, aad, secrets.token_bytes(NONCE_BYTES)),)

    return {"crypto.random_bytes": random_bytes, "crypto.now": now, "crypto.encrypt": encrypt}
