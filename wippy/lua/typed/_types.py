"""The type grammar: everything that may follow ``:``, ``::``, ``as``, ``->`` or ``=``
in a ``type`` declaration.

Grammar (``|`` alternatives, ``[]`` optional, ``{}`` repeated)::

    type      = ['|'] inter {'|' inter} | simple 'extends' simple '?' type ':' type
    inter     = simple {'&' simple}
    simple    = primary {'?' | '[' ']' | '[' type ']' | '@' Name ['(' [exprlist] ')']}
    primary   = nil | true | false | String | Number | '-' Number
              | Name {'.' Name} ['<' type {',' type} '>']
              | '{' '}' | '{' type '}' | '{' entry {(','|';') entry} [','|';'] '}'
              | '(' params ')' '->' returns | '(' type ')'
              | fun '(' params ')' [':' returns]
              | typeof '(' expr ')' | keyof '(' type ')'
              | readonly '{' ... '}' | interface '{' ... '}' | asserts Name [is type]
    entry     = Name ['?'] ':' type | '[' type ']' ':' type
    params    = [param {',' param}],  param = [Name ['?'] ':'] type | '...' [':'] type
    returns   = type | '(' ')' | '(' type {',' type} ')'
    typeparams = '<' Name [':' type] {',' Name [':' type]} '>'

The words ``fun``, ``typeof``, ``keyof``, ``readonly``, ``interface``, ``asserts``,
``extends`` and ``is`` are keywords only where the grammar expects them, so plain Lua
may keep using them as names.
"""

from __future__ import annotations

from wippy.lua.typed._cursor import Cursor
from wippy.lua.typed._model import TypeNode

_LITERALS = frozenset(("true", "false", "string", "number"))


class TypeGrammar(Cursor):
    """Parses type expressions into :class:`TypeNode` trees."""

    def expr(self) -> None:  # pragma: no cover - provided by the full parser
        """Parse one expression (needed by ``typeof(...)`` and validator arguments)."""
        raise NotImplementedError

    # -- entry points ------------------------------------------------------------------

    def type_(self, allow_tuple: bool = False) -> TypeNode:
        """A full type: unions of intersections, or a conditional type.

        With ``allow_tuple`` (return positions) a parenthesized list ``(A, B)`` or ``()``
        is accepted too and comes back as a ``returns`` node.
        """
        kinds = self.kinds
        start = self.starts[self.pos]
        if kinds[self.pos] == "|":  # leading bar of a multi-line union
            self.pos += 1
        first = self.intersection(allow_tuple)
        if first.kind == "returns":
            return first
        if self.is_word(self.pos, "extends"):
            return self.conditional(first)
        if kinds[self.pos] != "|":
            return first
        parts = [first]
        while kinds[self.pos] == "|":
            self.pos += 1
            parts.append(self.intersection())
        return TypeNode("union", start, self.ends[self.pos - 1], tuple(parts))

    def return_types(self) -> TypeNode:
        """What follows ``:`` after a parameter list: ``T``, ``T, U``, ``(T, U)`` or ``()``."""
        start = self.starts[self.pos]
        first = self.type_(allow_tuple=True)
        if first.kind == "returns":
            return first
        items = [first]
        while self.kinds[self.pos] == ",":
            self.pos += 1
            items.append(self.type_())
        return TypeNode("returns", start, self.ends[self.pos - 1], tuple(items))

    def typeparams(self) -> TypeNode:
        """``<T, U: Constraint>`` on a function, type alias or interface."""
        start = self.starts[self.pos]
        self.expect("<")
        params = []
        while True:
            name_i = self.expect_name()
            constraint: tuple[TypeNode, ...] = ()
            if self.kinds[self.pos] == ":":
                self.pos += 1
                constraint = (self.type_(),)
            params.append(
                TypeNode(
                    "typeparam",
                    self.starts[name_i],
                    self.ends[self.pos - 1],
                    constraint,
                    self.word(name_i),
                )
            )
            if self.kinds[self.pos] != ",":
                break
            self.pos += 1
        self.close_angle()
        return TypeNode("typeparams", start, self.ends[self.pos - 1], tuple(params))

    # -- levels ------------------------------------------------------------------------

    def conditional(self, check: TypeNode) -> TypeNode:
        """``Check extends Ext ? Then : Else``."""
        self.pos += 1  # 'extends'
        extends = self.primary()
        self.expect("?")
        then = self.type_()
        self.expect(":")
        other = self.type_()
        return TypeNode(
            "conditional", check.start, self.ends[self.pos - 1], (check, extends, then, other)
        )

    def intersection(self, allow_tuple: bool = False) -> TypeNode:
        """``A & B & C`` (binds tighter than ``|``)."""
        first = self.simple(allow_tuple)
        if self.kinds[self.pos] != "&" or first.kind == "returns":
            return first
        parts = [first]
        while self.kinds[self.pos] == "&":
            self.pos += 1
            parts.append(self.simple())
        return TypeNode("intersection", first.start, self.ends[self.pos - 1], tuple(parts))

    def simple(self, allow_tuple: bool = False) -> TypeNode:
        """A primary type followed by ``?``, ``[]``, ``[K]`` and ``@validator`` suffixes."""
        node = self.primary(allow_tuple)
        if node.kind == "returns":
            return node
        kinds = self.kinds
        validators: list[TypeNode] = []
        while True:
            k = kinds[self.pos]
            if k == "?":
                self.pos += 1
                node = self._wrap("optional", node, validators)
                validators = []
            elif k == "[":
                node = self._wrap_index(self._wrap("", node, validators))
                validators = []
            elif k == "@":
                validators.append(self.validator())
            else:
                return self._wrap("", node, validators)

    def _wrap(self, kind: str, node: TypeNode, validators: list[TypeNode]) -> TypeNode:
        """Attach pending validators to ``node``, then wrap it in ``kind`` if given."""
        end = self.ends[self.pos - 1]
        if validators:
            node = TypeNode("annotated", node.start, end, (node, *validators))
        if kind:
            node = TypeNode(kind, node.start, end, (node,))
        return node

    def _wrap_index(self, node: TypeNode) -> TypeNode:
        """``T[]`` (array of T) or ``T[K]`` (indexed access)."""
        self.pos += 1  # '['
        if self.kinds[self.pos] == "]":
            self.pos += 1
            return TypeNode("array", node.start, self.ends[self.pos - 1], (node,))
        index = self.type_()
        self.expect("]")
        return TypeNode("index", node.start, self.ends[self.pos - 1], (node, index))

    def validator(self) -> TypeNode:
        """``@name`` or ``@name(args)``: a runtime constraint such as ``@min(0)``."""
        start = self.starts[self.pos]
        self.pos += 1  # '@'
        name_i = self.expect_name()
        args: list[TypeNode] = []
        if self.kinds[self.pos] == "(":
            opener = self.pos
            self.pos += 1
            if self.kinds[self.pos] != ")":
                while True:
                    arg_start = self.starts[self.pos]
                    self.expr()
                    arg_end = self.ends[self.pos - 1]
                    source = self.text[arg_start:arg_end]
                    args.append(TypeNode("arg", arg_start, arg_end, (), source))
                    if self.kinds[self.pos] != ",":
                        break
                    self.pos += 1
            self.expect_match(")", "(", opener)
        end = self.ends[self.pos - 1]
        return TypeNode("validator", start, end, tuple(args), self.word(name_i))

    # -- primaries ---------------------------------------------------------------------

    def primary(self, allow_tuple: bool = False) -> TypeNode:
        """One type without suffixes."""
        kinds = self.kinds
        pos = self.pos
        k = kinds[pos]
        if k == "name":
            return self.named()
        if k == "{":
            return self.table()
        if k == "(":
            return self.parenthesized(allow_tuple=allow_tuple)
        start = self.starts[pos]
        if k == "nil":
            self.pos = pos + 1
            return TypeNode("name", start, self.ends[pos], (), "nil")
        if k in _LITERALS or (k == "-" and kinds[pos + 1] == "number"):
            self.pos = pos + (2 if k == "-" else 1)
            end = self.ends[self.pos - 1]
            return TypeNode("literal", start, end, (), self.text[start:end])
        raise self.error("type expected")

    def named(self) -> TypeNode:
        """A type name, a generic instance, or a contextual type form (``fun``, ...)."""
        kinds = self.kinds
        pos = self.pos
        word = self.word(pos)
        special = _SPECIAL.get(word)
        if special is not None and kinds[pos + 1] == special[0]:
            method = getattr(self, special[1])
            result: TypeNode = method()
            return result
        start = self.starts[pos]
        pos += 1
        while kinds[pos] == "." and kinds[pos + 1] == "name":
            pos += 2
        self.pos = pos
        name = self.text[start : self.ends[pos - 1]]
        if kinds[pos] != "<" or self._attrib_follows(pos):
            return TypeNode("name", start, self.ends[pos - 1], (), name)
        self.pos += 1
        args = [self.type_()]
        while kinds[self.pos] == ",":
            self.pos += 1
            args.append(self.type_())
        self.close_angle()
        return TypeNode("generic", start, self.ends[self.pos - 1], tuple(args), name)

    def _attrib_follows(self, pos: int) -> bool:
        """Whether ``<const>``/``<close>`` starts at ``pos``: a local's attribute written
        after its type (``local f: File <close>``), not type arguments."""
        kinds = self.kinds
        return (
            kinds[pos + 1] == "name"
            and kinds[pos + 2] == ">"
            and self.word(pos + 1) in ("const", "close")
        )

    def close_angle(self) -> None:
        """Consume a ``>``, splitting ``>>`` or ``>=`` the way nested generics need."""
        pos = self.pos
        k = self.kinds[pos]
        if k == ">":
            self.pos = pos + 1
        elif k in (">>", ">="):
            # The first character closes this list; the rest stays for the caller.
            self.kinds[pos] = k[1:]
            self.starts[pos] += 1
        else:
            raise self.error("'>' expected")

    def table(self) -> TypeNode:
        """``{}``, ``{T}`` (array), ``{[K]: V}`` (map) or ``{name: T, ...}`` (record)."""
        opener = self.pos
        start = self.starts[opener]
        self.pos += 1
        kinds = self.kinds
        k = kinds[self.pos]
        if k == "}":
            self.pos += 1
            return TypeNode("record", start, self.ends[self.pos - 1])
        if k != "[" and not self._field_start(self.pos):
            element = self.type_()
            self.expect_match("}", "{", opener)
            return TypeNode("array", start, self.ends[self.pos - 1], (element,))
        entries = self.entries(opener)
        if len(entries) == 1 and entries[0].kind == "indexer":
            return TypeNode("map", start, self.ends[self.pos - 1], entries[0].children)
        return TypeNode("record", start, self.ends[self.pos - 1], tuple(entries))

    def _field_start(self, i: int) -> bool:
        """Whether tokens at ``i`` read ``name:`` or ``name?:`` (a record field)."""
        kinds = self.kinds
        if kinds[i] != "name":
            return False
        nxt = kinds[i + 1]
        return nxt == ":" or (nxt == "?" and kinds[i + 2] == ":")

    def entries(self, opener: int) -> list[TypeNode]:
        """Record fields and ``[K]: V`` indexers up to the closing ``}``."""
        kinds = self.kinds
        entries: list[TypeNode] = []
        while kinds[self.pos] != "}":
            start = self.starts[self.pos]
            if kinds[self.pos] == "[":
                self.pos += 1
                key = self.type_()
                self.expect("]")
                self.expect(":")
                value = self.type_()
                entries.append(TypeNode("indexer", start, self.ends[self.pos - 1], (key, value)))
            elif self._field_start(self.pos):
                entries.append(self.field())
            else:
                raise self.error("<name> expected")
            if kinds[self.pos] not in (",", ";"):
                break
            self.pos += 1
        self.expect_match("}", "{", opener)
        return entries

    def field(self) -> TypeNode:
        """``name: T`` or ``name?: T`` inside a record type."""
        name_i = self.pos
        optional = self.kinds[name_i + 1] == "?"
        self.pos += 3 if optional else 2
        value = self.type_()
        return TypeNode(
            "field",
            self.starts[name_i],
            self.ends[self.pos - 1],
            (value,),
            self.word(name_i),
            optional,
        )

    def parenthesized(self, *, allow_tuple: bool) -> TypeNode:
        """``(params) -> R`` (function type), ``(T)`` (grouping) or, where a return list is
        allowed, ``(A, B)`` / ``()``."""
        opener = self.pos
        start = self.starts[opener]
        self.pos += 1
        params = self.params()
        self.expect_match(")", "(", opener)
        if self.kinds[self.pos] == "->":
            self.pos += 1
            returns = self.arrow_returns()
            return TypeNode("function", start, self.ends[self.pos - 1], (*params, returns))
        plain = all(p.name is None for p in params)
        if len(params) == 1 and plain:
            return params[0].children[0]
        if allow_tuple and plain:
            types = tuple(p.children[0] for p in params)
            return TypeNode("returns", start, self.ends[self.pos - 1], types)
        raise self.error("'->' expected")

    def arrow_returns(self) -> TypeNode:
        """What follows ``->`` (or ``:`` after ``fun(...)``): a type or a parenthesized list."""
        start = self.starts[self.pos]
        node = self.type_(allow_tuple=True)
        if node.kind == "returns":
            return node
        return TypeNode("returns", start, self.ends[self.pos - 1], (node,))

    def params(self) -> list[TypeNode]:
        """Parameters of a function type: ``name: T``, ``name?: T``, ``T``, ``...T``."""
        kinds = self.kinds
        params: list[TypeNode] = []
        while kinds[self.pos] != ")":
            start = self.starts[self.pos]
            name: str | None = None
            optional = False
            if kinds[self.pos] == "...":
                name = "..."
                self.pos += 1
                if kinds[self.pos] == ":":
                    self.pos += 1
            elif self._field_start(self.pos):
                name = self.word(self.pos)
                optional = kinds[self.pos + 1] == "?"
                self.pos += 3 if optional else 2
            value = self.type_()
            params.append(
                TypeNode("param", start, self.ends[self.pos - 1], (value,), name, optional)
            )
            if kinds[self.pos] != ",":
                break
            self.pos += 1
        return params

    # -- contextual forms (dispatched from ``named``) ------------------------------------

    def fun_type(self) -> TypeNode:
        """``fun(params): R`` (the annotation-comment style of function type)."""
        start = self.starts[self.pos]
        self.pos += 1  # 'fun'
        opener = self.expect("(")
        params = self.params()
        self.expect_match(")", "(", opener)
        if self.kinds[self.pos] == ":":
            self.pos += 1
            returns = self.arrow_returns()
        else:
            end = self.ends[self.pos - 1]
            returns = TypeNode("returns", end, end)
        return TypeNode("function", start, self.ends[self.pos - 1], (*params, returns))

    def typeof_type(self) -> TypeNode:
        """``typeof(expr)``: the type of a value."""
        start = self.starts[self.pos]
        self.pos += 1
        opener = self.expect("(")
        inner = self.starts[self.pos]
        self.expr()
        source = self.text[inner : self.ends[self.pos - 1]]
        self.expect_match(")", "(", opener)
        return TypeNode("typeof", start, self.ends[self.pos - 1], (), source)

    def keyof_type(self) -> TypeNode:
        """``keyof(T)``: the union of a record's keys."""
        start = self.starts[self.pos]
        self.pos += 1
        opener = self.expect("(")
        inner = self.type_()
        self.expect_match(")", "(", opener)
        return TypeNode("keyof", start, self.ends[self.pos - 1], (inner,))

    def readonly_type(self) -> TypeNode:
        """``readonly {…}``: an array, map or record that may not be written."""
        start = self.starts[self.pos]
        self.pos += 1
        inner = self.table()
        return TypeNode("readonly", start, self.ends[self.pos - 1], (inner,))

    def interface_type(self) -> TypeNode:
        """``interface {…}``: a structural record type written inline."""
        start = self.starts[self.pos]
        self.pos += 1
        inner = self.table()
        return TypeNode("interface", start, self.ends[self.pos - 1], inner.children)

    def asserts_type(self) -> TypeNode:
        """``asserts x`` / ``asserts x is T``: a return type that narrows a parameter."""
        start = self.starts[self.pos]
        self.pos += 1
        name_i = self.expect_name()
        narrowed: tuple[TypeNode, ...] = ()
        if self.is_word(self.pos, "is"):
            self.pos += 1
            narrowed = (self.type_(),)
        return TypeNode("asserts", start, self.ends[self.pos - 1], narrowed, self.word(name_i))


# word -> (token that must follow, method of TypeGrammar)
_SPECIAL = {
    "fun": ("(", "fun_type"),
    "typeof": ("(", "typeof_type"),
    "keyof": ("(", "keyof_type"),
    "readonly": ("{", "readonly_type"),
    "interface": ("{", "interface_type"),
    "asserts": ("name", "asserts_type"),
}
