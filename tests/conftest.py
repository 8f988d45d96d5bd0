"""Shared fixtures: write a small project to a temp dir and call into it."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wippy import Runtime, load_project
from wippy.providers.workflow.journal import JournalReader, RunRecord


class Project:
    """A throwaway project: add Lua files and entries, then load or call it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[str] = []

    def lua(self, name: str, source: str) -> None:
        (self.root / name).write_text(textwrap.dedent(source))

    def function(self, name: str, source: str, *, modules: list[str] | None = None,
                 imports: dict[str, str] | None = None, kind: str = "function.lua",
                 method: str | None = "main", extra: str = "") -> None:
        self.lua(f"{name}.lua", source)
        lines = [f"  - name: {name}", f"    kind: {kind}", f"    source: file://{name}.lua"]
        if method:
            lines.append(f"    method: {method}")
        if modules:
            lines.append(f"    modules: [{', '.join(modules)}]")
        if imports:
            lines.append("    imports:")
            lines += [f"      {k}: {v}" for k, v in imports.items()]
        if extra:
            lines += ["    " + line for line in textwrap.dedent(extra).strip().splitlines()]
        self.entries.append("\n".join(lines))

    def write(self, namespace: str = "app") -> None:
        (self.root / "_index.yaml").write_text(f"namespace: {namespace}\nentries:\n" + "\n".join(self.entries) + "\n")

    def runtime(self, **kwargs: Any) -> Runtime:
        self.write()
        return Runtime(load_project(self.root), **kwargs)

    def call(self, entry: str, *args: Any, **kwargs: Any) -> Any:
        runtime = self.runtime()
        return asyncio.run(runtime.call(entry, *args, **kwargs))


T = TypeVar("T")


async def until(check: Callable[[], T | None], what: str, timeout: float = 10.0) -> T:
    """Wait on the event loop until ``check()`` returns something true (a state of the
    store, a host or a run), and return it; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def read_run(root: Path, workflow_id: str) -> RunRecord | None:
    """The latest run of ``workflow_id`` in the project's workflow store (``data/wf.db``)."""
    reader = JournalReader(str(root / "data/wf.db"))
    try:
        return reader.run(workflow_id)
    finally:
        reader.close()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def run_lua(project: Project, body: str, *args: Any, modules: list[str] | None = None) -> Any:
    """Run ``body`` as the main function of a one-entry project and return its result."""
    project.function("t", f"local function main(...)\n{textwrap.dedent(body)}\nend\nreturn {{ main = main }}\n",
                     modules=modules)
    return project.call("app:t", *args)


Run = Callable[..., Any]


@pytest.fixture
def lua(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``lua(body, *args, modules=...)``: run ``body`` in a fresh one-entry project."""

    def run(body: str, *args: Any, modules: list[str] | None = None) -> Any:
        return run_lua(Project(tmp_path_factory.mktemp("p")), body, *args, modules=modules)

    return run
