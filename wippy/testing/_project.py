"""Throwaway projects for provider tests: :class:`WippyProject` (any entries and files) and
:class:`ConformanceProject` (the host-contract suite around one :class:`HostUnderTest`)."""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wippy import Runtime, WippyError, load_project

SUBJECT = "subject"  # namespace of the provider's entries in a conformance project
SUITE = "conformance"  # namespace of the suite's own entries
STANDARD_ACTORS = ("echo", "fail", "cancellable", "watcher")

Fields = str | Mapping[str, Any]


def read_resource(name: str) -> str:
    """A file shipped with this package (``scenarios.lua``, ``reference_actors.lua``)."""
    return resources.files("wippy.testing").joinpath(name).read_text(encoding="utf-8")


def _fields(value: Fields, what: str) -> dict[str, Any]:
    """Entry fields given as YAML text or as a mapping."""
    data = yaml.safe_load(textwrap.dedent(value)) if isinstance(value, str) else dict(value)
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected the fields of an entry (a YAML mapping), got {data!r}")
    return data


def _main(body: str) -> str:
    return f"local function main(...)\n{textwrap.dedent(body)}\nend\nreturn {{ main = main }}\n"


class WippyProject:
    """A Wippy project in a directory, built from Python: add entries and files, then run
    it. Entries go to one YAML file per namespace; ``add`` returns the entry ID.

    ``call`` and ``lua`` run a fresh runtime each time (start, run, stop), so a test needs no
    async plugin; ``started()`` is the async form for tests that drive a runtime themselves.
    """

    def __init__(self, root: Path, namespace: str = "app") -> None:
        self.root = root
        self.namespace = namespace
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self._driver_host: str | None = None
        self._lua_runs = 0

    def add(self, name: str, fields: Fields, *, namespace: str | None = None) -> str:
        """An entry ``namespace:name`` (default: the project's namespace) with ``fields``
        (YAML text such as ``"kind: process.host"`` or a mapping)."""
        ns = namespace or self.namespace
        data = _fields(fields, f"{ns}:{name}")
        self.entries.setdefault(ns, []).append({"name": name, **data})
        return f"{ns}:{name}"

    def file(self, path: str, text: str, *, namespace: str | None = None) -> Path:
        """Write ``text`` to ``path``, relative to the directory of the namespace's YAML file
        (where ``source: file://...`` in its entries is resolved)."""
        target = self.directory(namespace) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
        return target

    def directory(self, namespace: str | None = None) -> Path:
        """The project root for the project's namespace, a subdirectory for any other."""
        ns = namespace or self.namespace
        return self.root if ns == self.namespace else self.root / ns

    def process_host(self, name: str = "procs", *, stop_timeout: str = "1s") -> str:
        """A started ``process.host`` for Lua processes."""
        return self.add(name, {"kind": "process.host",
                               "lifecycle": {"auto_start": True, "stop_timeout": stop_timeout}})

    def lua_process(self, name: str, source: str, *, method: str = "main",
                    modules: Iterable[str] = ()) -> str:
        """A ``process.lua`` entry whose file is ``source`` (a chunk returning its methods)."""
        return self._lua_entry(name, "process.lua", source, method, modules)

    def lua_function(self, name: str, source: str, *, method: str = "main",
                     modules: Iterable[str] = ()) -> str:
        """A ``function.lua`` entry whose file is ``source``."""
        return self._lua_entry(name, "function.lua", source, method, modules)

    def _lua_entry(self, name: str, kind: str, source: str, method: str, modules: Iterable[str]) -> str:
        self.file(f"{name}.lua", source)
        fields: dict[str, Any] = {"kind": kind, "source": f"file://{name}.lua", "method": method}
        if modules:
            fields["modules"] = list(modules)
        return self.add(name, fields)

    def write(self) -> None:
        """Write the YAML files (done by every run; call it to inspect the project)."""
        for ns, entries in self.entries.items():
            directory = self.directory(ns)
            directory.mkdir(parents=True, exist_ok=True)
            document = {"namespace": ns, "entries": entries}
            (directory / "_index.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    def runtime(self, **kwargs: Any) -> Runtime:
        """A runtime for the project as it is now (not started)."""
        self.write()
        return Runtime(load_project(self.root), **kwargs)

    @asynccontextmanager
    async def started(self, **kwargs: Any) -> AsyncIterator[Runtime]:
        """``async with project.started() as rt:`` a started runtime, stopped on exit."""
        async with self.runtime(**kwargs) as rt:
            yield rt

    def call(self, entry_id: str, *args: Any, timeout: float = 10.0) -> Any:
        """Start the project, call a function entry with Python arguments, stop; returns its
        result as Python data or raises :class:`~wippy.WippyError`."""

        async def main() -> Any:
            async with self.started() as rt:
                return await rt.call(entry_id, *args, timeout=timeout)

        return asyncio.run(main())

    def lua(self, body: str, *args: Any, modules: Iterable[str] = (), timeout: float = 10.0) -> Any:
        """Run ``body`` as the ``main(...)`` of a Lua process on a ``process.host`` (added the
        first time) and return its result; raises :class:`~wippy.WippyError` with its error."""
        if self._driver_host is None:
            self._driver_host = self.process_host("lua_driver_host")
        self._lua_runs += 1
        n = self._lua_runs
        driver = self.lua_process(f"lua_driver_{n}", _main(body), modules=modules)
        runner = self.lua_function(f"lua_run_{n}", _main(
            f'return process.exec("{driver}", "{self._driver_host}", ...)'))
        return self.call(runner, *args, timeout=timeout)


@dataclass(frozen=True)
class HostUnderTest:
    """The provider a conformance run tests: its host entry and its standard actors.

    ``host`` holds the fields of the host entry (YAML text or a mapping; ``lifecycle``
    defaults to ``{auto_start: true, stop_timeout: 1s}``). ``actors`` maps each name of
    :data:`STANDARD_ACTORS` to the fields of an entry the host runs that behaves as
    ``reference_actors.lua`` describes. ``files`` are written next to these entries (Lua
    sources, say), ``entries`` are more entries of the same namespace the host needs (a
    client service), ``skip`` maps scenario names to why they do not apply, and
    ``timeout`` bounds one scenario in seconds.
    """

    host: Fields
    actors: Mapping[str, Fields]
    files: Mapping[str, str] = field(default_factory=dict)
    entries: Mapping[str, Fields] = field(default_factory=dict)
    skip: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 20.0

    @classmethod
    def lua(cls, host: Fields, *, kind: str = "process.lua", **kwargs: Any) -> HostUnderTest:
        """A host whose actors are Lua entries of ``kind``: the reference actors as they are."""
        actors = {name: {"kind": kind, "source": "file://reference_actors.lua", "method": name}
                  for name in STANDARD_ACTORS}
        files = {"reference_actors.lua": read_resource("reference_actors.lua"), **kwargs.pop("files", {})}
        return cls(host, actors, files=files, **kwargs)

    def check(self) -> None:
        """Raise ValueError if the standard actors are not all declared."""
        missing = [name for name in STANDARD_ACTORS if name not in self.actors]
        extra = sorted(set(self.actors) - set(STANDARD_ACTORS))
        if missing or extra:
            raise ValueError(f"HostUnderTest.actors must declare exactly {', '.join(STANDARD_ACTORS)}"
                             f" (missing: {missing or 'none'}, unknown: {extra or 'none'})")
        if "kind" not in _fields(self.host, "HostUnderTest.host"):
            raise ValueError("HostUnderTest.host must give the host entry's kind")


def scenario_names() -> list[str]:
    """The scenarios of the suite, in the order they are defined."""
    names = re.findall(r"^function S\.(\w+)\(", read_resource("scenarios.lua"), flags=re.M)
    return [n for n in names if n != "leave_running"]


class ConformanceFailure(AssertionError):
    """A scenario failed: the message says which and what differed."""


class ConformanceProject:
    """The suite's project around one provider: the provider's entries in namespace
    ``subject`` (host ``subject:host``, actors ``subject:echo`` ...), the suite's driver
    processes on a ``process.host`` in namespace ``conformance``."""

    def __init__(self, root: Path, subject: HostUnderTest) -> None:
        subject.check()
        self.subject = subject
        self.project = WippyProject(root, namespace=SUITE)
        host = _fields(subject.host, "HostUnderTest.host")
        lifecycle = dict(host.get("lifecycle") or {})
        lifecycle.setdefault("auto_start", True)
        lifecycle.setdefault("stop_timeout", "1s")
        host["lifecycle"] = lifecycle
        p = self.project
        self.host_id = p.add("host", host, namespace=SUBJECT)
        self.actors = {name: p.add(name, subject.actors[name], namespace=SUBJECT) for name in STANDARD_ACTORS}
        for name, fields in subject.entries.items():
            p.add(name, fields, namespace=SUBJECT)
        for path, text in subject.files.items():
            p.file(path, text, namespace=SUBJECT)
        p.file("scenarios.lua", read_resource("scenarios.lua"))
        lua_host = p.process_host("lua")
        lua = {"kind": "process.lua", "source": "file://scenarios.lua", "modules": ["time"]}
        self.config: dict[str, str] = {
            "host": self.host_id, **self.actors, "missing": f"{SUBJECT}:no_such_actor", "lua": lua_host,
            "driver": p.add("driver", {**lua, "method": "driver"}),
            "waiter": p.add("waiter", {**lua, "method": "waiter"}),
            "observer": p.add("observer", {**lua, "method": "observer"}),
        }
        self.runner = p.add("run", {"kind": "function.lua", "source": "file://scenarios.lua", "method": "run",
                                   "modules": ["time"]})

    @property
    def root(self) -> Path:
        return self.project.root

    def runtime(self, **kwargs: Any) -> Runtime:
        return self.project.runtime(**kwargs)

    async def run_in(self, rt: Runtime, scenario: str) -> Any:
        """Run ``scenario`` in a started runtime; raises :class:`ConformanceFailure`."""
        try:
            return await rt.call(self.runner, scenario, self.config, timeout=self.subject.timeout)
        except WippyError as err:
            raise ConformanceFailure(f"{scenario}: {err.text}") from None

    def run(self, scenario: str) -> None:
        """Run one scenario in a fresh runtime."""

        async def main() -> None:
            async with self.project.started() as rt:
                await self.run_in(rt, scenario)

        asyncio.run(main())
