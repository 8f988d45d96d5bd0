"""Token cursor shared by the statement/expression grammar and the type grammar."""

from __future__ import annotations

from wippy.lua.typed._lexer import Tokens
from wippy.lua.typed._model import TypeNode
from wippy.lua.typed._source import Source, TypedLuaSyntaxError

# One recorded annotation before line/column lookup: kind, start, end, name, node.
RawAnnotation = tuple[str, int, int, str | None, TypeNode | None]


class Cursor:
    """Position in the token lists, error reporting, and the annotations found so far."""

    def __init__(self, source: Source, tokens: Tokens) -> None:
        self.source = source
        self.text = source.text
        self.kinds = tokens.kinds
        self.starts = tokens.starts
        self.ends = tokens.ends
        self.pos = 0
        self.annotations: list[RawAnnotation] = []

    # -- reading -----------------------------------------------------------------------

    def word(self, i: int) -> str:
        """Source text of token ``i``."""
        return self.text[self.starts[i] : self.ends[i]]

    def is_word(self, i: int, word: str) -> bool:
        """Whether token ``i`` is the identifier ``word`` (a contextual keyword)."""
        return self.kinds[i] == "name" and self.text[self.starts[i] : self.ends[i]] == word

    def expect(self, kind: str) -> int:
        """Consume a token of ``kind`` and return its index, or fail like Lua's ``check``."""
        pos = self.pos
        if self.kinds[pos] != kind:
            raise self.error(f"'{kind}' expected")
        self.pos = pos + 1
        return pos

    def expect_name(self) -> int:
        """Consume an identifier and return its index."""
        pos = self.pos
        if self.kinds[pos] != "name":
            raise self.error("<name> expected")
        self.pos = pos + 1
        return pos

    def expect_match(self, what: str, who: str, opener: int) -> None:
        """Consume the token closing ``opener``; the error names the opener's line if far."""
        pos = self.pos
        if self.kinds[pos] == what:
            self.pos = pos + 1
            return
        line = self.source.line_of(self.starts[opener])
        if line == self.source.line_of(self.ends[pos]):
            raise self.error(f"'{what}' expected")
        raise self.error(f"'{what}' expected (to close '{who}' at line {line})")

    # -- errors ------------------------------------------------------------------------

    def error(
        self, message: str, index: int | None = None, *, near: bool = True
    ) -> TypedLuaSyntaxError:
        """A syntax error at token ``index`` (default: the current token).

        ``near=False`` leaves out the token, as Lua does for its semantic errors.
        """
        i = self.pos if index is None else index
        shown: str | None = None
        if near:
            shown = "<eof>" if self.kinds[i] == "<eof>" else f"'{self.word(i)}'"
        return self.source.error(message, self.starts[i], near=shown, at_end=self.ends[i])

    # -- annotations -------------------------------------------------------------------

    def annotate(
        self, kind: str, start: int, name: str | None = None, node: TypeNode | None = None
    ) -> None:
        """Record an annotation from offset ``start`` to the end of the last token read."""
        self.annotations.append((kind, start, self.ends[self.pos - 1], name, node))
