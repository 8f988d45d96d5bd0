"""Handlers of the ``registry`` module's commands: reading entries from Lua, changesets
and versions.

Entry tables are ``{id, kind, meta, data}``; ``data`` is every YAML field but ``name``,
``kind`` and ``meta``. Version 1 is the project as loaded; each applied changeset is a
new version, and ``apply_version`` moves between them (:class:`RegistryView`).

:func:`find` follows upstream's finder: keys starting with ``.`` match the root fields
``.kind``, ``.name``, ``.ns``, ``.id`` with simple ``*`` globs; meta fields are written
``meta.<field>`` (equality; a list value means "all of these are in the meta list"), with
the operators ``~`` (regex), ``*`` (contains), ``^`` (prefix) and ``$`` (suffix) before
``meta.``. Other keys are ignored (upstream logs a warning and ignores them too).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from wippy.actors.commands.env import env_system
from wippy.errors import ALREADY_EXISTS, INTERNAL, INVALID, NOT_FOUND, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.scheduler import LuaTask
    from wippy.registry import Entry

log = logging.getLogger("wippy.registry")

FIRST_VERSION = 1  # the project as loaded


def entry_data(entry: Entry) -> dict[str, Any]:
    """An entry as the registry module shows it: ``{id, kind, meta, data}``."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "meta": dict(entry.meta),
        "data": {k: v for k, v in entry.data.items() if k != "meta"},
    }


def glob(value: str, pattern: str) -> bool:
    """Upstream's simple globs: ``*x``, ``x*``, ``a*b``; without ``*`` exact."""
    if "*" not in pattern:
        return value == pattern
    if pattern.startswith("*") and "*" not in pattern[1:]:
        return value.endswith(pattern[1:])
    if pattern.endswith("*") and "*" not in pattern[:-1]:
        return value.startswith(pattern[:-1])
    prefix, _, suffix = pattern.partition("*")
    return value.startswith(prefix) and value.endswith(suffix) and len(value) >= len(prefix) + len(suffix)


def _contains(value: Any, part: str) -> bool:
    if isinstance(value, str):
        return part in value
    if isinstance(value, list):
        return any(isinstance(v, str) and part in v for v in value)
    return False


def _contains_all(value: Any, wanted: list[Any]) -> bool:
    return isinstance(value, list) and all(w in value for w in wanted if isinstance(w, str))


_warned: set[str] = set()


class Filter:
    """A compiled ``find`` filter (see the module docs)."""

    def __init__(self, spec: Mapping[Any, Any]) -> None:
        self.root: list[tuple[str, str]] = []
        self.tests: list[tuple[str, str, Any]] = []  # (operator, meta field, value)
        for key, value in spec.items():
            key = str(key)
            if key.startswith("."):
                if isinstance(value, str):
                    self.root.append((key[1:], value))
                continue
            op = key[0] if key[:1] in ("~", "*", "^", "$") else ""
            name = key[len(op):]
            if not name.startswith("meta."):
                if key not in _warned:
                    _warned.add(key)
                    log.warning("registry.find: filter key %r is ignored: meta fields are written 'meta.%s', "
                                "root fields '.kind', '.ns', '.name', '.id'", key, name)
                continue
            if op == "~":
                if not isinstance(value, str):
                    continue
                try:
                    value = re.compile(value)
                except re.error as exc:
                    log.warning("registry.find: bad regular expression %r: %s", value, exc)
                    continue
            elif op and not isinstance(value, str):
                continue
            self.tests.append((op, name[5:], value))

    def _root_ok(self, entry: Entry) -> bool:
        for field, pattern in self.root:
            value = {"kind": entry.kind, "name": entry.name, "ns": entry.namespace, "id": entry.id}.get(field)
            if value is not None and not glob(value, pattern):
                return False
        return True

    def __call__(self, entry: Entry) -> bool:
        if self.root and not self._root_ok(entry):
            return False
        meta = entry.meta
        for op, field, expected in self.tests:
            if field not in meta:
                return False
            actual = meta[field]
            if op == "":
                ok = _contains_all(actual, expected) if isinstance(expected, list) else actual == expected
            elif op == "*":
                ok = _contains(actual, expected)
            elif not isinstance(actual, str):
                ok = False
            elif op == "~":
                ok = expected.search(actual) is not None
            elif op == "^":
                ok = actual.startswith(expected)
            else:
                ok = actual.endswith(expected)
            if not ok:
                return False
        return True


def find(entries: Iterable[Entry], spec: Mapping[Any, Any]) -> list[Entry]:
    """Entries matching the ``find`` filter ``spec``, in registry order."""
    test = Filter(spec)
    return [e for e in entries if test(e)]


class RegistryView:
    """The registry as the module sees it: versions of the kernel's entries.

    Version 1 is the project as loaded. ``changes:apply()`` makes version ``head + 1``
    (new or changed Lua entries are compiled first, so a change that does not compile
    leaves everything as it was) and ``apply_version(v)`` moves the registry to an
    earlier or later version. Calls already running keep the code they started with."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.registry = kernel.registry
        self.versions: dict[int, dict[str, Entry]] = {FIRST_VERSION: dict(self.registry.entries)}
        self.current = FIRST_VERSION
        self._data: dict[str, tuple[Entry, dict[str, Any]]] = {}

    # Reading -------------------------------------------------------------------------
    def entries(self, version: int) -> dict[str, Entry]:
        if version == self.current:
            return self.registry.entries
        return self.versions[version]

    def data(self, entry: Entry) -> dict[str, Any]:
        got = self._data.get(entry.id)
        if got is None or got[0] is not entry:
            got = self._data[entry.id] = (entry, entry_data(entry))
        return got[1]

    def get(self, entry_id: str, version: int | None = None) -> dict[str, Any]:
        entry = self.entries(self.current if version is None else version).get(entry_id)
        if entry is None:
            raise WippyError(NOT_FOUND, f"entry not found: {entry_id}", retryable=False)
        return self.data(entry)

    def check_version(self, version: Any) -> int:
        if type(version) is not int or version < 0:
            raise WippyError(INVALID, "invalid version ID", retryable=False)
        if version not in self.versions:
            raise WippyError(NOT_FOUND, f"version not found: {version}", retryable=False)
        return version

    # Changing ----------------------------------------------------------------------------
    def apply(self, ops: list[dict[str, Any]]) -> int:
        """Apply changeset operations as a new version; returns its ID."""
        if not ops:
            raise WippyError(INVALID, "no changes to apply", retryable=False)
        entries = dict(self.registry.entries)
        for i, op in enumerate(ops, 1):
            kind, raw = op.get("kind"), op.get("entry")
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                raise WippyError(INVALID, f"operation #{i}: an entry with an id is required", retryable=False)
            entry_id = raw["id"]
            if kind == "entry.delete":
                if entries.pop(entry_id, None) is None:
                    raise WippyError(NOT_FOUND, f"operation #{i}: cannot delete {entry_id}: entry not found",
                                     retryable=False)
            elif kind in ("entry.create", "entry.update"):
                exists = entry_id in entries
                if kind == "entry.create" and exists:
                    raise WippyError(ALREADY_EXISTS, f"operation #{i}: entry {entry_id} already exists",
                                     retryable=False)
                if kind == "entry.update" and not exists:
                    raise WippyError(NOT_FOUND, f"operation #{i}: cannot update {entry_id}: entry not found",
                                     retryable=False)
                entries[entry_id] = self._entry(raw, i)
            else:
                raise WippyError(INVALID, f"operation #{i}: unknown operation {kind!r}", retryable=False)
        version = max(self.versions) + 1
        self._switch(entries)
        self.versions[version] = entries
        self.current = version
        return version

    def apply_version(self, version: int) -> None:
        self._switch(self.versions[version])
        self.current = version

    def _entry(self, raw: dict[str, Any], i: int) -> Entry:
        from wippy.registry import Entry
        from wippy.registry.kinds import lookup_kind

        namespace, sep, name = raw["id"].partition(":")
        kind = raw.get("kind")
        if not sep or not namespace or not name:
            raise WippyError(INVALID, f"operation #{i}: entry id {raw['id']!r} must be namespace:name",
                             retryable=False)
        spec = lookup_kind(kind) if isinstance(kind, str) else None
        if spec is None or not isinstance(kind, str):
            raise WippyError(INVALID, f"operation #{i}: {raw['id']}: unknown kind {kind!r}", retryable=False)
        data = raw.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        data["meta"] = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
        entry = Entry(namespace, name, kind, self.registry.root / "_registry.yaml", data)
        if spec.lua:
            entry.source = self._source(entry, i)
        return entry

    def _source(self, entry: Entry, i: int) -> str:
        source = entry.data.get("source")
        if not isinstance(source, str) or not source:
            raise WippyError(INVALID, f"operation #{i}: {entry.id}: a Lua entry needs data.source (Lua text)",
                             retryable=False)
        if source.startswith("file://"):
            path = self.registry.root / source[len("file://"):]
            try:
                return path.read_text(encoding="utf-8")
            except OSError as exc:
                raise WippyError(INVALID, f"operation #{i}: {entry.id}: cannot read {path}: {exc.strerror}",
                                 retryable=False) from None
        return source

    def _compile(self, entry: Entry) -> Any:
        """The compiled chunk of a Lua entry (typed Lua made plain first)."""
        from wippy.lua.typed import TypedLuaSyntaxError, transpile

        vm = self.kernel.vm
        source = entry.source or ""
        chunkname = "@" + entry.id
        chunk, err = vm.compile(entry.id, source, chunkname)
        if chunk is None:
            try:
                plain = transpile(source, chunkname).code
            except TypedLuaSyntaxError as exc:
                raise WippyError(INVALID, f"{entry.id}: Lua syntax error: {exc.bare_message()}",
                                 retryable=False) from None
            chunk, err = vm.compile(entry.id, plain, chunkname)
        if chunk is None:
            raise WippyError(INVALID, f"{entry.id}: Lua syntax error: {err}", retryable=False)
        return chunk

    def _switch(self, target: dict[str, Entry]) -> None:
        """Make ``target`` the registry's entries, (re)defining the Lua entries that differ."""
        from wippy.registry.kinds import lookup_kind

        current = self.registry.entries
        changed = [e for eid, e in target.items() if current.get(eid) is not e]
        lua = [e for e in changed if (spec := lookup_kind(e.kind)) is not None and spec.lua]
        chunks = [(e, self._compile(e)) for e in lua]  # all compile, or nothing changes
        vm = self.kernel.vm
        for eid, entry in current.items():
            if eid not in target and (spec := lookup_kind(entry.kind)) is not None and spec.lua:
                vm.rt.undefine(eid.encode())
        for entry, chunk in chunks:
            vm.define(entry.id, chunk, entry.modules, entry.imports, entry.method)
        current.clear()
        current.update(target)
        env_system(self.kernel).refresh()  # env.variable entries may have come or gone


_VIEWS: weakref.WeakKeyDictionary[Kernel, RegistryView] = weakref.WeakKeyDictionary()


def registry_view(kernel: Kernel) -> RegistryView:
    view = _VIEWS.get(kernel)
    if view is None:
        view = _VIEWS[kernel] = RegistryView(kernel)
    return view


def commands(kernel: Kernel) -> dict[str, Any]:
    view = registry_view(kernel)
    to_lua, to_python = kernel.vm.to_lua, kernel.vm.to_python

    def lua_list(entries: Iterable[Entry]) -> Any:
        return to_lua([view.data(e) for e in entries], "entries")

    def failure(err: WippyError) -> tuple[None, Any]:
        return (None, to_lua(err))

    def get(task: LuaTask, version: Any, entry_id: bytes) -> Any:
        try:
            return (to_lua(view.get(entry_id.decode("utf-8", "replace"), view.check_version(version)), "entry"),)
        except WippyError as err:
            return failure(err)

    def find_(task: LuaTask, version: Any, spec: Any) -> Any:
        filt = to_python(spec, "filter") if spec is not None else {}
        if not isinstance(filt, dict):
            filt = {}  # an empty table converts as a list
        return (lua_list(find(view.entries(view.check_version(version)).values(), filt)),)

    def entries(task: LuaTask, version: Any) -> Any:
        return (lua_list(view.entries(view.check_version(version)).values()),)

    def namespace(task: LuaTask, version: Any, ns: bytes) -> Any:
        name = ns.decode("utf-8", "replace")
        return (lua_list(e for e in view.entries(view.check_version(version)).values() if e.namespace == name),)

    def versions(task: LuaTask) -> tuple[Any, int]:
        return (to_lua(sorted(view.versions)), view.current)

    def has_version(task: LuaTask, version: Any) -> Any:
        try:
            view.check_version(version)
        except WippyError as err:
            return failure(err)
        return (True,)

    def apply(task: LuaTask, ops: Any) -> Any:
        try:
            items = to_python(ops, "ops")
            return (view.apply(items if isinstance(items, list) else []),)
        except WippyError as err:
            return failure(err)

    def apply_version(task: LuaTask, version: Any) -> Any:
        try:
            view.apply_version(view.check_version(version))
        except WippyError as err:  # unknown version; code of that version that no longer compiles
            return (False, to_lua(WippyError(err.kind if err.kind == NOT_FOUND else INTERNAL, err.message,
                                             retryable=False)))
        return (True,)

    return {
        "registry.get": get,
        "registry.find": find_,
        "registry.entries": entries,
        "registry.namespace": namespace,
        "registry.versions": versions,
        "registry.has_version": has_version,
        "registry.apply": apply,
        "registry.apply_version": apply_version,
    }
