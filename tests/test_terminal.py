"""terminal.host, the io module, and ``wippy run <command>`` / ``-x`` / ``list``."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy.cli_run import run_on_terminal
from wippy.errors import WippyError
from wippy.lua.modules import logger as lua_logger
from wippy.providers.terminal import Completion, Console, completion
from wippy.registry import load_project

HOSTS = """
  - name: terminal
    kind: terminal.host
    lifecycle: {auto_start: true}
  - name: processes
    kind: process.host
    lifecycle: {auto_start: true}
"""


class FakeTerminal:
    """Stdin from a pipe holding ``text`` (then end of input); stdout/stderr in memory."""

    def __init__(self, text: bytes = b"", close: bool = True) -> None:
        r, w = os.pipe()
        os.write(w, text)
        if close:
            os.close(w)
            self.writer: int | None = None
        else:
            self.writer = w
        self.out, self.err = io.BytesIO(), io.BytesIO()
        self.console = Console(r, self.out, self.err)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[FakeTerminal] = []

    def make(text: bytes = b"") -> FakeTerminal:
        fake = FakeTerminal(text)
        made.append(fake)
        monkeypatch.setattr(Console, "of_process", classmethod(lambda cls: fake.console))
        return fake

    yield make
    for fake in made:
        if fake.writer is not None:
            os.close(fake.writer)


def command(project: Project, source: str, *, name: str = "cli", modules: tuple[str, ...] = ("io",),
            meta: str = "") -> None:
    project.function(name, source, kind="process.lua", modules=list(modules), extra=meta)


def run_cli(project: Project, entry: str = "app:cli", *args: str, extra_entries: str = HOSTS) -> Completion:
    project.entries.append(extra_entries.strip("\n"))
    project.write()
    registry = load_project(project.root)
    return asyncio.run(run_on_terminal(registry, entry, "app:terminal", list(args)))


# --------------------------------------------------------------------------------------
# What a result means
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, Completion(0)), ("done", Completion(0, stdout="done")), (3, Completion(3)), (0, Completion(0)),
     (2.9, Completion(2)), (float("nan"), Completion(1)), (float("inf"), Completion(1)), (True, Completion(0)),
     (False, Completion(1)), ({"a": 1}, Completion(0)), ([1], Completion(0))],
)
def test_completion_of_a_value(value: Any, expected: Completion) -> None:
    assert completion(value) == expected


def test_completion_of_an_error() -> None:
    assert completion(error=WippyError("Internal", "boom")) == Completion(1, stderr="boom")
    assert completion(error=WippyError("", "P: P: rest")) == Completion(1, stderr="P: rest")
    assert completion(error=WippyError("Internal", "", context="ctx")) == Completion(1, stderr="ctx: ")


# --------------------------------------------------------------------------------------
# io on a terminal host
# --------------------------------------------------------------------------------------
def test_write_print_eprint_flush(project: Project, terminal: Any) -> None:
    fake = terminal()
    command(project, """
        local io = require("io")
        return { main = function()
          local a = io.write("a", 1, true, nil)
          local b = io.print("x", 2.5, {} ~= nil)
          local c = io.eprint("warn", 7)
          local d = io.flush()
          return a and b and c and d
        end }
    """)
    assert run_cli(project) == Completion(0)
    assert fake.out.getvalue() == b"a1truenilx\t2.5\ttrue\n"
    assert fake.err.getvalue() == b"warn\t7\n"


def test_readline_and_read(project: Project, terminal: Any) -> None:
    terminal(b"first line\nsecond\r\nabcdefgh\nlast without end")
    command(project, """
        local io = require("io")
        return { main = function()
          local out = {}
          out[#out + 1] = io.readline()
          out[#out + 1] = io.readline()
          out[#out + 1] = io.read(3)
          out[#out + 1] = io.read(0)     -- <= 0 reads up to 1024
          out[#out + 1] = io.readline()  -- the last line has no newline
          local v, err = io.readline()
          local r, rerr = io.read()
          out[#out + 1] = tostring(v) .. "|" .. tostring(err) .. "|" .. tostring(r) .. "|" .. tostring(rerr)
          return table.concat(out, ";")
        end }
    """)
    assert run_cli(project) == Completion(0, stdout="first line;second;abc;defgh\nlast without end;"
                                                    "nil|readline: EOF|nil|read: EOF")


def test_read_returns_what_is_there_and_readline_waits_for_a_line(project: Project, terminal: Any) -> None:
    terminal(b"12345\n")
    command(project, """
        local io = require("io")
        return { main = function() return io.read(2) .. "," .. io.readline() end }
    """)
    assert run_cli(project) == Completion(0, stdout="12,345")


def test_args_come_as_strings_to_main_and_io_args(project: Project, terminal: Any) -> None:
    terminal()
    command(project, """
        local io = require("io")
        return { main = function(a, b, ...)
          local args = io.args()
          return table.concat({a, b, select("#", ...), #args, table.concat(args, "+")}, ",")
        end }
    """)
    assert run_cli(project, "app:cli", "one", "two words", "3") == Completion(0, stdout="one,two words,1,3,one+two words+3")


def test_raw_mode_is_counted_and_a_no_op_on_pipes(project: Project, terminal: Any) -> None:
    terminal()
    command(project, """
        local io = require("io")
        return { main = function()
          return tostring(io.raw()) .. tostring(io.raw(true)) .. tostring(io.raw(false)) .. tostring(io.raw(false))
            .. tostring(io.raw(false))
        end }
    """)
    assert run_cli(project) == Completion(0, stdout="truetruetruetruetrue")


@pytest.mark.parametrize(("ret", "expected"), [
    ('return "text"', Completion(0, stdout="text")),
    ("return 7", Completion(7)),
    ("return false", Completion(1)),
    ("return nil", Completion(0)),
    ('error("bad thing")', None),
    ('return nil, errors.new("returned error")', Completion(1, stderr="returned error")),
])
def test_the_result_decides_the_exit(project: Project, terminal: Any, ret: str, expected: Completion | None) -> None:
    terminal()
    command(project, f"return {{ main = function() {ret} end }}")
    got = run_cli(project)
    if expected is None:
        assert got.exit_code == 1 and got.stderr is not None and got.stderr.endswith("bad thing")
    else:
        assert got == expected


def test_a_terminal_process_talks_to_other_hosts(project: Project, terminal: Any) -> None:
    fake = terminal(b"ping\n")
    project.function("echo", """
        return { main = function()
          local msg = process.inbox():receive()
          local p = msg:payload():data()
          process.send(p.from, "pong", string.upper(p.text))
        end }
    """, kind="process.lua")
    command(project, """
        local io = require("io")
        return { main = function()
          local pid = process.spawn("app:echo", "app:processes")
          process.send(pid, "ping", {from = process.pid(), text = io.readline()})
          io.print(process.inbox():receive():payload():data())
          return 0
        end }
    """)
    assert run_cli(project) == Completion(0)
    assert fake.out.getvalue() == b"PING\n"


def test_io_outside_a_terminal_is_unavailable(project: Project) -> None:
    got = run_lua(project, """
        local io = require("io")
        local results = {}
        for _, name in ipairs({"write", "print", "eprint", "flush", "read", "readline", "raw"}) do
          local v, err = io[name]("x")
          results[name] = err:kind() .. ": " .. err:message()
        end
        results.args = #io.args()
        return results
    """, modules=["io"])
    assert got.pop("args") == 0
    assert set(got.values()) == {"Unavailable: no terminal context"}


def test_a_terminal_host_runs_one_process_at_a_time(project: Project, terminal: Any) -> None:
    terminal()
    project.function("other", "return { main = function() end }", kind="process.lua")
    command(project, """
        return { main = function()
          local pid, err = process.spawn("app:other", "app:terminal")
          return err:kind() .. ": " .. err:message()
        end }
    """)
    got = run_cli(project)
    assert got.stdout == "Unavailable: terminal host app:terminal runs one process at a time and is running app:cli"


def test_hide_logs_silences_the_console_while_the_process_runs(project: Project, terminal: Any) -> None:
    terminal()
    stream = io.StringIO()
    lua_logger.configure_logging(logging.INFO, stream=stream)
    try:
        command(project, 'local logger = require("logger")\n'
                         'return { main = function() logger:info("hidden message") end }', modules=("logger",))
        hosts = HOSTS.replace("kind: terminal.host", "kind: terminal.host\n    hide_logs: true")
        assert run_cli(project, extra_entries=hosts) == Completion(0)
        logging.getLogger("wippy.lua").info("after the process")
    finally:
        lua_logger.configure_logging(None)
    assert "hidden message" not in stream.getvalue() and "after the process" in stream.getvalue()


# --------------------------------------------------------------------------------------
# Console: reads that wait, readers that went away
# --------------------------------------------------------------------------------------
def test_console_keeps_input_for_the_next_reader_when_one_goes_away() -> None:
    console = Console(None)
    console.stdin = -1  # reads wait for input (fed by hand here)
    console._start_reader = lambda: None  # type: ignore[method-assign]
    got: list[Any] = []
    alive = [True]
    assert console.read(None, lambda: alive[0], got.append) == (False, None)
    alive[0] = False  # the reader ended before input came
    assert console.read(4, lambda: True, got.append) == (False, None)
    console._feed(b"abcdef\n")
    assert got == [b"abcd"]
    assert console.read(None, lambda: True, got.append) == (True, b"ef")
    console._feed(b"")
    assert console.read(None, lambda: True, got.append) == (True, None)


def test_console_without_stdin_is_at_end_of_input() -> None:
    assert Console(None, io.BytesIO(), io.BytesIO()).read(10, lambda: True, print) == (True, None)


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------
def write_project(root: Path, entries: str, files: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_index.yaml").write_text("namespace: app\nentries:\n" + textwrap.dedent(entries).strip("\n") + "\n")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))


def wippy(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wippy.cli", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=60)


GREET = """
  - name: terminal
    kind: terminal.host
    lifecycle: {auto_start: true}
  - name: greet
    kind: process.lua
    meta:
      command: {name: greet, short: Say hello}
    source: file://greet.lua
    method: main
    modules: [io]
  - name: code
    kind: process.lua
    meta:
      command: {name: code}
    source: file://code.lua
    method: main
"""
GREET_FILES = {
    "greet.lua": """
        local io = require("io")
        return { main = function(who)
          io.write("name? ")
          local name = io.readline() or "?"
          return "hello " .. (who or name)
        end }
    """,
    "code.lua": "return { main = function(n) if n == 'fail' then error('it failed') end return tonumber(n) end }",
}


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_project(root, GREET, GREET_FILES)
    return root


def test_wippy_run_command_reads_stdin_and_prints_the_result(cli_project: Path) -> None:
    done = wippy("run", "greet", cwd=cli_project, stdin="Ada\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "name? hello Ada\n", "")


def test_wippy_run_command_with_arguments_and_a_project_dir(cli_project: Path) -> None:
    done = wippy("run", str(cli_project), "greet", "Bob", cwd=cli_project.parent)
    assert (done.returncode, done.stdout) == (0, "name? hello Bob\n")


@pytest.mark.parametrize(("arg", "code", "stderr"), [("5", 5, ""), ("0", 0, ""), ("fail", 1, "it failed")])
def test_wippy_run_exit_codes(cli_project: Path, arg: str, code: int, stderr: str) -> None:
    done = wippy("run", "code", "--", arg, cwd=cli_project)
    assert done.returncode == code and stderr in done.stderr


def test_wippy_run_exec_an_entry(cli_project: Path) -> None:
    done = wippy("run", "-x", "app:greet", "Cy", cwd=cli_project)
    assert (done.returncode, done.stdout) == (0, "name? hello Cy\n")


def test_wippy_run_list(cli_project: Path) -> None:
    done = wippy("run", "list", cwd=cli_project)
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["Available commands:", "", "  greet  Say hello  (app:greet)",
                                        "  code              (app:code)", "", "Run with: wippy run <command>"]


def test_wippy_run_list_without_commands(tmp_path: Path) -> None:
    write_project(tmp_path, "  - name: x\n    kind: registry.entry", {})
    done = wippy("run", "list", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("No commands found.")


def test_an_unknown_command(cli_project: Path) -> None:
    done = wippy("run", "nope", cwd=cli_project)
    assert done.returncode == 1
    assert "command 'nope' not found. Use 'wippy run list' to see available commands" in done.stderr


def test_a_directory_named_like_a_command_is_the_command(cli_project: Path) -> None:
    (cli_project / "greet").mkdir()
    done = wippy("run", "greet", "Dee", cwd=cli_project)
    assert (done.returncode, done.stdout) == (0, "name? hello Dee\n")


@pytest.mark.parametrize(("hosts", "args", "message"), [
    ("", (), "no terminal.host found in registry"),
    ("  - name: t2\n    kind: terminal.host\n  - name: t3\n    kind: terminal.host\n", (),
     "multiple terminal hosts found (app:t2, app:t3), use --host to specify"),
    ("", ("--host", "app:missing"), "host app:missing not found"),
])
def test_terminal_host_selection_errors(tmp_path: Path, hosts: str, args: tuple[str, ...], message: str) -> None:
    entries = GREET.replace("  - name: terminal\n    kind: terminal.host\n    lifecycle: {auto_start: true}\n", hosts)
    write_project(tmp_path, entries, GREET_FILES)
    done = wippy("run", *args, "code", "--", "3", cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr


def test_host_option_picks_one_of_several(tmp_path: Path) -> None:
    entries = GREET + "  - name: t2\n    kind: terminal.host\n"
    write_project(tmp_path, entries, GREET_FILES)
    done = wippy("run", "--host", "app:t2", "code", "--", "4", cwd=tmp_path)  # not auto-started: started for it
    assert done.returncode == 4, done.stderr


def test_a_command_runs_silent_unless_asked(tmp_path: Path) -> None:
    write_project(tmp_path, GREET + """
  - name: loud
    kind: process.lua
    meta: {command: {name: loud}}
    source: file://loud.lua
    method: main
    modules: [logger]
""", {**GREET_FILES, "loud.lua": 'local logger = require("logger")\n'
                                 'return { main = function() logger:warn("a warning") return 0 end }'})
    done = wippy("run", "loud", cwd=tmp_path)
    assert done.returncode == 0 and "a warning" not in done.stderr


# --------------------------------------------------------------------------------------
# Our own test runner as a command: io, registry, funcs and time together
# --------------------------------------------------------------------------------------
RUNNER = """
local io = require("io")
local registry = require("registry")
local funcs = require("funcs")
local time = require("time")

local function main(...)
  local wanted = io.args()
  local tests = registry.find({["meta.type"] = "check"})
  table.sort(tests, function(a, b)
    local oa, ob = a.meta.order or 0, b.meta.order or 0
    if oa ~= ob then return oa < ob end
    return a.id < b.id
  end)
  local passed, failed = 0, 0
  local started = time.now()
  for _, entry in ipairs(tests) do
    local selected = #wanted == 0
    for _, w in ipairs(wanted) do if entry.id:find(w, 1, true) then selected = true end end
    if selected then
      local ok, result, err = pcall(funcs.call, entry.id)
      if ok and err == nil and result ~= false then
        passed = passed + 1
        io.print("ok   " .. entry.id)
      else
        failed = failed + 1
        io.print("FAIL " .. entry.id .. ": " .. tostring(ok and err or result))
      end
    end
  end
  local took = time.now():sub(started):milliseconds()
  io.print(string.format("%d passed, %d failed", passed, failed), type(took))
  return failed > 0 and 1 or 0
end

return { main = main }
"""


def test_a_runner_command_runs_checks_through_funcs(tmp_path: Path) -> None:
    write_project(tmp_path, """
  - name: terminal
    kind: terminal.host
    lifecycle: {auto_start: true}
  - name: runner
    kind: process.lua
    meta: {command: {name: check, short: Run checks}}
    source: file://runner.lua
    method: main
    modules: [io, registry, funcs, time]
  - name: good
    kind: function.lua
    meta: {type: check, order: 2}
    source: file://good.lua
    method: main
  - name: bad
    kind: function.lua
    meta: {type: check, order: 1}
    source: file://bad.lua
    method: main
""", {"runner.lua": RUNNER, "good.lua": "return { main = function() return true end }",
      "bad.lua": "return { main = function() error('nope') end }"})
    done = wippy("run", "check", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["FAIL app:bad: bad.lua:1: nope", "ok   app:good", "1 passed, 1 failed\tnumber"]
    only_good = wippy("run", "check", "good", cwd=tmp_path)
    assert only_good.returncode == 0 and only_good.stdout.splitlines()[-1] == "1 passed, 0 failed\tnumber"


# --------------------------------------------------------------------------------------
# The upstream echo-service tutorial, as written (read from the docs mirror when present)
# --------------------------------------------------------------------------------------
DOCS_MIRROR = Path(os.environ.get("WIPPY_DOCS_MIRROR", "/work/.mirror/wippyai+docs/repo"))


def tutorial_files(page: str) -> dict[str, str]:
    if not DOCS_MIRROR.exists():
        pytest.skip(f"the wippyai/docs mirror is not at {DOCS_MIRROR} (set WIPPY_DOCS_MIRROR)")
    text = subprocess.run(["git", f"--git-dir={DOCS_MIRROR}", "show", f"HEAD:{page}"], capture_output=True,
                          text=True, check=True).stdout
    import re

    return dict(re.findall(r"Create `src/([^`]+)`:\n\n```\w+\n(.*?)```", text, re.S))


def test_echo_service_tutorial(tmp_path: Path) -> None:
    files = tutorial_files("en/tutorials/echo-service.md")
    assert set(files) == {"_index.yaml", "relay.lua", "worker.lua", "cli.lua"}
    (tmp_path / "src").mkdir()
    for name, text in files.items():
        (tmp_path / "src" / name).write_text(text)
    (tmp_path / "wippy.lock").write_text("directories:\n  modules: .wippy\n  src: ./src\n")
    done = wippy("run", "-x", "app:cli", cwd=tmp_path, stdin="hello world\nsecond line\n")
    assert done.returncode == 0, done.stderr
    plain = __import__("re").sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert plain.splitlines() == [
        "Echo Client", "Type messages to echo. Ctrl+C to exit.", "",
        "> " + "  HELLO WORLD", plain.splitlines()[4],
        "> " + "  SECOND LINE", plain.splitlines()[6],
        "> ", "Goodbye!",
    ]
    assert plain.splitlines()[4].startswith("  from worker: {app:processes|")
    assert plain.splitlines()[6].startswith("  from worker: {app:processes|")


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    yield
    lua_logger.suspend_console(False)

