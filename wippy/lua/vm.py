"""One Lua state, sandboxed, with the runtime's modules loaded into it.

All actors of a runtime share one :class:`LuaVM`; each instance of an entry gets its own
globals table, so sharing the state costs no isolation between instances.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

from lupa import lua54

from wippy.lua.convert import Converter

PRELUDE_CHUNK = "=wippy:prelude"


def _deny_attributes(obj: Any, name: Any, setting: bool) -> Any:
    raise AttributeError("Lua code cannot access attributes of host objects")


def read_lua_source(name: str) -> str:
    """Source of a Lua file shipped inside the ``wippy.lua`` package."""
    return resources.files("wippy.lua").joinpath(name).read_text(encoding="utf-8")


DEFAULT_MAX_MEMORY = 1 << 30  # bytes of Lua heap for the whole runtime (all actors)


def max_memory_from_env(default: int = DEFAULT_MAX_MEMORY) -> int:
    """``WIPPY_LUA_MAX_MEMORY`` (bytes, or with a K/M/G suffix; 0: no limit), else ``default``."""
    raw = os.environ.get("WIPPY_LUA_MAX_MEMORY", "").strip().upper()
    if not raw:
        return default
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(raw[-1:], 1)
    try:
        return int(float(raw[:-1] if scale > 1 else raw) * scale)
    except ValueError:
        raise ValueError(f"WIPPY_LUA_MAX_MEMORY={raw!r} is not a size such as 512M or 2G") from None


class LuaVM:
    """A sandboxed Lua 5.4 state plus the runtime's internal API (``rt``).

    ``max_memory`` bounds the Lua heap of every actor together: past it, the allocation
    that crosses the limit fails and the actor that made it ends with LimitExceeded."""

    def __init__(self, *, output: Callable[[str], None] | None = None, max_memory: int | None = None) -> None:
        limit = max_memory_from_env() if max_memory is None else max_memory
        self.lua = lua54.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attributes,
            max_memory=limit or None,
        )
        self._output = output or (lambda line: print(line, file=sys.stdout, flush=True))
        self._load_raw = self.lua.globals().load
        natives = self.table({b"print": self._print, b"monotonic": time.monotonic})
        prelude = self.load_chunk(read_lua_source("prelude.lua"), PRELUDE_CHUNK)
        self.rt = prelude(natives)
        self.convert = Converter(self)
        self.to_lua = self.convert.to_lua
        self.to_python = self.convert.to_python
        self._task_main = self.rt.task_main
        from wippy.lua.modules import install_modules

        install_modules(self)
        # Looked up once: each lookup through lupa costs about a microsecond per message.
        rt = self.rt
        self.entry_task = rt.entry_task
        self.make_message = rt.make_message
        self.make_event = rt.make_event
        self.make_exit_event = rt.make_exit_event
        self.make_payload = rt.make_payload

    def _print(self, line: bytes) -> None:
        self._output(line.decode("utf-8", "replace"))

    def set_output(self, output: Callable[[str], None]) -> None:
        self._output = output

    def load_chunk(self, source: str | bytes, chunkname: str) -> Any:
        """Compile trusted runtime Lua (never user code) into a function."""
        src = source.encode() if isinstance(source, str) else source
        result = self._load_raw(src, chunkname.encode())
        if isinstance(result, tuple):  # (nil, message)
            raise RuntimeError(f"internal Lua chunk {chunkname} failed to compile: {result[1]!r}")
        return result

    def table(self, mapping: Mapping[Any, Any] | None = None, **kw: Any) -> Any:
        """A Lua table from Python values that are already Lua-ready (no conversion)."""
        t = self.lua.table()
        for k, v in (mapping or {}).items():
            t[k] = v
        for k, v in kw.items():
            t[k.encode()] = v
        return t

    # Entries ------------------------------------------------------------------------
    def compile(self, entry_id: str, source: str, chunkname: str) -> tuple[Any, str | None]:
        """Compile user source; returns ``(chunk, None)`` or ``(None, lua_error_message)``."""
        result = self.rt.compile(entry_id.encode(), source.encode("utf-8"), chunkname.encode())
        if isinstance(result, tuple):  # (nil, message)
            return None, result[1].decode("utf-8", "replace")
        return result, None

    def define(
        self,
        entry_id: str,
        chunk: Any,
        modules: Iterable[str],
        imports: Mapping[str, str],
        method: str | None,
    ) -> None:
        allowed = self.table({m.encode(): True for m in modules})
        imp = self.table({k.encode(): v.encode() for k, v in imports.items()})
        self.rt.define(entry_id.encode(), chunk, allowed, imp, method.encode() if method else None)

    # Tasks --------------------------------------------------------------------------
    def new_thread(self, budget: float | None, fn: Any, *args: Any) -> Any:
        """A Lua coroutine that runs ``fn(*args)`` under the runtime's task body, with a CPU
        budget per step of ``budget`` seconds (None: the runtime's default; 0: none)."""
        return self._task_main.coroutine(budget, fn, *args)

    def error(self, kind: str, message: str, retryable: bool | None = False) -> Any:
        """A Lua error object."""
        return self.rt.new_error(kind.encode(), message.encode(), retryable)
