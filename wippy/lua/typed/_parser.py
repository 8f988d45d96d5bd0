"""Recursive-descent parser for the whole Lua 5.4 grammar plus the typed extensions.

It follows the structure of Lua's own ``lparser.c`` (so it accepts what Lua accepts and
fails where Lua fails, with similar messages), but builds no expression tree: its job
is to know exactly where each piece of type syntax starts and ends. Precedence of binary
operators does not change which token sequences are valid, so expressions are read as
``operand {binop operand}``; casts and ``!`` are postfix on an operand, which gives them
the tight binding the typed dialect specifies.

Typed additions (all of them are syntax errors in plain Lua, except ``as``):

* ``local x: T``, ``local x <const>: T``; parameters ``(a: T, ...: T)``; returns
  ``function f(): T`` / ``: (T, U)`` / ``: T, U``;
* generics ``function f<T: C>(...)`` (also ``local function``, methods, anonymous);
* ``type Name<T> = T`` and ``interface Name ... end`` statements;
* casts ``expr :: T`` and ``expr as T``; non-nil assertion ``expr!``.

It also follows Lua's scoping (locals, parameters, type declarations, see ``_scope.py``)
so that declared types and ``typeof(name)`` can be given run-time values afterwards.

``as`` is an ordinary identifier in plain Lua, so after an operand it is read as a cast
only when a type can follow; when ``as`` begins a line and is followed by ``(``, ``{`` or
a string, it is left alone as the start of a call statement (``as(x)``), which is what
plain Lua would make of it.
"""

from __future__ import annotations

from collections.abc import Callable

from wippy.lua.typed._lexer import Tokens
from wippy.lua.typed._model import TypeNode
from wippy.lua.typed._scope import Binding, Declaration, Scope, TypeofSite
from wippy.lua.typed._source import Source
from wippy.lua.typed._types import TypeGrammar

_BLOCK_FOLLOW = frozenset(("else", "elseif", "end", "until", "<eof>"))
_UNARY = frozenset(("not", "-", "#", "~"))
_BINARY = frozenset(
    ("or", "and", "<", ">", "<=", ">=", "~=", "==", "|", "~", "&", "<<", ">>", "..", "+", "-")
    + ("*", "/", "//", "%", "^")
)
_POSTFIX_START = frozenset(("::", "name", "!"))
_LITERAL = frozenset(("number", "string", "nil", "true", "false"))
_TYPE_START = frozenset(("name", "nil", "true", "false", "string", "number", "{", "(", "-"))
_CALL_LIKE_START = frozenset(("(", "{", "string"))

# What a suffixed expression turned out to be (Lua's ``expkind``, reduced to our needs).
_VAR, _CALL, _OTHER = 0, 1, 2


class Parser(TypeGrammar):
    """Parses one chunk, recording annotations (see :class:`TypeGrammar` for types)."""

    def __init__(self, source: Source, tokens: Tokens) -> None:
        super().__init__(source, tokens)
        self.semicolons: list[int] = []
        self._vararg = [True]  # is each enclosing function vararg? (main chunk is)
        # Scopes, for what a name means at a type declaration or a ``typeof(x)``.
        self.scope = Scope(None, True)
        self.seq = 0
        self.declarations: list[Declaration] = []
        self.typeof_sites: list[TypeofSite] = []
        self._statement_start = -1  # token index where the current statement began
        self._statements: dict[str, Callable[[], None]] = {
            ";": self._skip,
            "if": self.if_stat,
            "while": self.while_stat,
            "do": self.do_stat,
            "for": self.for_stat,
            "repeat": self.repeat_stat,
            "function": self.function_stat,
            "local": self.local_stat,
            "::": self.label_stat,
            "return": self.return_stat,
            "break": self._skip,
            "goto": self.goto_stat,
        }

    # -- chunk and blocks --------------------------------------------------------------

    def chunk(self) -> None:
        """The whole source: a block that must end at end of file."""
        self.block()
        if self.kinds[self.pos] != "<eof>":
            raise self.error("<eof> expected")

    def block(self) -> None:
        """Statements up to a block-closing keyword; ``return`` must come last."""
        kinds = self.kinds
        statements = self._statements
        annotations = self.annotations
        while True:
            k = kinds[self.pos]
            if k in _BLOCK_FOLLOW:
                return
            handler = statements.get(k)
            if handler is not None:
                handler()
                if k == "return":
                    return
            elif k == "name":
                self.name_stat()
            else:
                self.expr_stat()
            if (
                annotations
                and kinds[self.pos] == "("
                and annotations[-1][2] == self.ends[self.pos - 1]
            ):
                # The statement ends with blanked type syntax and the next one starts
                # with '(': without a separator Lua would read a call across the gap.
                self.semicolons.append(annotations[-1][1])

    def _skip(self) -> None:
        """``;`` and ``break``: one token."""
        self.pos += 1

    # -- scopes ------------------------------------------------------------------------

    def open_scope(self, function: bool = False) -> None:
        """Enter a block (or a function body, which starts a new local count)."""
        self.scope = Scope(self.scope, function)

    def close_scope(self) -> None:
        """Leave the innermost block."""
        scope = self.scope
        scope.close()
        assert scope.parent is not None
        self.scope = scope.parent

    def scoped_block(self) -> None:
        """A block with its own scope (``do``, loop and ``if`` bodies)."""
        self.open_scope()
        self.block()
        self.close_scope()

    def declare(
        self, name: str, kind: str = "local", node: TypeNode | None = None, decl: int | None = None
    ) -> None:
        """Bind ``name`` in the current scope from this point on."""
        self.seq += 1
        self.scope.add(name, Binding(kind, self.seq, node, decl), kind != "typeparam")

    # -- statements --------------------------------------------------------------------

    def if_stat(self) -> None:
        """``if c then b {elseif c then b} [else b] end``."""
        opener = self.pos
        self.pos += 1
        self.expr()
        self.expect("then")
        self.scoped_block()
        while self.kinds[self.pos] == "elseif":
            self.pos += 1
            self.expr()
            self.expect("then")
            self.scoped_block()
        if self.kinds[self.pos] == "else":
            self.pos += 1
            self.scoped_block()
        self.expect_match("end", "if", opener)

    def while_stat(self) -> None:
        """``while c do b end``."""
        opener = self.pos
        self.pos += 1
        self.expr()
        self.expect("do")
        self.scoped_block()
        self.expect_match("end", "while", opener)

    def do_stat(self) -> None:
        """``do b end``."""
        opener = self.pos
        self.pos += 1
        self.scoped_block()
        self.expect_match("end", "do", opener)

    def for_stat(self) -> None:
        """Numeric ``for i = a, b [, c]`` or generic ``for k, v in explist``."""
        opener = self.pos
        self.pos += 1
        names = [self.expect_name()]
        k = self.kinds[self.pos]
        if k == "=":
            self.pos += 1
            self.expr()
            self.expect(",")
            self.expr()
            if self.kinds[self.pos] == ",":
                self.pos += 1
                self.expr()
        elif k in (",", "in"):
            while self.kinds[self.pos] == ",":
                self.pos += 1
                names.append(self.expect_name())
            self.expect("in")
            self.exprlist()
        else:
            raise self.error("'=' or 'in' expected")
        self.expect("do")
        self.open_scope()
        for name_i in names:
            self.declare(self.word(name_i))
        self.block()
        self.close_scope()
        self.expect_match("end", "for", opener)

    def repeat_stat(self) -> None:
        """``repeat b until c``."""
        opener = self.pos
        self.pos += 1
        self.open_scope()  # the condition sees the body's locals
        self.block()
        self.expect_match("until", "repeat", opener)
        self.expr()
        self.close_scope()

    def function_stat(self) -> None:
        """``function a.b.c:m<T>(params): R body end``."""
        opener = self.pos
        self.pos += 1
        start = self.starts[self.pos]
        self.expect_name()
        kinds = self.kinds
        while kinds[self.pos] == ".":
            self.pos += 1
            self.expect_name()
        method = kinds[self.pos] == ":"
        if method:
            self.pos += 1
            self.expect_name()
        name = self.text[start : self.ends[self.pos - 1]]
        self.body(opener, name, method)

    def local_stat(self) -> None:
        """``local function f ...`` or ``local a <attrib>: T, b = explist``."""
        self.pos += 1
        if self.kinds[self.pos] == "function":
            opener = self.pos
            self.pos += 1
            name_i = self.expect_name()
            self.declare(self.word(name_i))
            self.body(opener, self.word(name_i))
            return
        kinds = self.kinds
        names: list[tuple[str, TypeNode | None]] = []
        while True:
            name_i = self.expect_name()
            node: TypeNode | None = None
            if kinds[self.pos] == "<":
                self.attrib()
            if kinds[self.pos] == ":":
                start = self.starts[self.pos]
                self.pos += 1
                node = self.type_()
                self.annotate("local", start, self.word(name_i), node)
                if kinds[self.pos] == "<":
                    self.attrib()
            names.append((self.word(name_i), node))
            if kinds[self.pos] != ",":
                break
            self.pos += 1
        if kinds[self.pos] == "=":
            self.pos += 1
            self.exprlist()
        for name, node in names:
            self.declare(name, "local", node)

    def attrib(self) -> None:
        """``<const>`` or ``<close>`` after a local's name."""
        self.pos += 1
        name_i = self.expect_name()
        word = self.word(name_i)
        self.expect(">")
        if word not in ("const", "close"):
            raise self.error(f"unknown attribute '{word}'", name_i, near=False)

    def label_stat(self) -> None:
        """``::name::``."""
        self.pos += 1
        self.expect_name()
        self.expect("::")

    def return_stat(self) -> None:
        """``return [explist] [';']`` (the enclosing block must end right after)."""
        self.pos += 1
        k = self.kinds[self.pos]
        if k not in _BLOCK_FOLLOW and k != ";":
            self.exprlist()
        if self.kinds[self.pos] == ";":
            self.pos += 1

    def goto_stat(self) -> None:
        """``goto name``."""
        self.pos += 1
        self.expect_name()

    def name_stat(self) -> None:
        """A statement starting with a name: ``type``/``interface`` or an expression."""
        kinds = self.kinds
        pos = self.pos
        if kinds[pos + 1] == "name":
            word = self.word(pos)
            if word == "type" and kinds[pos + 2] in ("=", "<"):
                self.type_alias()
                return
            if word == "interface":
                self.interface()
                return
        self.expr_stat()

    def expr_stat(self) -> None:
        """A call statement or an assignment ``var {, var} = explist``."""
        self._statement_start = self.pos
        what = self.suffixed()
        kinds = self.kinds
        if kinds[self.pos] in ("=", ","):
            while True:
                if what != _VAR:
                    raise self.error("syntax error")
                if kinds[self.pos] != ",":
                    break
                self.pos += 1
                what = self.suffixed()
            self.expect("=")
            self.exprlist()
        elif what != _CALL:
            raise self.error("syntax error")

    # -- typed statements --------------------------------------------------------------

    def type_alias(self) -> None:
        """``type Name[<T>] = T``: removed from the output entirely."""
        start = self.starts[self.pos]
        self.pos += 1
        name_i = self.expect_name()
        parts: list[TypeNode] = []
        if self.kinds[self.pos] == "<":
            parts.append(self.typeparams())
        self.expect("=")
        parts.append(self.type_())
        name = self.word(name_i)
        node = TypeNode("alias", start, self.ends[self.pos - 1], tuple(parts), name)
        self.annotate("type_alias", start, name, node)
        self.declare_type(name, node, start)

    def interface(self) -> None:
        """``interface Name[<T>] [: Base, ...] {method | field} end``."""
        opener = self.pos
        start = self.starts[opener]
        self.pos += 1
        name_i = self.expect_name()
        parts: list[TypeNode] = []
        kinds = self.kinds
        if kinds[self.pos] == "<":
            parts.append(self.typeparams())
        if kinds[self.pos] == ":":
            self.pos += 1
            bases = [self.type_()]
            while kinds[self.pos] == ",":
                self.pos += 1
                bases.append(self.type_())
            parts.append(TypeNode("extends", bases[0].start, bases[-1].end, tuple(bases)))
        while kinds[self.pos] != "end":
            parts.append(self.interface_member())
            if kinds[self.pos] in (",", ";"):
                self.pos += 1
        self.expect_match("end", "interface", opener)
        name = self.word(name_i)
        node = TypeNode("interface", start, self.ends[self.pos - 1], tuple(parts), name)
        self.annotate("interface", start, name, node)
        self.declare_type(name, node, start)

    def declare_type(self, name: str, node: TypeNode, start: int) -> None:
        """Record a ``type``/``interface`` statement; it binds ``name`` from here on."""
        end = self.ends[self.pos - 1]
        self.declarations.append(Declaration(name, node, start, end, self.scope, self.seq + 1))
        self.declare(name, "type", None, len(self.declarations) - 1)

    def interface_member(self) -> TypeNode:
        """``function name<T>(params): R`` or ``name[?]: T`` inside an interface."""
        start = self.starts[self.pos]
        if self._field_start(self.pos):
            return self.field()
        if self.kinds[self.pos] != "function":
            raise self.error("'end' expected")
        self.pos += 1
        name_i = self.expect_name()
        parts: list[TypeNode] = []
        if self.kinds[self.pos] == "<":
            parts.append(self.typeparams())
        opener = self.expect("(")
        parts.extend(self.params())
        self.expect_match(")", "(", opener)
        rstart = self.starts[self.pos]
        if self.kinds[self.pos] == ":":
            self.pos += 1
            parts.append(self.return_types())
        else:
            parts.append(TypeNode("returns", rstart, rstart))
        end = self.ends[self.pos - 1]
        function = TypeNode("function", start, end, tuple(parts))
        return TypeNode("method", start, end, (function,), self.word(name_i))

    # -- functions ---------------------------------------------------------------------

    def body(self, opener: int, name: str | None, method: bool = False) -> None:
        """``[<T>] (params) [: R] block end`` of a function; ``opener`` is ``function``."""
        kinds = self.kinds
        self.open_scope(function=True)
        if method:
            self.declare("self")
        if kinds[self.pos] == "<":
            start = self.starts[self.pos]
            node = self.typeparams()
            self.annotate("generics", start, name, node)
            for param in node.children:
                self.declare(param.name or "", "typeparam")
        self.expect("(")
        vararg = self.parlist()
        self.expect(")")
        if kinds[self.pos] == ":":
            start = self.starts[self.pos]
            self.pos += 1
            node = self.return_types()
            self.annotate("return", start, name, node)
        self._vararg.append(vararg)
        self.block()
        self._vararg.pop()
        self.close_scope()
        self.expect_match("end", "function", opener)

    def parlist(self) -> bool:
        """Parameters ``a: T, b, ...: T``; returns whether the function is vararg."""
        kinds = self.kinds
        if kinds[self.pos] == ")":
            return False
        while True:
            k = kinds[self.pos]
            if k == "name":
                name_i = self.pos
                self.pos += 1
                node: TypeNode | None = None
                if kinds[self.pos] == ":":
                    start = self.starts[self.pos]
                    self.pos += 1
                    node = self.type_()
                    self.annotate("param", start, self.word(name_i), node)
                self.declare(self.word(name_i), "local", node)
            elif k == "...":
                self.pos += 1
                if kinds[self.pos] == ":":
                    start = self.starts[self.pos]
                    self.pos += 1
                    node = self.type_()
                    self.annotate("vararg", start, "...", node)
                return True
            else:
                raise self.error("<name> or '...' expected")
            if kinds[self.pos] != ",":
                return False
            self.pos += 1

    # -- expressions -------------------------------------------------------------------

    def exprlist(self) -> None:
        """``expr {',' expr}``."""
        self.expr()
        kinds = self.kinds
        while kinds[self.pos] == ",":
            self.pos += 1
            self.expr()

    def expr(self) -> None:
        """``{unop} operand {postfix} {binop {unop} operand {postfix}}``."""
        kinds = self.kinds
        while True:
            while kinds[self.pos] in _UNARY:
                self.pos += 1
            k = kinds[self.pos]
            if k in _LITERAL:
                self.pos += 1
            elif k == "{":
                self.table_constructor()
            elif k == "function":
                opener = self.pos
                self.pos += 1
                self.body(opener, None)
            elif k == "...":
                if not self._vararg[-1]:
                    raise self.error("cannot use '...' outside a vararg function")
                self.pos += 1
            else:
                self.suffixed()
            if kinds[self.pos] in _POSTFIX_START:
                self.postfix()
            if kinds[self.pos] not in _BINARY:
                return
            self.pos += 1

    def postfix(self) -> None:
        """Casts (``:: T``, ``as T``) and ``!`` after an operand."""
        kinds = self.kinds
        while True:
            pos = self.pos
            k = kinds[pos]
            if k == "::":
                if self._label_at(pos):
                    return  # a label: the expression ended before it
            elif k == "!":
                self.pos = pos + 1
                self.annotate("non_nil", self.starts[pos])
                continue
            elif k != "name" or not self._as_cast(pos):
                return
            self.pos = pos + 1
            node = self.type_()
            self.annotate("cast", self.starts[pos], None, node)

    def _label_at(self, pos: int) -> bool:
        """Whether ``::`` at ``pos`` opens a label ``::name::`` rather than a cast.

        ``x :: T`` at the end of a line followed by ``::label::`` on the next is a cast:
        a label's name and its closing ``::`` must share a line.
        """
        kinds = self.kinds
        if kinds[pos + 1] != "name" or kinds[pos + 2] != "::":
            return False
        gap = self.text[self.ends[pos + 1] : self.starts[pos + 2]]
        return "\n" not in gap and "\r" not in gap

    def _as_cast(self, pos: int) -> bool:
        """Whether the name at ``pos`` is the ``as`` cast operator (see module docs)."""
        if not self.is_word(pos, "as"):
            return False
        nxt = self.kinds[pos + 1]
        if nxt not in _TYPE_START:
            return False
        if nxt in _CALL_LIKE_START:
            gap = self.text[self.ends[pos - 1] : self.starts[pos]]
            if "\n" in gap or "\r" in gap:
                return False
        return True

    def suffixed(self) -> int:
        """``primary {'.' Name | '[' expr ']' | ':' Name args | args | '!'}``."""
        kinds = self.kinds
        pos = self.pos
        k = kinds[pos]
        if k == "name":
            self.pos = pos + 1
            what = _VAR
            if (
                kinds[pos + 1] == "("
                and kinds[pos + 2] == "name"
                and kinds[pos + 3] == ")"
                and pos != self._statement_start
                and self.is_word(pos, "typeof")
            ):
                self._typeof_site(pos)
        elif k == "(":
            self.pos = pos + 1
            self.expr()
            self.expect_match(")", "(", pos)
            what = _OTHER
        else:
            raise self.error("unexpected symbol")
        while True:
            pos = self.pos
            k = kinds[pos]
            if k == ".":
                self.pos = pos + 1
                self.expect_name()
                what = _VAR
            elif k == "[":
                self.pos = pos + 1
                self.expr()
                self.expect("]")
                what = _VAR
            elif k == ":":
                self.pos = pos + 1
                self.expect_name()
                self.call_args()
                what = _CALL
            elif k in _CALL_LIKE_START:
                self.call_args()
                what = _CALL
            elif k == "!":
                self.pos = pos + 1
                self.annotate("non_nil", self.starts[pos])
                what = _OTHER
            else:
                return what

    def _typeof_site(self, pos: int) -> None:
        """Remember ``typeof(name)`` at token ``pos``: it may name a declared type."""
        site = TypeofSite(
            self.starts[pos], self.ends[pos + 3], self.word(pos + 2), self.scope, self.seq + 1
        )
        self.typeof_sites.append(site)

    def call_args(self) -> None:
        """``(explist)``, a table constructor or a string literal."""
        kinds = self.kinds
        pos = self.pos
        k = kinds[pos]
        if k == "string":
            self.pos = pos + 1
        elif k == "{":
            self.table_constructor()
        elif k == "(":
            self.pos = pos + 1
            if kinds[self.pos] != ")":
                self.exprlist()
            self.expect_match(")", "(", pos)
        else:
            raise self.error("function arguments expected")

    def table_constructor(self) -> None:
        """``{ [field {sep field} [sep]] }`` with ``name = e``, ``[e] = e`` or ``e``."""
        kinds = self.kinds
        opener = self.pos
        self.pos += 1
        while kinds[self.pos] != "}":
            k = kinds[self.pos]
            if k == "name" and kinds[self.pos + 1] == "=":
                self.pos += 2
                self.expr()
            elif k == "[":
                self.pos += 1
                self.expr()
                self.expect("]")
                self.expect("=")
                self.expr()
            else:
                self.expr()
            if kinds[self.pos] not in (",", ";"):
                break
            self.pos += 1
        self.expect_match("}", "{", opener)
