"""Tokenizer for Lua 5.4 plus the few extra symbols of the typed dialect.

Tokens are kept as three parallel lists (kind, start offset, end offset) rather than
objects: the parser only ever looks at kinds and offsets, and lists keep a whole file's
tokens cheap enough to tokenize hundreds of files at startup.

A token's kind is the keyword or operator text itself (``"end"``, ``"=="``), or one of
``"name"``, ``"number"``, ``"string"`` and ``"<eof>"``. Comments and whitespace produce no
tokens. The extra symbols (``?``, ``!``, ``@``, ``->``) never occur in valid plain Lua, so
lexing them does not change how plain Lua is read.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from wippy.lua.typed._source import Source, TypedLuaSyntaxError

KEYWORDS = frozenset(
    (
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "goto",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
    )
)

_SPACE = r"[ \t\r\n\f\v]"
_ESCAPE = (
    r"\\(?:\r\n?|\n\r?|z[ \t\r\n\f\v]*+|x[0-9a-fA-F]{2}|[0-9]{1,3}|u\{[0-9a-fA-F]++\}"
    r"|[abfnrtv\\\"'])"
)
# Lua reads a numeral greedily (digits, '.', exponent signs, one touching letter) and
# only then checks it, so "3..2" or "3x" is one malformed token, as in Lua.
_NUMERAL = r"(?:0[xX](?:[pP][-+]?|[0-9a-fA-F.])*+|\.?[0-9](?:[eE][-+]?|[0-9a-fA-F.])*+)[A-Za-z_]?"

# One pattern for every token; leading whitespace is part of each match.
_TOKEN = re.compile(
    rf"""{_SPACE}*+(?:
      (?P<name>[A-Za-z_][A-Za-z0-9_]*+)
    | (?P<lcomment>--\[(?P<cq>=*)\[.*?\](?P=cq)\])
    | (?P<badlcomment>--\[=*\[)
    | (?P<comment>--[^\r\n]*+)
    | (?P<lstring>\[(?P<sq>=*)\[.*?\](?P=sq)\])
    | (?P<badlstring>\[=*\[)
    | (?P<badlong>\[=+)
    | (?P<number>{_NUMERAL})
    | (?P<string>"(?:[^"\\\r\n]++|{_ESCAPE})*+"|'(?:[^'\\\r\n]++|{_ESCAPE})*+')
    | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|<<|>>|//|::|->|[-+*/%^\#&~|<>=(){{}}\[\];:,.@?!])
    | (?P<end>\Z)
    | (?P<bad>.)
    )""",
    re.VERBOSE | re.DOTALL,
)

_DEC_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_HEX_NUMBER = re.compile(r"0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][-+]?[0-9]+)?")
_STRING_PREFIX = {
    '"': re.compile(rf'"(?:[^"\\\r\n]++|{_ESCAPE})*+'),
    "'": re.compile(rf"'(?:[^'\\\r\n]++|{_ESCAPE})*+"),
}


class Tokens(NamedTuple):
    """The token stream of one source: parallel lists, ending with an ``<eof>`` token."""

    kinds: list[str]
    starts: list[int]
    ends: list[int]


def tokenize(source: Source) -> Tokens:
    """Split ``source`` into tokens; raises :class:`TypedLuaSyntaxError` on a lexical error."""
    text = source.text
    kinds: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    add_kind = kinds.append
    add_start = starts.append
    add_end = ends.append
    keywords = KEYWORDS
    match = _TOKEN.match
    pos = 0
    while True:
        m = match(text, pos)
        assert m is not None  # the pattern always matches (``bad`` takes any character)
        group = m.lastgroup or "bad"
        start, pos = m.span(group)
        if group == "name":
            word = text[start:pos]
            add_kind(word if word in keywords else "name")
        elif group == "op":
            add_kind(text[start:pos])
        elif group == "string" or group == "lstring":
            add_kind("string")
        elif group == "number":
            _check_number(source, start, pos)
            add_kind("number")
        elif group == "comment" or group == "lcomment":
            continue
        elif group == "end":
            add_kind("<eof>")
            add_start(start)
            add_end(start)
            return Tokens(kinds, starts, ends)
        else:
            _lexical_error(source, group, start)
        add_start(start)
        add_end(pos)


def _check_number(source: Source, start: int, end: int) -> None:
    """Reject numerals Lua would call malformed (``3..2``, ``0x``, ``3e``, ``3x``)."""
    numeral = source.text[start:end]
    pattern = _HEX_NUMBER if numeral[:2] in ("0x", "0X") else _DEC_NUMBER
    if pattern.fullmatch(numeral) is None:
        raise source.error("malformed number", start, near=f"'{numeral}'", at_end=end)


def _lexical_error(source: Source, group: str, start: int) -> None:
    """Raise the error Lua's own lexer would give for a token that cannot be completed."""
    text = source.text
    if group == "badlcomment" or group == "badlstring":
        what = "comment" if group == "badlcomment" else "string"
        line = source.line_of(start)
        raise source.error(
            f"unfinished long {what} (starting at line {line})",
            len(text),
            near="<eof>",
        )
    if group == "badlong":
        end = start + 1
        while end < len(text) and text[end] == "=":
            end += 1
        raise source.error("invalid long string delimiter", start, near=f"'{text[start:end]}'")
    if text[start] in "\"'":
        raise _string_error(source, start)
    raise source.error("unexpected symbol", start, near=f"'{text[start]}'")


def _string_error(source: Source, start: int) -> TypedLuaSyntaxError:
    """Describe why the short string starting at ``start`` does not close."""
    text = source.text
    m = _STRING_PREFIX[text[start]].match(text, start)
    assert m is not None
    stop = m.end()
    if stop >= len(text):
        return source.error("unfinished string", stop, near="<eof>")
    char = text[stop]
    if char in "\r\n":
        return source.error("unfinished string", stop, near=f"'{text[start:stop]}'")
    if stop + 1 >= len(text):
        return source.error("unfinished string", stop + 1, near="<eof>")
    return source.error("invalid escape sequence", stop, near=f"'{text[start : stop + 2]}'")
