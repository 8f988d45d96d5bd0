"""What the front end hands back: plain code plus where every annotation was."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TypeNode:
    """One node of a parsed type expression, kept so a type checker need not re-parse.

    ``start``/``end`` are character offsets into the original source (end exclusive).
    ``kind`` is one of: ``name`` (``name`` holds the possibly dotted name), ``generic``
    (``name`` + argument children), ``literal`` (``name`` holds the literal's source),
    ``optional``, ``union``, ``intersection``, ``array``, ``map`` (key, value),
    ``record`` (``field``/``indexer`` children), ``field`` (``name``; ``optional`` for
    ``name?:``), ``indexer`` (key, value), ``function`` (``param`` children then one
    ``returns``), ``param`` (``name`` may be ``None`` or ``"..."``), ``returns``,
    ``typeof`` (``name`` holds the expression's source), ``keyof``, ``index``
    (object, index), ``readonly``, ``interface`` (a record-like body),
    ``asserts`` (``name`` = parameter), ``conditional`` (check, extends, then, else),
    ``annotated`` (base type then ``validator`` children; a validator's ``name`` is
    e.g. ``min``, its span covers ``@min(0)`` and its children are ``arg`` nodes whose
    ``name`` is each argument's source text), ``typeparams`` / ``typeparam``
    (``name``; an optional constraint child), ``alias`` (``name``; optional
    ``typeparams`` then the body). An ``interface`` declaration's node has ``name`` and
    children: optional ``typeparams``, optional ``extends`` (base types), then
    ``field`` and ``method`` (``name``; one ``function`` child) members.
    """

    kind: str
    start: int
    end: int
    children: tuple[TypeNode, ...] = ()
    name: str | None = None
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Annotation:
    """Where one piece of type syntax was, and what it said.

    ``kind`` is one of ``local``, ``param``, ``vararg``, ``return``, ``generics``,
    ``type_alias``, ``interface``, ``cast``, ``non_nil``. ``name`` is the annotated
    variable, parameter, function or declared type when there is one. Lines and columns
    are 1-based; ``end_line``/``end_column`` point just past the last character.
    ``start``/``end`` are the same span as character offsets into the source.
    """

    kind: str
    name: str | None
    text: str
    start_line: int
    start_column: int
    end_line: int
    end_column: int
    start: int
    end: int
    node: TypeNode | None = None


@dataclass(frozen=True, slots=True)
class TranspileResult:
    """Plain Lua 5.4 code with the source's lines, plus the annotations removed.

    ``code`` has as many lines as the source, each statement on its own line. With type
    syntax only blanked (no declarations and no ``typeof`` of an annotated local, or
    ``transpile(..., runtime=False)``) it also
    has the source's length and a newline exactly where the source has one, so offsets,
    lines and columns are interchangeable between the two; otherwise line 1 starts with
    the chunk's type helper and each declaration's first line holds its binding.
    """

    code: str
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def typed(self) -> bool:
        """Whether the source used any type syntax at all."""
        return bool(self.annotations)
