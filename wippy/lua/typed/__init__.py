"""Front end for typed Lua: turns Wippy's typed dialect into plain Lua 5.4.

Type syntax (annotations, ``type``/``interface`` declarations, casts, generics, ``!``) is
replaced by spaces, so the plain code keeps every line and column of the source and Lua's
error messages and tracebacks point at the user's own lines. Types are recorded, not
checked: each :class:`Annotation` says where a piece of type syntax was and carries its
parsed :class:`TypeNode` tree for a future checker.

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
from wippy.lua.typed._source import Source, TypedLuaSyntaxError

__all__ = ["Annotation", "TranspileResult", "TypeNode", "TypedLuaSyntaxError", "transpile"]

_NOT_NEWLINE = re.compile(r"[^\r\n]+")


def transpile(source: str, chunkname: str = "?") -> TranspileResult:
    """Parse typed (or plain) Lua and return plain Lua 5.4 with the same layout.

    ``chunkname`` follows Lua's convention (``@file``, ``=name`` or the source itself)
    and only shapes error messages. Plain Lua comes back unchanged. Raises
    :class:`TypedLuaSyntaxError` on a syntax error.
    """
    src = Source(source, chunkname)
    parser = Parser(src, tokenize(src))
    parser.chunk()
    if not parser.annotations:
        return TranspileResult(source, [])
    code = _blank(source, parser.annotations, parser.semicolons)
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
        pieces.append(_NOT_NEWLINE.sub(lambda m: " " * len(m.group()), source[start:end]))
        done = end
    pieces.append(source[done:])
    code = "".join(pieces)
    if semicolons:
        chars = list(code)
        for offset in semicolons:
            chars[offset] = ";"
        code = "".join(chars)
    return code


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
