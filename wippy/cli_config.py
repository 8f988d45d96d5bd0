"""``.wippy.yaml``, ``--set`` and ``-o/--override``: upstream's configuration, the parts
that apply to this runtime.

The file is ``--config PATH``, else ``.wippy.yaml`` in the project directory (upstream:
the current directory, which is the project directory there). A missing file is fine. When
it exists it needs ``version: "1.0"``. Sections used here:

- ``logger: {level, encoding}`` and ``logmanager: {min_level}``: log level and format;
- ``override: {"ns:entry:path": value}``: entry overrides, as ``-o`` (values keep their
  YAML types).

Upstream's other sections (``lua``, ``registry``, ``otel``, ``shutdown`` ...) configure
parts of the Go runtime this one does not have: accepted and ignored. A section nobody
knows is a warning with the closest known name. ``${env:NAME}`` in a string is replaced
by that environment variable (an error when it is not set).

Precedence, lowest first (as upstream): the file, then the logging flags (``-v``, ``-s``,
``--log-format``), then ``--set section.path=value``, then ``-o``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wippy.registry.overrides import Override, OverrideError, make

CONFIG_FILE = ".wippy.yaml"
VERSION = "1.0"
USED = ("version", "logger", "logmanager", "override")
UPSTREAM = ("boot", "lua", "registry", "relay", "supervisor", "functions", "profiler", "otel", "metrics",
            "prometheus", "cluster", "lsp", "modules", "extensions", "shutdown", "disable", "vars", "profiles",
            "http", "hub", "security", "env", "store", "queue", "terminal", "temporal")
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used (the message names the file or flag)."""


@dataclass
class Config:
    path: Path | None = None  # the file read, if any
    sections: dict[str, Any] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)  # from the file's override: map
    warnings: list[str] = field(default_factory=list)
    from_set: set[str] = field(default_factory=set)  # "section.path" keys --set gave

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.sections
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return os.environ[m.group(1)]

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def read_file(path: Path, explicit: bool) -> Config:
    """The configuration in ``path`` (an empty one when it does not exist and was not named)."""
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: config file not found")
        return Config()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: malformed YAML: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (version: \"1.0\", logger: ..., override: ...)")
    version = data.get("version")
    if version is None:
        raise ConfigError(f"{path}: missing version field (version: \"{VERSION}\")")
    if str(version) != VERSION:
        raise ConfigError(f"{path}: unsupported version: {version} (this runtime reads version \"{VERSION}\")")
    config = Config(path, _expand(data, path.name))
    for key in data:
        if key not in USED and key not in UPSTREAM:
            close = difflib.get_close_matches(str(key), [*USED, *UPSTREAM], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            config.warnings.append(f"{path.name}: section {key!r} is not used by this runtime{hint}")
    overrides = config.sections.get("override")
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{path}: override must be a mapping of \"namespace:entry:path\": value")
    for key, value in (overrides or {}).items():
        try:
            config.overrides.append(make(str(key), value, CONFIG_FILE))
        except OverrideError as exc:
            raise ConfigError(f"{path}: override {exc}") from None
    return config


def coerce_set(text: str) -> Any:
    """A ``--set`` value as upstream reads it: exactly true/false, an integer, a float,
    else the text."""
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def apply_sets(config: Config, sets: list[str]) -> None:
    """``--set section.path=value`` over the file's values."""
    for item in sets:
        key, sep, value = item.partition("=")
        section, dot, rest = key.partition(".")
        if not sep or not dot or not section or not rest or any(not p for p in rest.split(".")):
            raise ConfigError(f"--set {item!r}: expected section.path=value (e.g. logger.level=debug)")
        if section == "override":
            raise ConfigError(f"--set {item!r}: use -o namespace:entry:path=value for entry overrides")
        node = config.sections.setdefault(section, {})
        parts = rest.split(".")
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {section} is not a section")
        node[parts[-1]] = coerce_set(value)
        config.from_set.add(key)
        if section not in USED and section not in UPSTREAM:
            config.warnings.append(f"--set {key}: section {section!r} is not used by this runtime")


def load(project: Path, explicit: str | None, sets: list[str]) -> Config:
    path = Path(explicit) if explicit else project / CONFIG_FILE
    config = read_file(path, explicit is not None)
    apply_sets(config, sets)
    return config


__all__ = ["CONFIG_FILE", "Config", "ConfigError", "apply_sets", "coerce_set", "load", "read_file"]
