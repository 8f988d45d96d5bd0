"""``dev.py`` and the README's quick start: the demo's stdout is its JSON result, it can run
again without piling up workflows, the first run says it is installing, and the README
points at nothing outside the repository."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIPPY = [sys.executable, "-m", "wippy.cli"]


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _demo(app: Path) -> subprocess.CompletedProcess[str]:
    """``python3 dev.py demo`` on a copy of the demo app, with the environment as it is."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import dev; "
            "dev.ensure_env = lambda: None; dev.DEMO = Path(sys.argv[2]); "
            "dev.DEMO_STORE = dev.DEMO / '.wippy' / 'orders.db'; sys.argv = ['dev.py', 'demo']; "
            "sys.exit(dev.main())")
    return subprocess.run([sys.executable, "-c", code, str(ROOT), str(app)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_demo_stdout_is_json_and_a_second_run_adds_no_workflows(tmp_path: Path) -> None:
    if not (_dev().BIN / "wippy").exists():
        pytest.skip("no .venv/bin/wippy here (dev.py's environment is not set up)")
    app = tmp_path / "orders"
    shutil.copytree(ROOT / "examples" / "orders", app, ignore=shutil.ignore_patterns(".wippy"))
    for _ in range(2):
        proc = _demo(app)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)  # only the JSON result: "+ cmd" and "ok: ..." are on stderr
        assert {k: v["status"] for k, v in result.items()} == {
            "A-1": "completed", "A-2": "completed", "A-3": "failed", "A-4": "shipping_failed", "A-5": "rejected"}
        assert re.search(r"^\+ .*wippy check ", proc.stderr, re.MULTILINE)
        assert "ok: 11 entries in " in proc.stderr
    listed = subprocess.run([*WIPPY, "workflows", "list", str(app), "--json"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    rows: Any = json.loads(listed.stdout)
    ids = sorted(r["workflow_id"] for r in (rows["workflows"] if isinstance(rows, dict) else rows))
    assert ids == ["order-A-1", "order-A-2", "order-A-3", "order-A-4", "order-A-5"]


def test_first_run_says_it_is_installing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    dev = _dev()
    ran: list[tuple[str, ...]] = []
    monkeypatch.setattr(dev, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(dev, "PY", tmp_path / ".venv" / "bin" / "python")
    monkeypatch.setattr(dev, "STAMP", tmp_path / "stamp")
    monkeypatch.setattr(dev, "ROOT", ROOT)
    monkeypatch.setattr(dev.venv, "EnvBuilder", lambda **kw: type("B", (), {"create": lambda self, d: None})())
    monkeypatch.setattr(dev, "run", lambda *cmd, **kw: ran.append(tuple(map(str, cmd))) or 0)
    dev.ensure_env()
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("first run: creating the virtual environment ")
    assert "installing wippy" in err and "about a minute" in err
    assert any("install" in c and "-e" in c for c in ran)


def test_dev_py_commands_are_echoed_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert _dev().run(sys.executable, "-c", "print('out')") == 0
    out, err = capsys.readouterr()
    assert err.startswith("+ ") and "print('out')" in err
    assert "+ " not in out


def test_readme_links_stay_inside_the_repository() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r"`((?:\.\./|/)[^`\s]+)`", text)
    outside = [t for t in targets if t.startswith(("../", "/")) and not t.startswith("//")]
    assert not outside, outside
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target
    for path in re.findall(r"`(docs/[\w.-]+\.md)`", text):
        assert (ROOT / path).exists(), path
