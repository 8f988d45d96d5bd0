#!/usr/bin/env python3
"""Run the upstream Wippy runtime's app test suites on this runtime and print a score.

The upstream files are read from a local git mirror of ``wippyai/runtime`` (never copied
into this repository): each suite is assembled in a temporary directory as the
compatibility issue describes -- its own folder and ``_index.yaml`` as they are, the
upstream ``lib/`` folder, and a root ``_index.yaml`` that declares only the
``app:processes`` host -- then run with ``wippy test``.

    python tools/upstream_suites.py --mirror /path/to/runtime.git [suite ...]

``temporal`` runs against a Temporal dev server (``--temporal ADDR``, started with
``wippy temporal dev``); ``temporal@workflow.host`` runs the same files with the
``temporal.worker`` entry replaced by a ``workflow.host`` of the same name (and task
queue).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

SUITES = ["funcs", "time", "errors", "uuid", "json", "ctx", "channel", "processfunc", "process",
          "temporal", "temporal@workflow.host"]
ROOT_INDEX = """version: "1.0"
namespace: app

entries:
  - name: processes
    kind: process.host
    lifecycle:
      auto_start: true
"""


def extract(mirror: str, path: str, dest: Path, rev: str) -> None:
    data = subprocess.run(["git", f"--git-dir={mirror}", "archive", rev, path], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")


def assemble(mirror: str, suite: str, work: Path, rev: str, temporal: str | None) -> Path:
    name, _, variant = suite.partition("@")
    proj = work / suite.replace("@", "_")
    if proj.exists():
        shutil.rmtree(proj)
    raw = work / "raw"
    src = raw / "tests/app/src"
    for part in ("lib", f"test/{name}"):
        if not (src / part).exists():
            extract(mirror, f"tests/app/src/{part}", raw, rev)
    proj.mkdir(parents=True)
    (proj / "_index.yaml").write_text(ROOT_INDEX)
    shutil.copytree(src / "lib", proj / "lib")
    shutil.copytree(src / "test" / name, proj / "test" / name)
    index = proj / "test" / name / "_index.yaml"
    if name == "temporal":
        doc = yaml.safe_load(index.read_text())
        entries = []
        for e in doc["entries"]:
            if e.get("kind") == "temporal.client":
                if variant:
                    continue
                if temporal:
                    e["address"] = temporal
            elif e.get("kind") == "temporal.worker" and variant:
                # a workflow.host takes the worker's task queue (children started on it
                # by name land here); client and worker_options are Temporal's own
                kept = {k: e[k] for k in ("task_queue",) if k in e}
                e = {"name": e["name"], "kind": variant, "store": ":memory:", **kept,
                     "lifecycle": {"auto_start": True}}
            entries.append(e)
        doc["entries"] = entries
        index.write_text(yaml.safe_dump(doc, sort_keys=False))
    return proj


ENTRY_PROBLEM = re.compile(r"^\s+\S+: entry ([\w.]+):(\w+): ")


def drop_unloadable(wippy: str, proj: Path) -> list[str]:
    """Remove entries that fail to load (a stand-in for what this runtime cannot read
    yet); each dropped test counts as failed. Returns the dropped entry IDs."""
    dropped: list[str] = []
    for _ in range(20):
        out = subprocess.run([wippy, "check", str(proj)], capture_output=True, text=True)
        bad = {m.groups() for m in map(ENTRY_PROBLEM.match, (out.stdout + out.stderr).splitlines()) if m}
        if out.returncode == 0 or not bad:
            break
        for f in proj.rglob("_index.yaml"):
            doc = yaml.safe_load(f.read_text()) or {}
            ns = doc.get("namespace")
            keep = [e for e in doc.get("entries") or [] if (ns, e.get("name")) not in bad]
            if len(keep) != len(doc.get("entries") or []):
                doc["entries"] = keep
                f.write_text(yaml.safe_dump(doc, sort_keys=False))
        dropped += [f"{ns}:{name}" for ns, name in sorted(bad)]
    return dropped


def count_tests(proj: Path) -> int:
    total = 0
    for f in proj.rglob("_index.yaml"):
        doc = yaml.safe_load(f.read_text()) or {}
        for e in doc.get("entries") or []:
            if (e.get("meta") or {}).get("type") == "test":
                total += 1
    return total


def run(wippy: str, proj: Path, timeout: float, verbose: bool) -> tuple[int, int, str]:
    cmd = [wippy, "test", str(proj), "--timeout", "30"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired as exc:
        text = f"(timed out after {timeout}s)\n{exc.stdout or ''}{exc.stderr or ''}"
    m = re.search(r"(\d+) passed, (\d+) failed", text)
    total = count_tests(proj)
    if m is None:
        return 0, total, text
    passed = int(m.group(1))
    return passed, total, text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", required=True, help="git dir of a wippyai/runtime mirror")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--work", default=None, help="where to assemble the projects (default: a temp dir)")
    ap.add_argument("--wippy", default=str(Path(sys.executable).with_name("wippy")))
    ap.add_argument("--temporal", default=None, help="Temporal frontend address for the temporal suite")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--drop-unloadable", action="store_true",
                    help="remove entries that do not load (counted as failed) instead of failing the suite")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each run's output")
    ap.add_argument("suites", nargs="*", default=SUITES)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="wippy-upstream-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for suite in args.suites:
        proj = assemble(args.mirror, suite, work, args.rev, args.temporal)
        total_before = count_tests(proj)
        dropped = drop_unloadable(args.wippy, proj) if args.drop_unloadable else []
        passed, total, text = run(args.wippy, proj, args.timeout, args.verbose)
        total = total_before
        if dropped:
            text = "dropped (did not load): " + ", ".join(dropped) + "\n" + text
        (work / f"{suite.replace('@', '_')}.log").write_text(text)
        if args.verbose:
            print(text)
        rows.append((suite, passed, total))
        pct = 100.0 * passed / total if total else 0.0
        print(f"{suite:28} {passed:4}/{total:<4} {pct:5.1f}%", flush=True)
    p = sum(r[1] for r in rows)
    t = sum(r[2] for r in rows)
    print(f"{'total':28} {p:4}/{t:<4} {100.0 * p / max(t, 1):5.1f}%   (logs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
