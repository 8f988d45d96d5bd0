"""Loading a project directory into a :class:`Registry`, reporting every problem found.

Nothing stops at the first mistake: each file, entry and field is checked and every
problem is collected, located by file (relative to the project root), line, entry ID and
field, then raised together as one :class:`LoadError`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from wippy.errors import LoadError, Problem
from wippy.lua.typed import TypedLuaSyntaxError, transpile
from wippy.registry.entry import Entry, Registry
from wippy.registry.graph import describe, find_cycles
from wippy.registry.kinds import KINDS, KindSpec, conflict, known_kinds, lookup_kind
from wippy.registry.lifecycle import check_dependency_cycles, check_lifecycle
from wippy.registry.lua_check import LuaChecker
from wippy.registry.modules import check_modules
from wippy.registry.overrides import Override, apply
from wippy.registry.schema import check_entry_fields, suggest
from wippy.registry.schema import describe_value as _describe

# Kinds `imports:` may name: the chunk's return value is the module (upstream also lets a
# function.lua entry be imported, which the upstream temporal test app relies on).
IMPORTABLE = ("library.lua", "function.lua")
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".wippy"}
# Files that make a directory a project root of its own (upstream's lock and config file).
ROOT_MARKERS = ("wippy.lock", ".wippy.yaml")
_YAML_SUFFIXES = (".yaml", ".yml")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _YamlLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys (Go's YAML does; PyYAML would silently
    keep the last) and remembers the line of every mapping key, for problem locations."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_lines: dict[int, dict[str, int]] = {}  # id(mapping) -> key -> line
        self.start_lines: dict[int, int] = {}
        self._keep: list[dict[Any, Any]] = []  # keeps ids unique while the tables are used

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key '{key_node.value}' (first on line {seen[key]})", key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_tracked_map(self, node: MappingNode) -> Iterator[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        self._keep.append(data)
        self.start_lines[id(data)] = node.start_mark.line + 1
        self.key_lines[id(data)] = {
            str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, ScalarNode)
        }


    def derive(self, original: dict[Any, Any], subset: dict[Any, Any]) -> dict[Any, Any]:
        """Track ``subset`` (some keys of ``original``) with the original's lines."""
        self._keep.append(subset)
        self.start_lines[id(subset)] = self.start_lines.get(id(original), 1)
        lines = self.key_lines.get(id(original), {})
        self.key_lines[id(subset)] = {k: v for k, v in lines.items() if k in subset}
        return subset


_YamlLoader.add_constructor("tag:yaml.org,2002:map", _YamlLoader.construct_tracked_map)


def _read_yaml(path: Path) -> tuple[Any, _YamlLoader]:
    loader = _YamlLoader(path.read_text(encoding="utf-8"))
    try:
        return loader.get_single_data(), loader
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None]:
    """A one-line reason and the 1-based line of a YAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if context and "duplicate key" not in reason:
        reason = f"{reason} ({context})"
    return reason, (mark.line + 1 if mark is not None else None)


class _Loader:
    def __init__(self, root: Path, modules: Collection[str] | None = None,
                 overrides: Iterable[Override] = ()) -> None:
        self.root = root
        self.registry = Registry(root)
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self._checker: LuaChecker | None = None
        self.modules = modules  # the runtime's module names; None: not checked
        self.overrides: dict[str, list[Override]] = {}
        for override in overrides:
            self.overrides.setdefault(override.entry, []).append(override)
        self.overridden: dict[str, list[Override]] = {}  # entry ID -> overrides applied to it

    def rel(self, path: Path) -> str:
        """Paths in problems are relative to the project root, with forward slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return Path(os.path.relpath(path, self.root)).as_posix()

    def problem(self, file: Path | None, message: str, entry: str | None = None,
                field: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(self.rel(file) if file else None, message, entry, field, line))

    def entry_problem(self, entry: Entry, field: str | None, message: str) -> None:
        for override in self.overridden.get(entry.id, ()):
            if field is not None and (field == override.field or field.startswith(override.field + ".")):
                message += f" (the value is from {override.origin} {override.text})"
                break
        self.problem(entry.file, message, entry=entry.id, field=field, line=entry.line_of(field))

    def entry_warning(self, entry: Entry, field: str | None, message: str) -> None:
        self.warnings.append(Problem(self.rel(entry.file), message, entry.id, field, entry.line_of(field)))

    # Files --------------------------------------------------------------------------------
    def find_yaml_files(self) -> list[Path]:
        """The ``wippy.lock`` directories if it names any, otherwise the whole project;
        every ``*.yaml`` under them, skipping hidden and tool directories below each."""
        dirs = [self.root]
        lock = self.root / "wippy.lock"
        if lock.is_file():
            named = self.lock_directories(lock)
            if named is not None:
                dirs = named
        whole = dirs == [self.root]
        seen: set[Path] = set()
        files: list[Path] = []
        for d in dirs:
            for dirpath, dirnames, filenames in os.walk(d):
                dirnames[:] = sorted(n for n in dirnames if n not in _SKIP_DIRS and not n.startswith("."))
                if whole:  # a directory with its own wippy.lock or .wippy.yaml is another project
                    dirnames[:] = [n for n in dirnames if not self.other_project(Path(dirpath) / n)]
                for fn in sorted(filenames):
                    path = Path(dirpath) / fn
                    if fn.endswith(_YAML_SUFFIXES) and not fn.startswith(".") and path.resolve() not in seen:
                        seen.add(path.resolve())  # lock directories may overlap
                        files.append(path)
        return files

    def other_project(self, path: Path) -> bool:
        marker = next((m for m in ROOT_MARKERS if (path / m).is_file()), None)
        if marker is None:
            return False
        self.warnings.append(Problem(self.rel(path / marker), f"not loaded: {self.rel(path)}/ has its own {marker}, "
                                     "so it is a separate project (check or run it on its own)"))
        return True

    def lock_directories(self, lock: Path) -> list[Path] | None:
        """Directories named by ``wippy.lock``; None means "scan the whole project"."""
        try:
            data, _ = _read_yaml(lock)
        except yaml.YAMLError as exc:
            reason, line = _yaml_problem(exc)
            self.problem(lock, f"malformed YAML: {reason}", line=line)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(lock, f"cannot read file: {exc}")
            return None
        named = data.get("directories") if isinstance(data, dict) else None
        if named is None or named == {}:
            return None
        if not isinstance(named, dict) or not all(isinstance(v, str) and v for v in named.values()):
            self.problem(lock, "must be a mapping of label: directory", field="directories")
            return None
        dirs = [(self.root / v).resolve() for v in named.values()]
        existing = [d for d in dirs if d.is_dir()]
        if dirs and not existing:  # one missing (e.g. no modules installed yet) is normal
            listed = ", ".join(str(v) for v in named.values())
            self.problem(lock, f"none of the listed directories exist: {listed}", field="directories")
        return existing

    def load_file(self, path: Path) -> None:
        try:
            doc, yl = _read_yaml(path)
        except yaml.YAMLError as exc:
            reason, line = _yaml_problem(exc)
            self.problem(path, f"malformed YAML: {reason}", line=line)
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(path, f"cannot read file: {exc}")
            return
        if not isinstance(doc, dict):
            return
        has_entries = "entries" in doc
        single = "name" in doc and "kind" in doc
        if not has_entries and not single:
            return  # not a definition file (some other YAML in the tree)
        namespace = doc.get("namespace")
        lines = yl.key_lines.get(id(doc), {})
        if not isinstance(namespace, str) or not namespace.strip():
            what = "is missing" if namespace is None else "must be a non-empty string"
            self.problem(path, f"{what}: a definition file needs `namespace:` (e.g. namespace: app)",
                         field="namespace", line=lines.get("namespace", 1))
            return
        if ":" in namespace or any(c.isspace() for c in namespace):
            self.problem(path, f"invalid namespace {namespace!r}: use dot-separated names such as app.api",
                         field="namespace", line=lines.get("namespace"))
            return
        if has_entries:
            raw = doc.get("entries")
            if raw is None:
                return
            if not isinstance(raw, list):
                self.problem(path, "must be a list of entries", field="entries", line=lines.get("entries"))
                return
        else:
            raw = [yl.derive(doc, {k: v for k, v in doc.items() if k not in ("namespace", "version")})]
        for index, item in enumerate(raw):
            self.add_entry(path, namespace, index, item, yl)

    def add_entry(self, path: Path, namespace: str, index: int, item: Any, yl: _YamlLoader) -> None:
        label = f"#{index + 1}"
        line = yl.start_lines.get(id(item))
        key_lines = yl.key_lines.get(id(item), {})
        if not isinstance(item, dict):
            self.problem(path, "an entry must be a mapping (name, kind, ...)", entry=label, line=line)
            return
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(path, "is required and must be a non-empty string", entry=label, field="name",
                         line=key_lines.get("name", line))
            return
        if ":" in name:
            self.problem(path, "must not contain ':' (the namespace comes from the file)", entry=label,
                         field="name", line=key_lines.get("name", line))
            return
        entry_id = f"{namespace}:{name}"
        existing = self.registry.entries.get(entry_id)
        if existing is not None:
            where = self.rel(existing.file) + (f":{existing.line}" if existing.line else "")
            self.problem(path, f"duplicate entry ID (first defined in {where})", entry=entry_id, line=line)
            return
        self.apply_overrides(entry_id, item, path, line)
        kind = item.get("kind")
        if not isinstance(kind, str) or not kind:
            self.problem(path, "is required", entry=entry_id, field="kind", line=key_lines.get("kind", line))
            self.registry.broken.add(entry_id)
            return
        try:
            spec = lookup_kind(kind)
        except Exception as exc:  # a plugin's factory failing must not hide the other problems
            self.problem(path, f"kind '{kind}': its plugin failed: {exc}", entry=entry_id, field="kind",
                         line=key_lines.get("kind", line))
            self.registry.broken.add(entry_id)
            return
        why = conflict(kind) or (spec.missing() if spec is not None else None)
        if spec is None and why is None:
            known = known_kinds()
            why = f"unknown kind '{kind}'{suggest(kind, known.split(', '))}; known kinds: {known}"
        if why is not None:
            self.problem(path, why, entry=entry_id, field="kind", line=key_lines.get("kind", line))
            self.registry.broken.add(entry_id)
            return
        data = {k: v for k, v in item.items() if k not in ("name", "kind")}
        entry = Entry(namespace, name, kind, path, data, line=line, field_lines=_field_lines(item, yl))
        self.registry.entries[entry_id] = entry

    def apply_overrides(self, entry_id: str, item: dict[str, Any], path: Path, line: int | None) -> None:
        overrides = self.overrides.pop(entry_id, [])
        for override in overrides:
            why = apply(item, override)
            if why is not None:
                self.problem(path, f"{override.origin} {override.text}: {why}", entry=entry_id, line=line)
        if overrides:
            self.overridden[entry_id] = overrides

    def unused_overrides(self) -> None:
        """Upstream fails the load for an override of an entry that does not exist."""
        for entry_id, overrides in self.overrides.items():
            for override in overrides:
                hint = suggest(entry_id, [*self.registry.entries, *self.registry.broken])
                self.problems.append(Problem(override.origin, f"{override.text}: there is no entry {entry_id} to "
                                                              f"override{hint}"))

    # Entries ------------------------------------------------------------------------------
    def check_entries(self) -> None:
        for entry in self.registry:
            spec = KINDS[entry.kind]

            def report(field: str | None, message: str, entry: Entry = entry) -> None:
                self.entry_problem(entry, field, message)

            def warn(field: str | None, message: str, entry: Entry = entry) -> None:
                self.entry_warning(entry, field, message)

            for key in ("meta", "lifecycle"):
                if key in entry.data and not isinstance(entry.data[key], dict):
                    report(key, "must be a mapping")
            check_lifecycle(entry, self.registry, report)
            before = len(self.problems)
            check_entry_fields(entry.data, spec.fields, report, warn)
            well_typed = len(self.problems) == before
            if spec.lua:
                self.check_lua(entry, spec, report, warn)
            # a kind's own checks run on data of the declared shape (no second report)
            if spec.validate is not None and well_typed:
                spec.validate(entry, self.registry, report)

    def check_lua(self, entry: Entry, spec: KindSpec, report: Any, warn: Any) -> None:
        self.read_source(entry, report)
        modules = entry.data.get("modules")
        if modules is not None and (not isinstance(modules, list) or not all(isinstance(m, str) for m in modules)):
            report("modules", "must be a list of module names, e.g. [json, time]")
        elif modules is not None and self.modules is not None:
            check_modules(modules, self.modules, report, warn)
        self.check_imports(entry, report)
        method = entry.data.get("method")
        if spec.needs_method and (not isinstance(method, str) or not method):
            what = "the name of the function in the table the source returns"
            if method is None:
                report("method", f"is required: {what}")
            else:
                report("method", f"must be {what} (a non-empty string), got {_describe(method)}")
            method = None
        elif not isinstance(method, str) or not spec.needs_method:
            method = None
        if entry.source is None:
            return
        if self._checker is None:
            self._checker = LuaChecker()
        chunkname = self.rel(entry.source_path or entry.file)
        result = self._checker.check(entry.source, chunkname, method)
        if result.syntax_error:  # not plain Lua: perhaps typed Lua
            try:
                typed = transpile(entry.source, chunkname)
            except TypedLuaSyntaxError as err:
                self.problem(entry.source_path, f"Lua syntax error: {err.bare_message()}", entry=entry.id,
                             field="source", line=err.line)
                return
            entry.source, entry.annotations = typed.code, typed.annotations
            result = self._checker.check(entry.source, chunkname, method)
        if result.syntax_error:
            self.problem(entry.source_path, f"Lua syntax error: {result.syntax_error}", entry=entry.id,
                         field="source", line=result.line)
            return
        if method and result.method_found is False:
            if result.returns_nothing:
                why = f"the source returns nothing; end it with `return {{ {method} = {method} }}`"
            elif result.exported is not None:
                why = f"the source returns a table with {', '.join(result.exported) or 'no functions'}"
            else:
                why = "it does not appear in the source"
            report("method", f"unknown method '{method}': {why}")

    def read_source(self, entry: Entry, report: Any) -> None:
        src = entry.data.get("source")
        if not isinstance(src, str) or not src.startswith("file://") or len(src) == len("file://"):
            what = "a file:// path relative to the YAML file (e.g. file://main.lua)"
            if src is None:
                report("source", f"is required: {what}")
            else:
                report("source", f"must be {what}, got {_describe(src)}")
            return
        path = (entry.file.parent / src[len("file://"):]).resolve()
        if not path.is_file():
            report("source", f"file not found: {self.rel(path)}")
            return
        try:
            entry.source = path.read_text(encoding="utf-8")
            entry.source_path = path
        except (OSError, UnicodeDecodeError) as exc:
            report("source", f"cannot read {self.rel(path)}: {exc}")

    def check_imports(self, entry: Entry, report: Any) -> None:
        imports = entry.data.get("imports")
        if imports is None:
            return
        if not isinstance(imports, dict):
            report("imports", "must be a mapping of alias: entry ID (alias becomes require(\"alias\"))")
            return
        for alias, ref in imports.items():
            field = f"imports.{alias}"
            if not isinstance(ref, str) or not ref:
                report(field, "must be an entry ID such as app.lib:helpers")
                continue
            target_id = entry.resolve(ref)
            target = self.registry.get(target_id)
            if target is None:
                if target_id not in self.registry.broken:
                    report(field, f"imports {target_id}, which does not exist")
            elif target.kind not in IMPORTABLE:
                report(field, f"imports {target_id}, a {target.kind} entry; only library.lua and function.lua "
                              "entries can be imported")

    def check_import_cycles(self) -> None:
        graph = {e.id: [t for t in e.imports.values() if (lib := self.registry.get(t)) and lib.kind in IMPORTABLE]
                 for e in self.registry if KINDS[e.kind].lua}
        for cycle in find_cycles(graph):
            first = self.registry.entries[cycle[0]]
            nxt = cycle[1] if len(cycle) > 1 else cycle[0]
            alias = next((a for a, t in first.imports.items() if t == nxt), None)
            self.entry_problem(first, f"imports.{alias}" if alias else "imports", f"import cycle: {describe(cycle)}")


def _field_lines(item: dict[str, Any], yl: _YamlLoader, prefix: str = "") -> dict[str, int]:
    """``dotted.field -> YAML line`` for an entry's mapping fields, nested ones included."""
    out: dict[str, int] = {}
    for key, line in yl.key_lines.get(id(item), {}).items():
        out[prefix + key] = line
        value = item.get(key)
        if isinstance(value, dict):
            out.update(_field_lines(value, yl, f"{prefix}{key}."))
    return out


def is_definition_file(path: Path) -> bool:
    """Whether ``path`` is a YAML file of entries (``namespace:`` and ``entries:``, or one
    entry's ``name:`` and ``kind:``)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return path.name == "_index.yaml"  # broken, but meant as one: check reports it
    return isinstance(doc, dict) and "namespace" in doc and ("entries" in doc or ("name" in doc and "kind" in doc))


def root_marker(path: Path) -> str | None:
    """What makes ``path`` a project root: ``wippy.lock``, ``.wippy.yaml`` or a definition
    file directly in it (its name); None when it is not one."""
    for marker in ROOT_MARKERS:
        if (path / marker).is_file():
            return marker
    try:
        candidates = sorted(p for p in path.iterdir() if p.suffix in _YAML_SUFFIXES and not p.name.startswith("."))
    except OSError:
        return None
    return next((p.name for p in candidates if p.is_file() and is_definition_file(p)), None)


def projects_below(path: Path, depth: int = 3, limit: int = 6) -> list[Path]:
    """Project roots under ``path`` (not under one another), nearest first."""
    found: list[Path] = []
    level = [path]
    for _ in range(depth):
        below: list[Path] = []
        for d in level:
            try:
                subdirs = sorted(c for c in d.iterdir() if c.is_dir() and c.name not in _SKIP_DIRS
                                 and not c.name.startswith("."))
            except OSError:
                continue
            for c in subdirs:
                (found if root_marker(c) else below).append(c)
                if len(found) >= limit:
                    return found
        level = below
    return found


def project_root_problem(path: Path) -> str | None:
    """Why ``path`` is not a project root (see :func:`root_marker`), or None. Loading a
    directory without a root marker would load every project below it as one."""
    if not path.is_dir():
        return f"{path}: project directory not found" if not path.exists() else f"{path} is not a directory"
    if root_marker(path) is not None:
        return None
    message = (f"{path} is not a Wippy project: a project directory holds a wippy.lock, a .wippy.yaml or a "
               "definition file (a YAML file with namespace: and entries:, e.g. _index.yaml)")
    below = projects_below(path)
    if below:
        names = ", ".join(os.path.relpath(p) for p in below)
        message += f"\n  projects below it: {names}\n  (give one of them as the project directory)"
    else:
        above = next((a for a in path.resolve().parents if root_marker(a) is not None), None)
        if above is not None:
            message += f"\n  it is inside the project {os.path.relpath(above)}: run from there"
        elif not any(path.iterdir()):
            message += "\n  (the directory is empty)"
    return message


def find_yaml_files(root: Path) -> list[Path]:
    """The YAML files ``load_project`` would read (problems with ``wippy.lock`` ignored)."""
    return _Loader(Path(root).resolve()).find_yaml_files()


def load_project(root: str | os.PathLike[str], *, files: list[Path] | None = None,
                 modules: Collection[str] | None = None, overrides: Iterable[Override] = ()) -> Registry:
    """Load and validate a project. Raises :class:`LoadError` listing every problem.

    ``modules``: the Lua module names the runtime provides; given, every ``modules:`` list
    is checked against them (unknown names are problems, upstream modules not provided
    are warnings). ``overrides``: entry fields to set before checking (``-o``,
    :mod:`wippy.registry.overrides`). Warnings end up in ``Registry.warnings`` (or
    ``LoadError.warnings``)."""
    root_path = Path(root).resolve()
    if not root_path.is_dir():
        raise LoadError([Problem(str(root), "project directory not found")])
    loader = _Loader(root_path, modules, overrides)
    for path in files if files is not None else loader.find_yaml_files():
        loader.load_file(Path(path).absolute())
    loader.unused_overrides()
    loader.check_entries()
    loader.check_import_cycles()
    check_dependency_cycles(loader.registry, loader.entry_problem)
    if loader.problems:
        raise LoadError(loader.problems, loader.warnings)
    loader.registry.warnings = loader.warnings
    return loader.registry
