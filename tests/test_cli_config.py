"""The CLI's global flags and configuration: --version, help texts, -v/-s/--log-json,
--debug and tracebacks, .wippy.yaml, --set and -o/--override (run as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import wippy
from wippy.cli import main
from wippy.registry.overrides import OverrideError, coerce, parse, split

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT = FIXTURES / "cli_project"
INDEX = """\
namespace: app
entries:
  - name: hello
    kind: function.lua
    source: file://f.lua
    method: main
    meta: {greeting: Hello}
  - name: procs
    kind: process.host
    lifecycle: {auto_start: true}
"""
SOURCE = 'return { main = function() return "hi" end, other = function() return "other" end }\n'


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, check=False)


def project(root: Path, config: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text(INDEX)
    (root / "f.lua").write_text(SOURCE)
    if config is not None:
        (root / ".wippy.yaml").write_text(config)
    return root


# Version and help ---------------------------------------------------------------------
def test_version_flag_and_command() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"wippy {wippy.__version__} (Python ")
    short = run_cli("version", "--short")
    assert (short.returncode, short.stdout) == (0, f"{wippy.__version__}\n")


@pytest.mark.parametrize(("command", "fragment"), [
    ("run", "start the project's auto_start entries and run until interrupted"),
    ("check", "Load the project and check everything that can be checked without running it"),
    ("exec", "--timeout SECONDS"),
    ("test", "Run every function.lua entry with meta.type: test"),
])
def test_commands_have_descriptions_and_the_global_flags(command: str, fragment: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert fragment in text
    for flag in ("-v, --verbose", "--very-verbose", "-s, --silent", "--log-json", "--debug", "--config FILE",
                 "--set SECTION.PATH=VALUE"):
        assert flag in text, (command, flag)


def test_wippy_alone_prints_help() -> None:
    proc = run_cli()
    assert proc.returncode == 0
    assert "usage: wippy" in proc.stdout and "check" in proc.stdout


# Logging flags ---------------------------------------------------------------------------
def test_log_levels_and_json_lines() -> None:
    default = run_cli("exec", str(PROJECT), "app:logs")
    assert default.returncode == 0 and json.loads(default.stdout) == "logged"
    assert "warn line" in default.stderr and "info line" not in default.stderr
    verbose = run_cli("exec", "-v", str(PROJECT), "app:logs")
    assert all(f"{level} line" in verbose.stderr for level in ("debug", "info", "warn"))
    silent = run_cli("-s", "exec", str(PROJECT), "app:logs")  # a global flag before the command works too
    assert (silent.returncode, silent.stderr) == (0, "")
    lines = run_cli("exec", "--log-json", "-v", str(PROJECT), "app:logs").stderr.splitlines()
    records = [json.loads(line) for line in lines]
    info = next(r for r in records if r["msg"] == "info line")
    assert info["level"] == "info" and info["logger"] == "wippy.lua" and info["user"] == "ada"
    assert info["ts"][:4].isdigit() and "T" in info["ts"]


def test_config_file_sets_the_log_level_and_flags_and_set_override_it(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 'version: "1.0"\nlogger: {level: error, encoding: json}\n')
    (root / "_index.yaml").write_text(INDEX.replace("    meta: {greeting: Hello}\n",
                                                    "    modules: [logger]\n"))
    (root / "f.lua").write_text('local logger = require("logger")\n'
                                'return { main = function() logger:warn("careful") logger:error("bad") '
                                'return 1 end }\n')
    from_file = run_cli("exec", str(root), "app:hello")
    assert [json.loads(line)["msg"] for line in from_file.stderr.splitlines()] == ["bad"]
    flag = run_cli("exec", "-v", str(root), "app:hello")  # the flag beats the file
    assert [json.loads(line)["msg"] for line in flag.stderr.splitlines()] == ["careful", "bad"]
    setting = run_cli("exec", "-v", "--set", "logger.level=error", "--set", "logger.encoding=console",
                    str(root), "app:hello")  # --set beats the flag
    assert setting.stderr.count("\n") == 1 and "\tERROR\twippy.lua\tbad" in setting.stderr


# Tracebacks ------------------------------------------------------------------------------
def test_no_traceback_for_an_internal_fault_unless_debug(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import wippy.cli_common

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store exploded")

    monkeypatch.setattr(wippy.cli_common, "load_project", broken)
    assert main(["check", str(PROJECT)]) == 1
    err = capsys.readouterr().err
    assert err == "error: internal error (RuntimeError: the store exploded); --debug shows the Python traceback\n"
    with pytest.raises(RuntimeError, match="the store exploded"):
        main(["check", "--debug", str(PROJECT)])
    monkeypatch.setattr(wippy.cli_common, "load_project", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", "/srv/app/wf.db")))
    assert main(["check", str(PROJECT)]) == 1
    assert capsys.readouterr().err == "error: Permission denied: /srv/app/wf.db\n"


def test_operational_faults_are_one_line(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    (root / "_index.yaml").write_text(INDEX + "  - {name: wf, kind: workflow.host, store: blocker/wf.db, "
                                              "lifecycle: {auto_start: true}}\n")
    (root / "blocker").write_text("a file where the store's directory should be")
    for args in (["exec", str(root), "app:hello"], ["run", str(root)], ["test", str(root)],
                 ["exec", "--config", str(tmp_path / "nope.yaml"), str(root), "app:hello"]):
        proc = run_cli(*args)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
    proc = run_cli("exec", str(root), "app:hello")
    assert proc.returncode == 1 and "error: Unavailable: workflow store directory" in proc.stderr


# .wippy.yaml ------------------------------------------------------------------------------
@pytest.mark.parametrize(("config", "message"), [
    ("logger: {level: debug}\n", ".wippy.yaml: missing version field (version: \"1.0\")"),
    ('version: "2.0"\n', ".wippy.yaml: unsupported version: 2.0"),
    ('version: "1.0"\nlogger: [1\n', ".wippy.yaml:3: malformed YAML"),
    ('version: "1.0"\nlogger: {level: loud}\n', "logger.level: expected one of debug, info, warn, error; "
                                                 "got 'loud'"),
    ('version: "1.0"\noverride: {"app:hello": 1}\n', "override 'app:hello': expected namespace:entry:path"),
])
def test_a_bad_config_file_is_an_error(tmp_path: Path, config: str, message: str) -> None:
    root = project(tmp_path / "p", config)
    proc = run_cli("check", str(root))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_file_overrides_and_unknown_sections(tmp_path: Path) -> None:
    root = project(tmp_path / "p", 'version: "1.0"\nlogr: {level: debug}\nlua: {type_system: {enabled: true}}\n'
                                   'override:\n  "app:hello:method": other\n'
                                   '  "app:hello:meta.greeting": ${env:WIPPY_TEST_GREETING}\n')
    proc = subprocess.run([sys.executable, "-m", "wippy.cli", "exec", str(root), "app:hello"], capture_output=True,
                          text=True, timeout=60, env={**__import__("os").environ, "WIPPY_TEST_GREETING": "Hey"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == "other"  # the override's method
    assert "section 'logr' is not used by this runtime (did you mean logger?)" in proc.stderr
    assert "lua" not in proc.stderr.replace("wippy.lua", "")  # upstream's sections: accepted quietly
    missing = run_cli("exec", str(root), "app:hello")
    assert missing.returncode == 1 and "environment variable WIPPY_TEST_GREETING is not set" in missing.stderr


def test_explicit_config_file(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    config = tmp_path / "prod.yaml"
    config.write_text('version: "1.0"\noverride: {"app:hello:method": other}\n')
    proc = run_cli("exec", "--config", str(config), str(root), "app:hello")
    assert (proc.returncode, json.loads(proc.stdout)) == (0, "other")
    absent = run_cli("exec", "--config", str(tmp_path / "nope.yaml"), str(root), "app:hello")
    assert absent.returncode == 1 and "nope.yaml: config file not found" in absent.stderr


# -o / --override --------------------------------------------------------------------------
def test_override_sets_data_meta_and_kind_fields(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    proc = run_cli("exec", str(root), "app:hello", "-o", "app:hello:method=other")
    assert (proc.returncode, json.loads(proc.stdout)) == (0, "other")
    proc = run_cli("check", str(root), "-o", "app:hello:data.method=other,app:procs:lifecycle.auto_start=false",
                 "-o", "app:hello:meta.greeting.text=x")
    assert proc.returncode == 1  # meta.greeting is a string: it cannot hold a field
    assert ("--override app:hello:meta.greeting.text: cannot set meta.greeting.text: meta.greeting is a string, "
            "not a mapping") in proc.stderr
    proc = run_cli("check", str(root), "-o", "app:hello:kind=function.lau", "-o", "app:helo:method=x")
    assert proc.returncode == 1
    assert "field kind: unknown kind 'function.lau' (did you mean function.lua?)" in proc.stderr
    assert "--override: app:helo:method: there is no entry app:helo to override (did you mean app:hello?)" \
        in proc.stderr


def test_a_problem_in_an_overridden_field_names_the_override(tmp_path: Path) -> None:
    root = project(tmp_path / "p")
    proc = run_cli("check", str(root), "-o", "app:procs:lifecycle.auto_start=maybe")
    assert proc.returncode == 1
    assert ("entry app:procs: field lifecycle.auto_start: must be true or false, got 'maybe' (the value is "
            "from --override app:procs:lifecycle.auto_start)") in proc.stderr


@pytest.mark.parametrize("bad", ["app:hello", "app:hello=1", "app::method=x", "app:hello:meta=1",
                                 "app:hello:name=x", "app:hello:a..b=1"])
def test_a_malformed_override_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    proc = run_cli("check", str(project(tmp_path / "p")), "-o", bad)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: -o ")


def test_override_values_and_splitting() -> None:
    assert [coerce(v) for v in ("true", "FALSE", "42", "-7", "007", "1.5", "1e3", "inf", ":8080", "")] == \
        [True, False, 42, -7, "007", 1.5, 1000.0, "inf", ":8080", ""]
    assert split(["app:a:x=1,app:b:y=2", "app:gw:addrs=a,b"]) == ["app:a:x=1", "app:b:y=2", "app:gw:addrs=a,b"]
    o = parse("app.v2:gw.v1:.lifecycle.auto_start=false")
    assert (o.entry, o.path, o.value, o.field) == ("app.v2:gw.v1", "lifecycle.auto_start", False,
                                                   "lifecycle.auto_start")
    assert parse("app:x:data.addr= :1 ").value == " :1 "  # the raw, untrimmed text
    assert parse("app:x:meta.a.b=1").field == "meta.a.b"
    with pytest.raises(OverrideError):
        parse("app:x:data=1")
