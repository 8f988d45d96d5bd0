"""Front end for typed Lua: turns Wippy's typed dialect into plain Lua 5.4.

Type syntax (annotations, casts, generics, ``!``) is replaced by spaces, so the plain
code keeps every line of the source (and, on lines without declarations, every column),
and Lua's error messages and tracebacks point at the user's own lines. Types are recorded,
not checked: each :class:`Annotation` says where a piece of type syntax was and carries
its parsed :class:`TypeNode` tree for a future checker.

Declared types exist at run time: a ``type``/``interface`` statement becomes
``local Name=<type value>;`` on its own first line, ``typeof(x)`` of an annotated local
becomes its declared type, and one helper statement at the start of line 1 fetches the
chunk's type values from the ``types`` module (see :mod:`wippy.lua.typed._runtime`).

    >>> result = transpile("local n: number = 1", "=demo")
    >>> result.code
    'local n         = 1'
    >>> [(a.kind, a.name, a.text) for a in result.annotations]
    [('local', 'n', ': number')]
"""

from __future__ import annotations

import re

from wippy.lua.typed._cursor import RawAnnotation
from wippy.lua.typed._lexer import tokenize
from wippy.lua.typed._model import Annotation, TranspileResult, TypeNode
from wippy.lua.typed._parser import Parser
from wippy.lua.typed._runtime import Edit, Emitter
from wippy.lua.typed._source import Source, TypedLuaSyntaxError

__all__ = ["Annotation", "TranspileResult", "TypeNode", "TypedLuaSyntaxError", "transpile"]

_NOT_NEWLINE = re.compile(r"[^\r\n]+")
_NEWLINE = re.compile(r"[\r\n]")


def transpile(source: str, chunkname: str = "?", *, runtime: bool = True) -> TranspileResult:
    """Parse typed (or plain) Lua and return plain Lua 5.4 with the same lines.

    ``chunkname`` follows Lua's convention (``@file``, ``=name`` or the source itself)
    and only shapes error messages. Plain Lua comes back unchanged. With ``runtime``
    (the default) declared types become run-time values, which needs the ``types``
    module of the wippy runtime; without it, type syntax is only blanked and the code has
    exactly the source's length and layout. Raises :class:`TypedLuaSyntaxError` on a
    syntax error.
    """
    src = Source(source, chunkname)
    if source.startswith("#"):  # a shebang line, which the runtime skips: read it as blank
        first = _NEWLINE.search(source)
        cut = first.start() if first else len(source)
        src = Source(" " * cut + source[cut:], chunkname)
    parser = Parser(src, tokenize(src))
    parser.chunk()
    if not parser.annotations:
        return TranspileResult(source, [])
    code = _blank(source, parser.annotations, parser.semicolons)
    if runtime:
        helper, edits = Emitter(source, parser.declarations, parser.typeof_sites).emit()
        if helper is not None:
            code = _apply(code, edits, helper)
    return TranspileResult(code, [_annotation(src, raw) for raw in parser.annotations])


def _blank(source: str, annotations: list[RawAnnotation], semicolons: list[int]) -> str:
    """Replace every annotated span by spaces (newlines kept) and add needed ``;``."""
    spans = sorted((start, end) for _, start, end, _, _ in annotations)
    pieces: list[str] = []
    done = 0
    for start, end in spans:
        if end <= done:
            continue  # nested inside a span already blanked
        start = max(start, done)
        pieces.append(source[done:start])
        pieces.append(_NOT_NEWLINE.sub(_spaces, source[start:end]))
        done = end
    pieces.append(source[done:])
    code = "".join(pieces)
    if semicolons:
        chars = list(code)
        for offset in semicolons:
            chars[offset] = ";"
        code = "".join(chars)
    return code


def _spaces(match: re.Match[str]) -> str:
    return " " * len(match.group())


def _apply(code: str, edits: list[Edit], helper: str) -> str:
    """Put each edit's text on the first line of its span, and the helper before line 1.

    A text shorter than that line is padded with spaces (columns after it stay put);
    a longer one makes the line longer. Line breaks are never added or removed.
    """
    pieces: list[str] = []
    done = 0
    for edit in sorted(edits, key=lambda e: e.start):
        span = code[edit.start : edit.end]
        first = _NEWLINE.search(span)
        cut = first.start() if first else len(span)
        pieces.append(code[done : edit.start])
        pieces.append(edit.text + " " * max(0, cut - len(edit.text)))
        pieces.append(_NOT_NEWLINE.sub(_spaces, span[cut:]))
        done = edit.end
    pieces.append(code[done:])
    body = "".join(pieces)
    if body.startswith("#"):  # a shebang line: keep it a comment after the helper
        body = "--" + body
    return helper + body


def _annotation(src: Source, raw: RawAnnotation) -> Annotation:
    """Turn a recorded span into an :class:`Annotation` with lines and columns."""
    kind, start, end, name, node = raw
    start_line, start_column = src.position(start)
    end_line, end_column = src.position(end)
    return Annotation(
        kind,
        name,
        src.text[start:end],
        start_line,
        start_column,
        end_line,
        end_column,
        start,
        end,
        node,
    )
