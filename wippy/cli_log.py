"""Where the CLI's logs go and how they look: ``-v``, ``--very-verbose``, ``-s``,
``--log-json`` and the ``logger:`` section of ``.wippy.yaml``.

Records of the runtime and of Lua's ``logger`` module (the ``wippy`` logger tree) are
shown by the logger module's console handler
(:func:`wippy.lua.modules.logger.configure_logging`), always on stderr: stdout carries
results (``exec`` JSON, ``test`` progress, ``run`` state changes). Records of libraries
(asyncio, the Temporal SDK) get the same format at warning level. A Python traceback is
shown only with ``--very-verbose`` or ``--debug``; otherwise an exception is one line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
          "error": logging.ERROR}
# upstream's logmanager.min_level: -1 debug, 0 info, 1 warn, 2 error
MIN_LEVELS = {-1: logging.DEBUG, 0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR}


@dataclass
class LogSettings:
    level: int | None = logging.WARNING  # None: nothing (-s)
    json_lines: bool = False
    tracebacks: bool = False


class _Others(logging.StreamHandler):
    """Records from outside the ``wippy`` tree (that one has its own handler)."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "wippy" or record.name.startswith("wippy."):
            return
        self.stream = sys.stderr  # follow redirection (tests capture stderr)
        super().emit(record)


class ConfigValueError(ValueError):
    """A logger setting of .wippy.yaml or --set that is not understood."""


def _level_of(value: Any, where: str) -> int:
    if isinstance(value, str) and value.lower() in LEVELS:
        return LEVELS[value.lower()]
    raise ConfigValueError(f"{where}: expected one of debug, info, warn, error; got {value!r}")


def settings_for(args: argparse.Namespace, config: Any, default: int) -> LogSettings:
    """The log settings: ``default`` (the command's), then ``.wippy.yaml``, then the flags,
    then ``--set`` (upstream's order). ``config`` is a :class:`wippy.cli_config.Config`."""
    get = config.get if config is not None else (lambda key, d=None: d)
    from_set: set[str] = config.from_set if config is not None else set()
    out = LogSettings(level=default)

    def file_level() -> None:
        min_level = get("logmanager.min_level")
        if min_level is not None:
            if min_level not in MIN_LEVELS:
                raise ConfigValueError(f"logmanager.min_level: expected -1, 0, 1 or 2; got {min_level!r}")
            out.level = MIN_LEVELS[min_level]
        level = get("logger.level")
        if level is not None:
            out.level = _level_of(level, "logger.level")

    def file_encoding() -> None:
        encoding = get("logger.encoding")
        if encoding is not None:
            if encoding not in ("json", "console"):
                raise ConfigValueError(f"logger.encoding: expected json or console; got {encoding!r}")
            out.json_lines = encoding == "json"

    file_level()
    file_encoding()
    if getattr(args, "verbose", False) or getattr(args, "very_verbose", False):
        out.level = logging.DEBUG
    out.tracebacks = bool(getattr(args, "very_verbose", False) or getattr(args, "debug", False))
    if getattr(args, "log_json", False):
        out.json_lines = True
    if getattr(args, "silent", False):
        out.level = None
    if from_set & {"logger.level", "logmanager.min_level"}:
        file_level()
    if "logger.encoding" in from_set:
        file_encoding()
    return out


def configure(settings: LogSettings) -> None:
    """Install the handlers (replacing the ones of an earlier call)."""
    from wippy.lua.modules.logger import ConsoleFormatter, JsonFormatter, configure_logging

    configure_logging(settings.level, json_lines=settings.json_lines, stack_traces=settings.tracebacks)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Others)]:
        root.removeHandler(old)
    handler = _Others(sys.stderr)
    formatter = JsonFormatter if settings.json_lines else ConsoleFormatter
    handler.setFormatter(formatter(settings.tracebacks))
    if settings.level is None:
        handler.setLevel(logging.CRITICAL + 10)
    root.addHandler(handler)
    # libraries' debug chatter (asyncio's selector, the SDK's polls) only with --very-verbose
    root.setLevel(logging.DEBUG if settings.level == logging.DEBUG and settings.tracebacks else logging.WARNING)
    _quiet_hooks(settings.tracebacks)


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _quiet_hooks(tracebacks: bool) -> None:
    """Without tracebacks, an exception nobody caught in a thread, or one raised while an
    object was being freed, is one log line, not a Python traceback."""
    if tracebacks:
        threading.excepthook = threading.__excepthook__
        sys.unraisablehook = sys.__unraisablehook__
        return
    log = logging.getLogger("wippy")

    def thread_hook(args: Any) -> None:
        if args.exc_type is SystemExit:
            return
        log.error("thread %s failed: %s", getattr(args.thread, "name", "?"), _one_line(args.exc_value))

    def unraisable_hook(args: Any) -> None:
        with contextlib.suppress(Exception):
            log.debug("ignored: %s (in %r)", _one_line(args.exc_value), args.object)

    threading.excepthook = thread_hook
    sys.unraisablehook = unraisable_hook


__all__ = ["LEVELS", "MIN_LEVELS", "ConfigValueError", "LogSettings", "configure", "settings_for"]
