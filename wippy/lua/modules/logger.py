"""Python side of ``logger``: hands Lua log calls to the standard :mod:`logging` tree.

Records go to ``wippy.lua`` (or ``wippy.lua.<name>`` for named loggers). Structured fields
travel on the record as ``record.fields`` (a dict) and are also appended to the message
as ``key=value`` so plain handlers show them.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from lupa import lua54

from wippy.errors import WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM

ROOT = "wippy.lua"


def _render(value: Any) -> str:
    if isinstance(value, str):
        return (
            json.dumps(value, ensure_ascii=False)
            if (not value or " " in value or "=" in value)
            else value
        )
    try:
        return json.dumps(
            value, ensure_ascii=False, default=str, sort_keys=True, separators=(",", ":")
        )
    except (TypeError, ValueError):
        return repr(value)


def natives(vm: LuaVM) -> dict[str, Any]:
    to_python = vm.to_python
    loggers: dict[bytes, logging.Logger] = {}

    def get_logger(name: bytes) -> logging.Logger:
        log = loggers.get(name)
        if log is None:
            suffix = name.decode("utf-8", "replace")
            log = logging.getLogger(f"{ROOT}.{suffix}" if suffix else ROOT)
            loggers[name] = log
        return log

    def convert(value: Any, key: str) -> Any:
        # Logging must never fail the caller: values that cannot be data are described,
        # error objects become their "KIND: message" text.
        try:
            out = to_python(value, key)
        except WippyError:
            return f"<{lua54.lua_type(value) or type(value).__name__}>"
        return str(out) if isinstance(out, WippyError) else out

    def add_fields(out: dict[str, Any], table: Any) -> None:
        if table is None:
            return
        items = []
        for k, v in table.items():
            key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
            items.append((key, v))
        for key, v in sorted(items, key=lambda kv: kv[0]):  # Lua order is arbitrary
            out[key] = convert(v, key)

    def log(level: int, name: bytes, message: bytes, base: Any, extra: Any) -> None:
        logger = get_logger(name)
        if not logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {}
        add_fields(fields, base)
        add_fields(fields, extra)
        text = message.decode("utf-8", "replace")
        if fields:
            text += " " + " ".join(f"{k}={_render(v)}" for k, v in fields.items())
        logger.log(
            level,
            "%s",
            text,
            extra={"fields": fields, "lua_message": message.decode("utf-8", "replace")},
        )

    return {"log": log}
