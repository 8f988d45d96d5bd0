"""The env module and kinds: storages, variables, lookup rules, errors, placeholders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError
from wippy.errors import LoadError
from wippy.providers.env import parse_dotenv
from wippy.registry import load_project
from wippy.registry.env import resolve_placeholders
from wippy.registry.kinds import KINDS, KindSpec, register_kind

ENTRIES = """
  - name: mem
    kind: env.storage.memory
  - name: osenv
    kind: env.storage.os
  - name: fixed
    kind: env.storage.static
    values: {API_HOST: "https://api.example", PORT: 8080, DEBUG: true}
  - name: layered
    kind: env.storage.router
    storages: [mem, app:osenv]
  - name: HOME_DIR
    kind: env.variable
    variable: WIPPY_TEST_HOME
    storage: osenv
  - name: MEMVAR
    kind: env.variable
    variable: MEMVAR
    storage: mem
  - name: WITH_DEFAULT
    kind: env.variable
    variable: WITH_DEFAULT
    storage: mem
    default: fallback
  - name: LOCKED
    kind: env.variable
    variable: LOCKED
    storage: mem
    readonly: true
  - name: API_HOST
    kind: env.variable
    variable: API_HOST
    storage: fixed
  - name: ROUTED
    kind: env.variable
    variable: WIPPY_TEST_ROUTED
    storage: layered
  - name: secret
    kind: env.variable
    storage: mem
"""


@pytest.fixture(autouse=True)
def os_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIPPY_TEST_HOME", "/home/tester")
    monkeypatch.setenv("WIPPY_TEST_ROUTED", "from-os")
    monkeypatch.setenv("WIPPY_TEST_RAW_OS", "raw value")  # no variable: placeholders read it directly


def env(project: Project, body: str, *, extra: str = "") -> Any:
    project.entries.append((ENTRIES + extra).strip("\n"))
    return run_lua(project, 'local env = require("env")\n' + body, modules=["env"])


def err_of(project: Project, call: str) -> dict[str, Any]:
    return env(project, f"local v, err = {call}\nreturn {{v = v, kind = err:kind(), msg = tostring(err), "
                        "retryable = err:retryable()}")


def test_get_from_each_kind_of_storage(project: Project) -> None:
    got = env(project, """
        env.set("MEMVAR", "m1")
        return {home = env.get("WIPPY_TEST_HOME"), mem = env.get("MEMVAR"), static = env.get("API_HOST"),
                routed = env.get("WIPPY_TEST_ROUTED"), default = env.get("WITH_DEFAULT")}
    """)
    assert got == {"home": "/home/tester", "mem": "m1", "static": "https://api.example", "routed": "from-os",
                   "default": "fallback"}


def test_set_then_get_and_overwrite(project: Project) -> None:
    assert env(project, """
        local ok, err = env.set("MEMVAR", "one")
        local a = env.get("MEMVAR")
        env.set("MEMVAR", "two")
        return {ok = ok, err = err, a = a, b = env.get("MEMVAR")}
    """) == {"ok": True, "a": "one", "b": "two"}


def test_an_empty_value_counts_as_unset(project: Project) -> None:
    got = env(project, """
        env.set("WITH_DEFAULT", "")
        env.set("MEMVAR", "")
        local v, err = env.get("MEMVAR")
        return {default = env.get("WITH_DEFAULT"), kind = err:kind()}
    """)
    assert got == {"default": "fallback", "kind": "NotFound"}


def test_router_writes_to_its_first_storage_and_reads_through(project: Project) -> None:
    got = env(project, """
        local ok = env.set("WIPPY_TEST_ROUTED", "from-memory")
        return {ok = ok, routed = env.get("WIPPY_TEST_ROUTED"), all = env.get_all().WIPPY_TEST_ROUTED}
    """)
    assert got == {"ok": True, "routed": "from-memory", "all": "from-memory"}


def test_a_variable_without_public_name_is_reached_by_its_id(project: Project) -> None:
    got = env(project, """
        env.set("app:secret", "s3")
        local by_bare = env.get("secret")   -- the caller's namespace
        local v, err = env.get("other:secret")
        return {full = env.get("app:secret"), bare = by_bare, other = err:kind(), key = env.get_all()["app:secret"]}
    """)
    assert got == {"full": "s3", "bare": "s3", "other": "NotFound", "key": "s3"}


def test_get_all_is_every_storage(project: Project) -> None:
    got = env(project, """
        env.set("MEMVAR", "x")
        local all = env.get_all()
        return {home = all.WIPPY_TEST_HOME, mem = all.MEMVAR, static = all.PORT, debug = all.DEBUG}
    """)
    assert got == {"home": "/home/tester", "mem": "x", "static": "8080", "debug": "true"}


@pytest.mark.parametrize(
    ("call", "kind", "message"),
    [
        ('env.get("")', "Invalid", "empty key"),
        ('env.set("", "v")', "Invalid", "empty key"),
        ('env.get("NO_SUCH_VARIABLE_XYZ")', "NotFound", "environment variable not found: NO_SUCH_VARIABLE_XYZ"),
        ('env.set("NO_SUCH_VARIABLE_XYZ", "v")', "NotFound", "not found"),
        ('env.get("MEMVAR")', "NotFound", "not set, no default"),
        ('env.set("LOCKED", "v")', "PermissionDenied", "LOCKED is read-only"),
        ('env.set("WIPPY_TEST_HOME", "v")', "PermissionDenied", "read-only"),
        ('env.set("API_HOST", "v")', "PermissionDenied", "read-only"),
    ],
)
def test_errors(project: Project, call: str, kind: str, message: str) -> None:
    got = err_of(project, call)
    assert got["kind"] == kind and message in got["msg"] and got["retryable"] is False and "v" not in got


def test_numbers_are_taken_as_strings(project: Project) -> None:
    assert env(project, 'env.set("MEMVAR", 42)\nreturn env.get("MEMVAR")') == "42"


@pytest.mark.parametrize("call", ['env.set("MEMVAR", {})', "env.get(nil)", "env.set(true, 'x')"])
def test_other_argument_types_raise(project: Project, call: str) -> None:
    with pytest.raises(WippyError, match="string expected"):
        env(project, f"return {call}")


def test_file_storage_reads_and_rewrites_its_file(project: Project) -> None:
    envfile = project.root / "conf" / "app.env"
    envfile.parent.mkdir()
    envfile.write_text('# settings\nexport NAME=value # trailing\nQUOTED="a b # not a comment"\nSINGLE=\'x\'\n')
    extra = """
  - name: dotenv
    kind: env.storage.file
    file_path: conf/app.env
  - name: NAME
    kind: env.variable
    variable: NAME
    storage: dotenv
  - name: QUOTED
    kind: env.variable
    variable: QUOTED
    storage: dotenv
  - name: NEWVAR
    kind: env.variable
    variable: NEWVAR
    storage: dotenv
"""
    got = env(project, """
        local a, b = env.get("NAME"), env.get("QUOTED")
        env.set("NEWVAR", "has space")
        return {a, b}
    """, extra=extra)
    assert got == ["value", "a b # not a comment"]
    assert parse_dotenv(envfile.read_text()) == {"NAME": "value", "QUOTED": "a b # not a comment", "SINGLE": "x",
                                                 "NEWVAR": "has space"}


def test_file_storage_auto_create_and_modes(project: Project) -> None:
    envfile = project.root / "made" / "new.env"
    extra = """
  - name: dotenv
    kind: env.storage.file
    file_path: made/new.env
    auto_create: true
    file_mode: 0600
  - name: NEWVAR
    kind: env.variable
    variable: NEWVAR
    storage: dotenv
"""
    assert env(project, 'env.set("NEWVAR", "v")\nreturn env.get("NEWVAR")', extra=extra) == "v"
    assert envfile.read_text() == "NEWVAR=v\n"
    assert envfile.stat().st_mode & 0o777 == 0o600


def test_a_missing_file_without_auto_create_is_an_error(project: Project) -> None:
    extra = """
  - name: dotenv
    kind: env.storage.file
    file_path: nowhere.env
  - name: NEWVAR
    kind: env.variable
    variable: NEWVAR
    storage: dotenv
"""
    assert "does not exist" in env(project, 'local v, err = env.get("NEWVAR")\nreturn err:message()', extra=extra)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB = 2 \n", {"A": "1", "B": "2"}),
        ("# c\n\nexport X=y", {"X": "y"}),
        ('Q="line\\nnext"', {"Q": "line\nnext"}),
        ("V=a # note", {"V": "a"}),
        ("V=a#b", {"V": "a#b"}),
        ("noequals\n=novalue", {}),
    ],
)
def test_dotenv_format(text: str, expected: dict[str, str]) -> None:
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("  - name: a\n    kind: env.variable\n    variable: BAD-NAME\n    storage: m\n"
         "  - name: m\n    kind: env.storage.memory", "may contain only letters"),
        ("  - name: a\n    kind: env.variable\n    variable: X\n    storage: m\n"
         "  - name: b\n    kind: env.variable\n    variable: X\n    storage: m\n"
         "  - name: m\n    kind: env.storage.memory", "already the name of app:a"),
        ("  - name: a\n    kind: env.variable\n    storage: nowhere", "app:nowhere, which does not exist"),
        ("  - name: a\n    kind: env.variable\n    storage: other\n"
         "  - name: other\n    kind: registry.entry", "expected an env.storage"),
        ("  - name: a\n    kind: env.variable", "storage: is required"),
        ("  - name: r\n    kind: env.storage.router\n    storages: []", "at least one storage"),
        ("  - name: f\n    kind: env.storage.file", "file_path: is required"),
        ("  - name: f\n    kind: env.storage.file\n    file_path: x\n    file_mode: abc", "permission mode"),
        ("  - name: m\n    kind: env.storage.memory\n    typo: 1", "typo: is not a field"),
    ],
)
def test_load_time_checks(tmp_path: Path, entries: str, message: str) -> None:
    (tmp_path / "_index.yaml").write_text(f"namespace: app\nentries:\n{entries}\n")
    with pytest.raises(LoadError) as info:
        load_project(tmp_path)
    assert message in str(info.value)


# --------------------------------------------------------------------------------------
# ${env:NAME} placeholders
# --------------------------------------------------------------------------------------
VALUES = {"HOST": "db.local", "PORT": "5432", "FLAG": "true", "RATIO": "0.5", "EMPTY": None}


def lookup(name: str) -> str | None:
    if name not in VALUES:
        raise WippyError("NotFound", f"environment variable not found: {name}")
    return VALUES[name]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${env:HOST}", "db.local"),
        ("postgres://${env:HOST}:${env:PORT}/app", "postgres://db.local:5432/app"),
        ("${env:PORT|1}", 5432),
        ("${env:FLAG|false}", True),
        ("${env:RATIO|1.0}", 0.5),
        ("${env:EMPTY|8080}", 8080),
        ("${env:MISSING|dflt}", "dflt"),
        ("${env:MISSING|}", ""),
        ("${HOST|x}", "db.local"),
        ("${NOPE|fallback}", "fallback"),
        ("${HOST}", "${HOST}"),  # bare ${VAR}: left alone
        ("${lower|x}", "${lower|x}"),  # the shorthand needs an upper-snake name
        ("$${env:HOST}", "${env:HOST}"),  # escaped
        ("cost: $5", "cost: $5"),
        ("${env:PORT}", "5432"),  # no typed default: text
    ],
)
def test_placeholders(text: str, expected: Any) -> None:
    assert resolve_placeholders({"field": text}, lookup) == {"field": expected}


def test_placeholders_inside_lists_and_maps() -> None:
    assert resolve_placeholders({"a": ["${env:HOST}", {"b": "${env:PORT|0}"}], "n": 3}, lookup) == \
        {"a": ["db.local", {"b": 5432}], "n": 3}


@pytest.mark.parametrize(("text", "message"), [
    ("${env:MISSING}", "tls.cert: environment variable MISSING is not set (and the placeholder has no default)"),
    ("${env:EMPTY}", "EMPTY is not set"),
    ("${env:HOST|1}", "not of the type of its default"),
])
def test_unresolved_placeholders_fail_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(WippyError) as info:
        resolve_placeholders({"tls": {"cert": text}}, lookup)
    assert message in info.value.message


class _Captured:
    seen: list[dict[str, Any]] = []

    def __init__(self, kernel: Any, entry: Any) -> None:
        self.entry = entry
        _Captured.seen.append(entry.data)

    async def start(self) -> None:
        pass

    async def stop(self, timeout: float) -> None:
        pass


@pytest.fixture
def capture_kind() -> Any:
    register_kind(KindSpec("test.capture", role="service", factory=_Captured))
    _Captured.seen = []
    yield _Captured
    KINDS.pop("test.capture", None)


SERVICE = """
  - name: svc
    kind: test.capture
    meta: {note: "${env:MEMVAR}"}
    addr: "${env:WIPPY_TEST_HOME}/sock"
    mode: "${env:WITH_DEFAULT|%s}"
    raw: "${env:WIPPY_TEST_RAW_OS}"
    lifecycle: {auto_start: true}
"""


def _start(project: Project, default: str) -> Any:
    project.entries.append((ENTRIES + SERVICE % default).strip("\n"))
    project.function("t", 'local registry = require("registry")\n'
                     'return { main = function() return registry.get("app:svc").data.addr end }',
                     modules=["registry"])
    rt = project.runtime()

    async def main() -> Any:
        async with rt:
            return await rt.call("app:t")

    return asyncio.run(main())


def test_services_get_their_data_resolved_and_the_registry_keeps_the_text(project: Project, capture_kind: Any) -> None:
    assert _start(project, "x") == "${env:WIPPY_TEST_HOME}/sock"
    data = _Captured.seen[-1]
    assert data["addr"] == "/home/tester/sock" and data["mode"] == "fallback" and data["raw"] == "raw value"
    assert data["meta"] == {"note": "${env:MEMVAR}"}  # meta is not configuration: kept as written


def test_a_placeholder_that_does_not_resolve_stops_the_start(project: Project, capture_kind: Any) -> None:
    with pytest.raises(WippyError, match="app:svc: mode: value 'fallback' is not of the type of its default '1'"):
        _start(project, "1")
    assert _Captured.seen == []
