"""The env kinds: ``env.storage.memory|file|os|static|router`` and ``env.variable``.

Storages hold values; variables name them (see :mod:`wippy.registry.env` for lookup and
``${env:NAME}`` placeholders). Nothing here starts: the environment system opens a
storage the first time a variable in it is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from wippy.errors import INTERNAL, INVALID, WippyError
from wippy.registry import Entry, Registry
from wippy.registry.env import VARIABLE_NAME, EnvKindSpec, EnvStorage, EnvVariable, read_only_error
from wippy.registry.kinds import Report, lookup_kind
from wippy.registry.schema import ANY, BOOL, ENTRY, LIST, MAP, STRING, Field

StorageOf = Callable[[str], EnvStorage]


class MemoryStorage:
    """Values in a dict, for the life of the runtime."""

    readonly = False

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(list(self.values.items()))


class StaticStorage(MemoryStorage):
    """The ``values`` of the entry; read-only."""

    readonly = True

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.values = {str(k): _text(v) for k, v in values.items() if v is not None}

    def set(self, key: str, value: str) -> None:
        raise read_only_error("storage")

    def delete(self, key: str) -> None:
        raise read_only_error("storage")


class OsStorage:
    """The process environment; read-only."""

    readonly = True

    def get(self, key: str) -> str | None:
        return os.environ.get(key)

    def set(self, key: str, value: str) -> None:
        raise read_only_error("storage")

    def delete(self, key: str) -> None:
        raise read_only_error("storage")

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(list(os.environ.items()))


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` starts a comment (also after an unquoted value); values
    may be quoted with ``"`` or ``'``; an ``export`` prefix is allowed."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[7:].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] in "\"'" and value.find(value[0], 1) > 0:
            end = value.find(value[0], 1)
            inner = value[1:end]
            value = inner.encode().decode("unicode_escape") if value[0] == '"' and "\\" in inner else inner
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        if key:
            out[key] = value
    return out


def _dotenv_line(key: str, value: str) -> str:
    if value and all(c.isalnum() or c in "_-./:@+,%" for c in value):
        return f"{key}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{key}="{escaped}"'


class FileStorage(MemoryStorage):
    """A ``.env`` file: read when opened, rewritten on every change."""

    def __init__(self, path: Path, auto_create: bool, file_mode: int, dir_mode: int) -> None:
        super().__init__()
        self.path = path
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        if path.exists():
            try:
                self.values = parse_dotenv(path.read_text(encoding="utf-8"))
            except OSError as exc:
                raise WippyError(INTERNAL, f"cannot read env file {path}: {exc.strerror or exc}",
                                 retryable=False) from None
        elif auto_create:
            self._write()
        else:
            raise WippyError(INVALID, f"env file {path} does not exist (set auto_create: true to create it)",
                             retryable=False)

    def set(self, key: str, value: str) -> None:
        super().set(key, value)
        self._write()

    def delete(self, key: str) -> None:
        super().delete(key)
        self._write()

    def _write(self) -> None:
        try:
            self.path.parent.mkdir(mode=self.dir_mode, parents=True, exist_ok=True)
            text = "".join(_dotenv_line(k, v) + "\n" for k, v in self.values.items())
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise WippyError(INTERNAL, f"cannot write env file {self.path}: {exc.strerror or exc}",
                             retryable=False) from None


class RouterStorage:
    """Reads from the first storage holding the key; writes go to the first storage."""

    readonly = False

    def __init__(self, storages: list[EnvStorage]) -> None:
        self.storages = storages
        self.readonly = storages[0].readonly

    def get(self, key: str) -> str | None:
        for storage in self.storages:
            value = storage.get(key)
            if value:
                return value
        return None

    def set(self, key: str, value: str) -> None:
        self.storages[0].set(key, value)

    def delete(self, key: str) -> None:
        self.storages[0].delete(key)

    def items(self) -> Iterator[tuple[str, str]]:
        out: dict[str, str] = {}
        for storage in self.storages:
            for key, value in storage.items():
                out.setdefault(key, value)
        return iter(out.items())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mode(value: Any, default: int) -> int:
    """A permission mode: a number (YAML reads ``0600`` as octal) or an octal string."""
    if value is None:
        return default
    if isinstance(value, str):
        return int(value, 8)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(value)
    return value


# Openers -------------------------------------------------------------------------------
def _open_memory(entry: Entry, storage_of: StorageOf) -> EnvStorage:
    return MemoryStorage()


def _open_static(entry: Entry, storage_of: StorageOf) -> EnvStorage:
    values = entry.data.get("values")
    return StaticStorage(values if isinstance(values, Mapping) else {})


def _open_os(entry: Entry, storage_of: StorageOf) -> EnvStorage:
    return OsStorage()


def _open_file(entry: Entry, storage_of: StorageOf) -> EnvStorage:
    raw = entry.data.get("file_path")
    if not isinstance(raw, str) or not raw:
        raise WippyError(INVALID, f"{entry.id}: file_path is required", retryable=False)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = entry.file.parent / path
    return FileStorage(path, bool(entry.data.get("auto_create")), _mode(entry.data.get("file_mode"), 0o644),
                       _mode(entry.data.get("dir_mode"), 0o755))


def _open_router(entry: Entry, storage_of: StorageOf) -> EnvStorage:
    refs = entry.data.get("storages")
    if not isinstance(refs, list) or not refs:
        raise WippyError(INVALID, f"{entry.id}: storages must list at least one storage", retryable=False)
    return RouterStorage([storage_of(entry.resolve(str(r))) for r in refs])


def _open_variable(entry: Entry, storage_of: StorageOf) -> EnvVariable:
    default = entry.data.get("default")
    return EnvVariable(
        entry_id=entry.id,
        name=str(entry.data.get("variable") or ""),
        storage=entry.resolve(str(entry.data.get("storage") or "")),
        default=None if default is None else _text(default),
        readonly=bool(entry.data.get("readonly")),
    )


# Validation ----------------------------------------------------------------------------
def _is_storage(kind: str) -> bool:
    spec = lookup_kind(kind)
    return isinstance(spec, EnvKindSpec) and not spec.variable


def _check_storage_ref(entry: Entry, registry: Registry, field: str, ref: Any, report: Report) -> None:
    if not isinstance(ref, str) or not ref:
        return  # the declared field type reports it
    target = registry.get(entry.resolve(ref))
    if target is None:
        if entry.resolve(ref) not in registry.broken:
            report(field, f"refers to {entry.resolve(ref)}, which does not exist")
    elif not _is_storage(target.kind):
        report(field, f"refers to {target.id}, a {target.kind} entry; expected an env.storage.* entry")


def _validate_router(entry: Entry, registry: Registry, report: Report) -> None:
    refs = entry.data.get("storages")
    if isinstance(refs, list):
        if not refs:
            report("storages", "must list at least one storage")
        for i, ref in enumerate(refs):
            _check_storage_ref(entry, registry, f"storages[{i}]", ref, report)


def _validate_variable(entry: Entry, registry: Registry, report: Report) -> None:
    _check_storage_ref(entry, registry, "storage", entry.data.get("storage"), report)
    name = entry.data.get("variable")
    if isinstance(name, str) and name:
        if not VARIABLE_NAME.match(name):
            report("variable", f"{name!r} may contain only letters, digits and _")
        for other in registry:
            if other is entry:
                break
            if other.kind == entry.kind and other.data.get("variable") == name:
                report("variable", f"{name} is already the name of {other.id}; variable names must be unique")
                break


def _validate_file(entry: Entry, registry: Registry, report: Report) -> None:
    for field in ("file_mode", "dir_mode"):
        value = entry.data.get(field)
        if value is not None:
            try:
                _mode(value, 0)
            except (TypeError, ValueError):
                report(field, f"must be a permission mode such as 0644, got {value!r}")


SPECS = [
    EnvKindSpec("env.storage.memory", open=_open_memory, fields={},
                description="in-memory environment storage"),
    EnvKindSpec("env.storage.file", open=_open_file, validate=_validate_file,
                fields={"file_path": Field(STRING, required=True), "auto_create": Field(BOOL),
                        "file_mode": Field(ANY), "dir_mode": Field(ANY)},
                description=".env file environment storage"),
    EnvKindSpec("env.storage.os", open=_open_os, fields={}, description="the process environment (read-only)"),
    EnvKindSpec("env.storage.static", open=_open_static, fields={"values": Field(MAP)},
                description="fixed values (read-only)"),
    EnvKindSpec("env.storage.router", open=_open_router, validate=_validate_router,
                fields={"storages": Field(LIST, required=True, items=ENTRY)},
                description="reads through several storages in order, writes to the first"),
    EnvKindSpec("env.variable", open=_open_variable, variable=True, validate=_validate_variable,
                fields={"variable": Field(STRING), "storage": Field(ENTRY, required=True),
                        "default": Field(ANY), "readonly": Field(BOOL)},
                description="a named environment variable"),
]
