"""Lexical scopes of a chunk, kept so names can be looked up after parsing.

The runtime side of typed Lua needs to know, at a ``type`` declaration or a ``typeof(x)``
expression, what a name meant *there*: another declared type (possibly declared further
down, as types may refer forward), a Lua local (a required module, say), a function's type
parameter, or nothing (a global). Every binding keeps a sequence number and every scope
keeps the history of its bindings, so a lookup "as of" a point stays exact after the
parser has moved on.
"""

from __future__ import annotations

from dataclasses import dataclass

from wippy.lua.typed._model import TypeNode

# Lua allows 200 active locals per function; type declarations become locals, so past this
# many (counting the runtime's own) the declarations of that function fall back to globals.
LOCAL_BUDGET = 190


@dataclass(slots=True)
class Binding:
    """One name introduced into a scope.

    ``kind`` is ``local`` (a Lua local or parameter; ``node`` is its annotation, if any),
    ``type`` (a ``type``/``interface`` declaration; ``decl`` is its index in the parser's
    declarations) or ``typeparam`` (a generic function's type parameter).
    """

    kind: str
    seq: int
    node: TypeNode | None = None
    decl: int | None = None
    scope: Scope | None = None


class Scope:
    """A block. ``function`` scopes also count active locals for Lua's 200-local limit."""

    __slots__ = ("parent", "names", "function", "count", "active", "peak")

    def __init__(self, parent: Scope | None, function: bool) -> None:
        self.parent = parent
        self.names: dict[str, list[Binding]] = {}
        self.function: Scope = self if function or parent is None else parent.function
        self.count = 0  # locals declared directly in this scope
        self.active = 0  # function scopes: locals active now
        self.peak = 0  # function scopes: most locals active at once

    def add(self, name: str, binding: Binding, is_local: bool) -> None:
        """Bind ``name`` here (shadowing earlier bindings from this point on)."""
        binding.scope = self
        found = self.names.get(name)
        if found is None:
            self.names[name] = [binding]
        else:
            found.append(binding)
        if is_local:
            self.count += 1
            fn = self.function
            fn.active += 1
            if fn.active > fn.peak:
                fn.peak = fn.active

    def close(self) -> None:
        """Leave a non-function block: its locals stop counting towards the function's."""
        if self.function is not self:
            self.function.active -= self.count

    def lookup(self, name: str, seq: int) -> Binding | None:
        """The binding ``name`` had at point ``seq`` in this scope, or None (a global)."""
        scope: Scope | None = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                for binding in reversed(found):
                    if binding.seq < seq:
                        return binding
            scope = scope.parent
        return None

    def forward_type(self, name: str, seq: int) -> Binding | None:
        """A type of that name declared after point ``seq`` in this scope or an enclosing one."""
        scope: Scope | None = self
        while scope is not None:
            found = scope.names.get(name)
            if found is not None:
                for binding in found:
                    if binding.seq >= seq and binding.kind == "type":
                        return binding
            scope = scope.parent
        return None


@dataclass(slots=True)
class Declaration:
    """A ``type`` or ``interface`` statement: its node, span and where names resolve."""

    name: str
    node: TypeNode
    start: int
    end: int
    scope: Scope
    seq: int


@dataclass(slots=True)
class TypeofSite:
    """``typeof(name)`` in an expression, a candidate for the name's declared type."""

    start: int
    end: int
    name: str
    scope: Scope
    seq: int
