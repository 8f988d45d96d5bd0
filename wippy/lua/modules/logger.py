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


# ---------------------------------------------------------------------------------------
# Console output of log records (the command line decides level and format)
# ---------------------------------------------------------------------------------------
LOGGER = "wippy"  # every log record of the runtime is under this name (Lua: wippy.lua...)
_LEVEL_NAMES = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
                logging.ERROR: "ERROR", logging.CRITICAL: "FATAL"}
_suspended = 0  # terminal processes with hide_logs running


def _fields(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    """The bare message and structured fields of a record (Lua records carry both)."""
    fields = getattr(record, "fields", None)
    message = getattr(record, "lua_message", None)
    if message is None or not isinstance(fields, dict):
        return record.getMessage(), {}
    return message, fields


class ConsoleFormatter(logging.Formatter):
    """``2006-01-02 15:04:05<TAB>INFO<TAB>wippy.lua<TAB>message<TAB>{"field":...}``, as
    upstream's development console encoder; tracebacks only when asked for."""

    def __init__(self, stack_traces: bool = False) -> None:
        super().__init__()
        self.stack_traces = stack_traces

    def format(self, record: logging.LogRecord) -> str:
        message, fields = _fields(record)
        when = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        line = f"{when}\t{level}\t{record.name}\t{message}"
        if fields:
            line += "\t" + json.dumps(fields, ensure_ascii=False, default=str, sort_keys=True)
        if record.exc_info and self.stack_traces:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_info and record.exc_info[1] is not None:
            line += f"\t{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601), ``level`` (lower case), ``logger``,
    ``msg``, then the fields, as upstream's JSON encoder."""

    def __init__(self, stack_traces: bool = False) -> None:
        super().__init__()
        self.stack_traces = stack_traces

    def format(self, record: logging.LogRecord) -> str:
        import datetime

        message, fields = _fields(record)
        ts = datetime.datetime.fromtimestamp(record.created).astimezone()
        out: dict[str, Any] = {"ts": ts.isoformat(timespec="milliseconds"),
                               "level": _LEVEL_NAMES.get(record.levelno, record.levelname).lower(),
                               "logger": record.name, "msg": message}
        for key, value in fields.items():
            out.setdefault(key, value)
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            if self.stack_traces:
                out["stacktrace"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class ConsoleHandler(logging.StreamHandler):
    """Writes to ``stream``, or to whatever ``sys.stderr`` is at the time; silent while a
    terminal process with ``hide_logs`` runs."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if _suspended:
            return
        if not self._fixed:
            import sys

            self.stream = sys.stderr
        super().emit(record)


_handler: ConsoleHandler | None = None


def configure_logging(level: int | None = logging.INFO, *, json_lines: bool = False, stream: Any = None,
                      stack_traces: bool = False) -> None:
    """Show the runtime's log records (Lua ``logger`` calls included) on the console.

    ``level``: the lowest level shown (``logging.DEBUG`` for -v, ``logging.INFO`` by
    default); None shows nothing (-s). ``json_lines``: one JSON object per record instead of
    the tab-separated console line. ``stream``: where to write (default: ``sys.stderr`` at
    the time of each record). ``stack_traces``: Python tracebacks of records that carry
    one (--very-verbose). Calling it again replaces the previous setting."""
    global _handler
    root = logging.getLogger(LOGGER)
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    handler = ConsoleHandler(stream)
    if level is None:  # a handler that shows nothing, so Python's last-resort one stays quiet
        handler.setLevel(logging.CRITICAL + 10)
        root.setLevel(logging.NOTSET)
    else:
        handler.setFormatter(JsonFormatter(stack_traces) if json_lines else ConsoleFormatter(stack_traces))
        root.setLevel(level)
    root.addHandler(handler)
    _handler = handler


def suspend_console(on: bool) -> None:
    """Stop (``True``) or resume (``False``) console log output; calls nest."""
    global _suspended
    _suspended = _suspended + 1 if on else max(0, _suspended - 1)
