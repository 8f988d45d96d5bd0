"""``wippy run DIR`` in a subprocess, for tests that send it signals or kill it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

WIPPY = [sys.executable, "-m", "wippy.cli"]


class Running:
    """``wippy run DIR`` in a subprocess, its output (stdout and stderr) line by line."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([*WIPPY, "run", str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)  # the end of the output

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        """Block until a line containing ``text`` is printed."""
        if any(text in line for line in self.lines):
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no {text!r} in the output of wippy run:\n" + self.output)
            if text in line:
                return

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait(self, timeout: float = 20.0) -> int:
        """The exit code, once the process ends (killed after ``timeout``)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)

    def stop(self) -> int:
        """SIGINT (if still running), then the exit code (killed after 20 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait()
