"""Source text with line lookup, and the syntax error type shared by lexer and parser."""

from __future__ import annotations

import re
from bisect import bisect_right

# Lua counts "\r\n" and "\n\r" as one line break, like a lone "\n" or "\r".
_NEWLINE = re.compile(r"\r\n|\n\r|\n|\r")
_IDSIZE = 60  # LUA_IDSIZE: how much of a chunk name Lua shows in messages


def chunkid(chunkname: str) -> str:
    """Render a chunk name the way Lua 5.4 does in error messages (``luaO_chunkid``)."""
    if chunkname.startswith("="):
        return chunkname[1:_IDSIZE]
    if chunkname.startswith("@"):
        name = chunkname[1:]
        if len(name) <= _IDSIZE - 1:
            return name
        return "..." + name[-(_IDSIZE - 4) :]
    first = chunkname.split("\n", 1)[0]
    limit = _IDSIZE - len('[string "...."]')
    if first != chunkname or len(first) >= limit:
        return f'[string "{first[:limit]}..."]'
    return f'[string "{first}"]'


class TypedLuaSyntaxError(Exception):
    """A syntax error in (typed) Lua source, formatted like Lua's own messages.

    ``str()`` gives ``chunk:LINE: message near 'token'`` so callers can report it
    exactly where they would report an error from Lua's ``load``.
    """

    def __init__(
        self,
        message: str,
        line: int,
        column: int,
        *,
        near: str | None = None,
        chunkname: str = "?",
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.near = near
        self.chunkname = chunkname
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{chunkid(self.chunkname)}:{self.line}: {self.bare_message()}"

    def bare_message(self) -> str:
        """The message without the ``chunk:line:`` prefix (for reports that locate it)."""
        return self.message if self.near is None else f"{self.message} near {self.near}"


class Source:
    """One chunk's text plus what is needed to turn offsets into lines and columns."""

    __slots__ = ("text", "chunkname", "_line_starts")

    def __init__(self, text: str, chunkname: str) -> None:
        self.text = text
        self.chunkname = chunkname
        self._line_starts: list[int] | None = None

    @property
    def line_starts(self) -> list[int]:
        """Offsets where each line begins (built on first use: most files never need it)."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _NEWLINE.finditer(self.text)]
        return self._line_starts

    def line_of(self, offset: int) -> int:
        """1-based line of a character offset."""
        return bisect_right(self.line_starts, offset)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        starts = self.line_starts
        line = bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    def error(
        self, message: str, offset: int, *, near: str | None = None, at_end: int | None = None
    ) -> TypedLuaSyntaxError:
        """An error at ``offset``; the line is taken at ``at_end`` when given.

        Lua reports the line its lexer has reached, which is the end of the offending
        token; that only differs from the start for tokens spanning lines.
        """
        line, column = self.position(offset)
        if at_end is not None:
            line = self.line_of(at_end)
        return TypedLuaSyntaxError(message, line, column, near=near, chunkname=self.chunkname)
