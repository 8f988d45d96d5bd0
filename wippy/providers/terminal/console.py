"""The standard streams a terminal host hands its process: writes go straight out, reads
wait on the event loop for a reader thread that feeds stdin in as it arrives."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO

STDERR = 2
CHUNK = 65536


class _Request:
    __slots__ = ("size", "live", "done")

    def __init__(self, size: int | None, live: Callable[[], bool], done: Callable[[bytes | None], None]) -> None:
        self.size = size  # None: a line
        self.live = live
        self.done = done


class Console:
    """stdin, stdout and stderr of a terminal process.

    ``stdin`` is a file descriptor read by a daemon thread (started on the first read, so
    a program that never reads leaves stdin alone); ``stdout``/``stderr`` are binary
    streams, flushed after every write so output interleaves as it was written."""

    def __init__(self, stdin: int | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None) -> None:
        self.stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        self._buffer = bytearray()
        self._eof = False
        self._requests: deque[_Request] = deque()
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raw_depth = 0
        self._saved_tty: Any = None

    @classmethod
    def of_process(cls) -> Console:
        """This process's own stdin, stdout and stderr."""
        try:
            fd: int | None = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        return cls(fd)

    # Output ------------------------------------------------------------------------------
    def _stream(self, stream: int) -> BinaryIO:
        if stream == STDERR:
            return self._stderr if self._stderr is not None else sys.stderr.buffer
        return self._stdout if self._stdout is not None else sys.stdout.buffer

    def write(self, data: bytes, stream: int) -> None:
        if self._stdout is None or self._stderr is None:
            (sys.stderr if stream == STDERR else sys.stdout).flush()  # text printed before
        out = self._stream(stream)
        out.write(data)
        out.flush()

    def flush(self) -> None:
        self._stream(1).flush()

    # Input -------------------------------------------------------------------------------
    def read(self, size: int | None, live: Callable[[], bool],
             done: Callable[[bytes | None], None]) -> tuple[bool, bytes | None]:
        if not self._requests:
            got = self._take(size)
            if got is not None:
                return True, got[0]
        if self.stdin is None:
            return True, None
        self._requests.append(_Request(size, live, done))
        self._start_reader()
        return False, None

    def _take(self, size: int | None) -> tuple[bytes | None] | None:
        """``(data,)`` if a request of ``size`` can be answered now (data None: end of
        input), else None."""
        buf = self._buffer
        if size is None:
            end = buf.find(b"\n")
            if end >= 0:
                line = bytes(buf[:end])
                del buf[:end + 1]
                return (line[:-1] if line.endswith(b"\r") else line,)
            if self._eof:
                if buf:
                    line = bytes(buf)
                    buf.clear()
                    return (line[:-1] if line.endswith(b"\r") else line,)
                return (None,)
            return None
        if buf:
            data = bytes(buf[:size])
            del buf[:size]
            return (data,)
        return (None,) if self._eof else None

    def _serve(self) -> None:
        requests = self._requests
        while requests:
            request = requests[0]
            if not request.live():
                requests.popleft()
                continue
            got = self._take(request.size)
            if got is None:
                return
            requests.popleft()
            request.done(got[0])

    def _feed(self, chunk: bytes) -> None:
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True
        self._serve()

    def _start_reader(self) -> None:
        if self._reader is not None or self.stdin is None:
            return
        self._loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read_loop, args=(self.stdin, self._loop),
                                        name="wippy-stdin", daemon=True)
        self._reader.start()

    def _read_loop(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            try:
                loop.call_soon_threadsafe(self._feed, chunk)
            except RuntimeError:  # the loop is closed: nobody is reading any more
                return
            if not chunk:
                return

    # Raw mode ----------------------------------------------------------------------------
    def raw(self, enable: bool) -> bool:
        """Reference-counted raw mode of a terminal stdin (a no-op on pipes and files)."""
        if enable:
            self._raw_depth += 1
            if self._raw_depth == 1:
                self._set_raw(True)
        elif self._raw_depth > 0:
            self._raw_depth -= 1
            if self._raw_depth == 0:
                self._set_raw(False)
        return True

    def reset(self) -> None:
        """Leave raw mode whatever the count (the process ended)."""
        if self._raw_depth:
            self._raw_depth = 0
            self._set_raw(False)

    def _set_raw(self, enable: bool) -> None:
        fd = self.stdin
        if fd is None or not os.isatty(fd):
            return
        try:
            import termios
            import tty
        except ImportError:  # not a POSIX terminal
            return
        if enable:
            self._saved_tty = termios.tcgetattr(fd)
            tty.setraw(fd)
        elif self._saved_tty is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, self._saved_tty)
            self._saved_tty = None
