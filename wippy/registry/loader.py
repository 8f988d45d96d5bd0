"""Loading a project directory into a :class:`Registry`, reporting every problem found."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from wippy.errors import LoadError, Problem
from wippy.registry.entry import Entry, Registry
from wippy.registry.kinds import KINDS, known_kinds
from wippy.registry.lua_check import LuaChecker, method_defined_in_text

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".wippy"}


def find_yaml_files(root: Path) -> list[Path]:
    """The YAML files of a project: the ``wippy.lock`` directories if it names any,
    otherwise every ``*.yaml`` / ``*.yml`` under ``root`` (skipping hidden and tool dirs)."""
    dirs = [root]
    lock = root / "wippy.lock"
    if lock.is_file():
        data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
        named = data.get("directories") if isinstance(data, dict) else None
        if isinstance(named, dict) and named:
            dirs = [(root / str(d)).resolve() for d in named.values()]
    files: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(d):
            dirnames[:] = sorted(n for n in dirnames if n not in _SKIP_DIRS and not n.startswith("."))
            for fn in sorted(filenames):
                if fn.endswith((".yaml", ".yml")) and not fn.startswith("."):
                    files.append(Path(dirpath) / fn)
    return files


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.registry = Registry(root)
        self.problems: list[Problem] = []
        self._checker: LuaChecker | None = None

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def problem(self, file: Path | None, message: str, entry: str | None = None,
                field: str | None = None, line: int | None = None) -> None:
        self.problems.append(Problem(self.rel(file) if file else None, message, entry, field, line))

    # Files --------------------------------------------------------------------------------
    def load_file(self, path: Path) -> None:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            reason = getattr(exc, "problem", None) or str(exc)
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
        if not isinstance(namespace, str) or not namespace.strip():
            self.problem(path, "missing namespace: a definition file needs `namespace:`", field="namespace")
            return
        if has_entries:
            raw = doc.get("entries")
            if raw is None:
                return
            if not isinstance(raw, list):
                self.problem(path, "`entries` must be a list of entries", field="entries")
                return
        else:
            raw = [{k: v for k, v in doc.items() if k not in ("namespace", "version")}]
        for index, item in enumerate(raw):
            self.add_entry(path, namespace, index, item)

    def add_entry(self, path: Path, namespace: str, index: int, item: Any) -> None:
        label = f"#{index + 1}"
        if not isinstance(item, dict):
            self.problem(path, "an entry must be a mapping", entry=label)
            return
        name = item.get("name")
        if not isinstance(name, str) or not name:
            self.problem(path, "is required and must be a non-empty string", entry=label, field="name")
            return
        if ":" in name:
            self.problem(path, "must not contain ':' (the namespace comes from the file)", entry=label, field="name")
            return
        entry_id = f"{namespace}:{name}"
        kind = item.get("kind")
        if not isinstance(kind, str) or not kind:
            self.problem(path, "is required", entry=entry_id, field="kind")
            return
        if kind not in KINDS:
            self.problem(path, f"unknown kind '{kind}' (known kinds: {known_kinds()})", entry=entry_id, field="kind")
            return
        existing = self.registry.entries.get(entry_id)
        if existing is not None:
            self.problem(path, f"duplicate entry ID (first defined in {self.rel(existing.file)})", entry=entry_id)
            return
        data = {k: v for k, v in item.items() if k not in ("name", "kind")}
        entry = Entry(namespace, name, kind, path, data)
        self.registry.entries[entry_id] = entry

    # Entries ------------------------------------------------------------------------------
    def check_entries(self) -> None:
        for entry in self.registry:
            spec = KINDS[entry.kind]

            def report(field: str | None, message: str, entry: Entry = entry) -> None:
                self.problem(entry.file, message, entry=entry.id, field=field)

            for key, typ, what in (("meta", dict, "a mapping"), ("lifecycle", dict, "a mapping")):
                if key in entry.data and not isinstance(entry.data[key], typ):
                    report(key, f"must be {what}")
            self.check_lifecycle(entry, report)
            if spec.lua:
                self.check_lua(entry, spec.needs_method, report)
            if spec.validate is not None:
                spec.validate(entry, self.registry, report)

    def check_lifecycle(self, entry: Entry, report: Any) -> None:
        lc = entry.lifecycle
        for key in ("depends_on", "requires"):
            deps = lc.get(key)
            if deps is None:
                continue
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                report(f"lifecycle.{key}", "must be a list of entry IDs")
                continue
            for dep in deps:
                if self.registry.get(entry.resolve(dep)) is None:
                    report(f"lifecycle.{key}", f"refers to {entry.resolve(dep)}, which does not exist")

    def check_lua(self, entry: Entry, needs_method: bool, report: Any) -> None:
        src = entry.data.get("source")
        if not isinstance(src, str) or not src.startswith("file://"):
            report("source", "is required and must be a file:// path relative to the YAML file")
        else:
            path = (entry.file.parent / src[len("file://"):]).resolve()
            if not path.is_file():
                report("source", f"file not found: {self.rel(path)}")
            else:
                try:
                    entry.source = path.read_text(encoding="utf-8")
                    entry.source_path = path
                except (OSError, UnicodeDecodeError) as exc:
                    report("source", f"cannot read {self.rel(path)}: {exc}")
        modules = entry.data.get("modules")
        if modules is not None and (not isinstance(modules, list) or not all(isinstance(m, str) for m in modules)):
            report("modules", "must be a list of module names")
        imports = entry.data.get("imports")
        if imports is not None and not isinstance(imports, dict):
            report("imports", "must be a mapping of alias: entry ID")
        else:
            for alias, target_id in entry.imports.items():
                target = self.registry.get(target_id)
                if target is None:
                    report(f"imports.{alias}", f"imports {target_id}, which does not exist")
                elif target.kind != "library.lua":
                    report(f"imports.{alias}", f"imports {target_id}, a {target.kind} entry; only library.lua entries can be imported")
        method = entry.data.get("method")
        if needs_method and (not isinstance(method, str) or not method):
            report("method", "is required: the name of the function to run")
            method = None
        if entry.source is None:
            return
        if self._checker is None:
            self._checker = LuaChecker()
        result = self._checker.check(entry.source, self.rel(entry.source_path or entry.file))
        if result.syntax_error:
            self.problem(entry.source_path, f"Lua syntax error: {result.syntax_error}", entry=entry.id, line=result.line)
            return
        if isinstance(method, str) and method:
            if result.exported is not None:
                if method not in result.exported:
                    have = ", ".join(result.exported) or "no functions"
                    report("method", f"unknown method '{method}': the source returns a table with {have}")
            elif not method_defined_in_text(entry.source, method):
                report("method", f"unknown method '{method}': it does not appear in the source")

    def check_import_cycles(self) -> None:
        graph = {e.id: [t for t in e.imports.values() if t in self.registry.entries]
                 for e in self.registry if KINDS[e.kind].lua}
        reported: set[frozenset[str]] = set()
        for cycle in _cycles(graph):
            key = frozenset(cycle)
            if key in reported:
                continue
            reported.add(key)
            first = self.registry.entries[cycle[0]]
            self.problem(first.file, "import cycle: " + " -> ".join([*cycle, cycle[0]]), entry=first.id, field="imports")


def _cycles(graph: dict[str, list[str]]) -> Iterable[list[str]]:
    """Each elementary cycle found by a depth-first walk (enough to report them)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> Iterable[list[str]]:
        color[node] = GREY
        stack.append(node)
        for nxt in graph.get(node, []):
            if color.get(nxt) == GREY:
                yield stack[stack.index(nxt):]
            elif color.get(nxt) == WHITE:
                yield from visit(nxt)
        stack.pop()
        color[node] = BLACK

    for node in graph:
        if color[node] == WHITE:
            yield from visit(node)


def load_project(root: str | os.PathLike[str], *, files: list[Path] | None = None) -> Registry:
    """Load and validate a project. Raises :class:`LoadError` listing every problem."""
    root_path = Path(root).resolve()
    loader = _Loader(root_path)
    if not root_path.is_dir():
        raise LoadError([Problem(str(root), "project directory not found")])
    try:
        yaml_files = files if files is not None else find_yaml_files(root_path)
    except yaml.YAMLError as exc:
        raise LoadError([Problem("wippy.lock", f"malformed YAML: {exc}")]) from None
    for path in yaml_files:
        loader.load_file(path)
    loader.check_entries()
    loader.check_import_cycles()
    if loader.problems:
        raise LoadError(loader.problems)
    return loader.registry
