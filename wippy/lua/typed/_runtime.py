"""Runtime type values: what the emitted code says about declared types.

Types are values at run time (``Point:is(v)``, ``Point(v)``, ``typeof(arr):elem()``). The
front end describes every ``type``/``interface`` declaration of a chunk, and the declared
type of each local that ``typeof(name)`` asks about, as Lua table constructors (data, no
code), and emits three things:

* one helper statement at the start of line 1 that fetches the chunk's type values from
  the ``types`` module, building them from the descriptions the first time (the
  descriptions sit behind an ``or``, so they are evaluated once per Lua state, not once
  per instance)::

      local __wt=__wippy_types["t…"] or __wippy_types.chunk("t…",{…});

* at each declaration, in place of the blanked statement and on its first line:
  ``local Point=__wt[3];``;
* at each ``typeof(name)`` of an annotated local, the declared type: ``__wt[7]``.

A declaration whose type depends on run-time values (``inner.Inner`` from a required
library, a local holding a type, a non-literal validator argument) cannot be built once
for all instances; it is built by ``__wt.bind(i, inner, ...)`` with those values, which
memoizes on them, so instances of the same code still share one type value.

Description nodes are small tables whose first item says what they are; ``types.lua``
reads them (see ``build`` there). ``{"b","number"}`` a built-in, ``{"d",i}`` declared type
``i`` of this chunk, ``{"p",i}`` type parameter ``i``, ``{"x",i,name}`` run-time value
``i``, ``{"t",i}`` the dynamic type of value ``i``, ``{"o",name}`` an unknown name (accepts
anything), ``{"l",v}`` a literal, ``{"?",T}``, ``{"|",...}``, ``{"&",...}``, ``{"[]",T}``,
``{"{}",K,V}``, ``{"r",{{name,T,optional},...},K,V}``, ``{"i",fields,bases}``,
``{"f",params,returns,vararg}``, ``{"v",T,{{"min",arg},...}}``, ``{"g",T,args}`` (generic
instance), ``{"k",T}`` (keyof), ``{"ix",T,K}``, ``{"c",A,B,C,D}`` (conditional),
``{"ro",T}`` (readonly).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from wippy.lua.typed._model import TypeNode
from wippy.lua.typed._scope import LOCAL_BUDGET, Declaration, Scope, TypeofSite

CHUNK_LOCAL = "__wt"
REGISTRY = "__wippy_types"

BUILTINS = frozenset(
    (
        "number",
        "integer",
        "string",
        "boolean",
        "nil",
        "any",
        "unknown",
        "never",
        "table",
        "function",
        "thread",
        "userdata",
        "error",
    )
)
# Global type values usable as type names too (``type N = Number``).
GLOBAL_TYPES = {
    "Number": "number",
    "Integer": "integer",
    "String": "string",
    "Boolean": "boolean",
    "Nil": "nil",
    "Any": "any",
    "Unknown": "unknown",
    "Never": "never",
    "Table": "table",
    "Function": "function",
}
_ANY = '{"b","any"}'
_LITERAL = re.compile(
    r"""-?\s*(?:0[xX][0-9a-fA-F.]+(?:[pP][-+]?\d+)?|[0-9.]+(?:[eE][-+]?\d+)?)
    |"(?:[^"\\\r\n]|\\[^\r\n])*"|'(?:[^'\\\r\n]|\\[^\r\n])*'
    |\[(=*)\[[^\r\n]*?\]\1\]|true|false|nil""",
    re.VERBOSE,
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lua_string(text: str) -> str:
    """A Lua string literal for ``text`` that fits on one line."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(slots=True)
class Edit:
    """Replace ``start:end`` of the code by ``text`` (which must not contain newlines)."""

    start: int
    end: int
    text: str


@dataclass(slots=True)
class _Context:
    """Where names in one description resolve, and what the description needs."""

    scope: Scope
    seq: int
    params: dict[str, int] = field(default_factory=dict)
    externals: list[tuple[str, str]] = field(default_factory=list)  # (Lua expr, path)
    refs: set[int] = field(default_factory=set)  # declarations referred to by index

    def external(self, expr: str, path: str) -> int:
        """Index (1-based) of a run-time value the description needs."""
        key = (expr, path)
        if key in self.externals:
            return self.externals.index(key) + 1
        self.externals.append(key)
        return len(self.externals)

    def inner(self, scope: Scope, seq: int) -> _Context:
        """A context for a type written elsewhere (a local's annotation) sharing needs."""
        ctx = _Context(scope, seq)
        ctx.externals = self.externals
        ctx.refs = self.refs
        return ctx


class Emitter:
    """Builds the helper line and the edits for one chunk's declarations and sites."""

    def __init__(
        self, text: str, declarations: list[Declaration], sites: list[TypeofSite]
    ) -> None:
        self.text = text
        self.declarations = declarations
        self.sites = sites
        self.bound: set[int] = set()
        self.entries: list[str] = []
        self._anon: dict[str, int] = {}
        self._compilers: dict[str, Callable[[TypeNode, _Context], str]] = {
            "name": self._name,
            "generic": self._generic,
            "literal": self._literal,
            "optional": lambda n, c: self._wrap("?", n, c),
            "union": lambda n, c: self._wrap("|", n, c),
            "intersection": lambda n, c: self._wrap("&", n, c),
            "array": lambda n, c: self._wrap("[]", n, c),
            "map": lambda n, c: self._wrap("{}", n, c),
            "keyof": lambda n, c: self._wrap("k", n, c),
            "index": lambda n, c: self._wrap("ix", n, c),
            "readonly": lambda n, c: self._wrap("ro", n, c),
            "conditional": lambda n, c: self._wrap("c", n, c),
            "record": self._record,
            "interface": self._interface,
            "function": self._function,
            "typeof": self._typeof,
            "annotated": self._annotated,
            "asserts": lambda n, c: '{"b","boolean"}',
        }

    # -- driver ------------------------------------------------------------------------

    def emit(self) -> tuple[str | None, list[Edit]]:
        """The helper statement for line 1 (None if not needed) and the edits."""
        if not self.declarations and not self.sites:
            return None, []
        self._find_bound()
        edits: list[Edit] = []
        for i, decl in enumerate(self.declarations):
            self.entries.append("")
            edits.append(Edit(decl.start, decl.end, self._declaration(i, decl)))
        for site in self.sites:
            text = self._site(site)
            if text is not None:
                edits.append(Edit(site.start, site.end, text))
        if not edits:
            return None, []
        body = ",".join(self.entries)
        key = lua_string("t" + hashlib.sha1(body.encode()).hexdigest()[:24])
        helper = (
            f"local {CHUNK_LOCAL}={REGISTRY}[{key}] or {REGISTRY}.chunk({key},{{{body}}});"
        )
        return helper, edits

    def _find_bound(self) -> None:
        """Which declarations depend on run-time values, directly or through others."""
        refs: list[set[int]] = []
        for i, decl in enumerate(self.declarations):
            ctx = self._decl_context(decl)
            self._body(decl.node, ctx)
            refs.append(ctx.refs)
            if ctx.externals:
                self.bound.add(i)
        changed = True
        while changed:
            changed = False
            for i, found in enumerate(refs):
                if i not in self.bound and found & self.bound:
                    self.bound.add(i)
                    changed = True

    def _decl_context(self, decl: Declaration) -> _Context:
        ctx = _Context(decl.scope, decl.seq)
        for node in decl.node.children:
            if node.kind == "typeparams":
                ctx.params = {p.name or "": j + 1 for j, p in enumerate(node.children)}
        return ctx

    def _declaration(self, i: int, decl: Declaration) -> str:
        """Describe declaration ``i`` and return the statement that binds its value."""
        ctx = self._decl_context(decl)
        body = self._body(decl.node, ctx)
        nparams = len(ctx.params)
        self.entries[i] = self._entry(lua_string(decl.name), body, nparams, ctx)
        value = self._value(i + 1, ctx)
        # Past Lua's local budget, the value goes to a global of the instance instead.
        binder = "" if decl.scope.function.peak > LOCAL_BUDGET else "local "
        return f"{binder}{decl.name}={value};"

    def _site(self, site: TypeofSite) -> str | None:
        """The declared type of ``typeof(name)``, or None to leave the dynamic call."""
        if site.scope.lookup("typeof", site.seq) is not None:
            return None  # a local function named typeof
        binding = site.scope.lookup(site.name, site.seq)
        if binding is None or binding.kind != "local" or binding.node is None:
            return None
        assert binding.scope is not None
        node = binding.node
        if node.kind == "name":  # declared as a type parameter: the value knows better
            declared = binding.scope.lookup(node.name or "", binding.seq)
            if declared is not None and declared.kind == "typeparam":
                return None
        ctx = _Context(binding.scope, binding.seq)
        body = self.compile(binding.node, ctx)
        entry = self._entry("nil", body, 0, ctx)
        index = self._anon.get(entry)
        if index is None:
            self.entries.append(entry)
            index = self._anon[entry] = len(self.entries)
        return self._value(index, ctx)

    def _entry(self, name: str, body: str, nparams: int, ctx: _Context) -> str:
        """``{name, node, nparams, paths}``; paths (of run-time values) make a template."""
        if not ctx.externals:
            return f"{{{name},{body},{nparams}}}"
        paths = ",".join(lua_string(path) for _, path in ctx.externals)
        return f"{{{name},{body},{nparams},{{{paths}}}}}"

    @staticmethod
    def _value(index: int, ctx: _Context) -> str:
        if not ctx.externals:
            return f"{CHUNK_LOCAL}[{index}]"
        args = ",".join(expr for expr, _ in ctx.externals)
        return f"{CHUNK_LOCAL}.bind({index},{args})"

    def _body(self, node: TypeNode, ctx: _Context) -> str:
        """The description of a declaration's node (alias body or interface)."""
        if node.kind == "interface":
            return self._interface(node, ctx)
        return self.compile(node.children[-1], ctx)

    # -- type nodes --------------------------------------------------------------------

    def compile(self, node: TypeNode, ctx: _Context) -> str:
        """The description of one type node."""
        compiler = self._compilers.get(node.kind)
        return compiler(node, ctx) if compiler is not None else _ANY

    def _wrap(self, tag: str, node: TypeNode, ctx: _Context) -> str:
        parts = ",".join(self.compile(child, ctx) for child in node.children)
        return f'{{"{tag}",{parts}}}'

    def _name(self, node: TypeNode, ctx: _Context) -> str:
        return self.reference(node.name or "", ctx)

    def reference(self, name: str, ctx: _Context) -> str:
        """What a (possibly dotted) type name refers to at the context's point."""
        if name in BUILTINS:
            return f'{{"b","{name}"}}'
        root, _, path = name.partition(".")
        if path:  # a field of a run-time value: a type exported by a module, say
            return f'{{"x",{ctx.external(root, path)},{lua_string(name)}}}'
        if name in ctx.params:
            return f'{{"p",{ctx.params[name]}}}'
        binding = ctx.scope.lookup(name, ctx.seq)
        if binding is None:
            binding = ctx.scope.forward_type(name, ctx.seq)
        if binding is None:
            builtin = GLOBAL_TYPES.get(name)
            return f'{{"b","{builtin}"}}' if builtin else f'{{"o",{lua_string(name)}}}'
        if binding.kind == "typeparam":
            return _ANY
        if binding.kind == "type" and binding.decl is not None:
            if binding.decl not in self.bound:
                ctx.refs.add(binding.decl)
                return f'{{"d",{binding.decl + 1}}}'
            if binding.seq >= ctx.seq:  # declared further down: no value to use yet
                return f'{{"o",{lua_string(name)}}}'
        return f'{{"x",{ctx.external(name, "")},{lua_string(name)}}}'

    def _generic(self, node: TypeNode, ctx: _Context) -> str:
        target = self.reference(node.name or "", ctx)
        args = ",".join(self.compile(child, ctx) for child in node.children)
        return f'{{"g",{target},{{{args}}}}}'

    def _literal(self, node: TypeNode, ctx: _Context) -> str:
        source = node.name or "nil"
        if "\n" in source or "\r" in source:
            return _ANY
        return f'{{"l",{source}}}'

    def _fields(self, members: tuple[TypeNode, ...], ctx: _Context) -> tuple[list[str], str]:
        """Field descriptions and the ``K,V`` of the first indexer (``nil,nil`` if none)."""
        fields: list[str] = []
        indexer = "nil,nil"
        for member in members:
            if member.kind in ("field", "method"):
                optional = ",true" if member.optional else ""
                value = self.compile(member.children[0], ctx)
                fields.append(f"{{{lua_string(member.name or '')},{value}{optional}}}")
            elif member.kind == "indexer" and indexer == "nil,nil":
                key, val = (self.compile(child, ctx) for child in member.children)
                indexer = f"{key},{val}"
        return fields, indexer

    def _record(self, node: TypeNode, ctx: _Context) -> str:
        fields, indexer = self._fields(node.children, ctx)
        return f'{{"r",{{{",".join(fields)}}},{indexer}}}'

    def _interface(self, node: TypeNode, ctx: _Context) -> str:
        bases: list[str] = []
        for child in node.children:
            if child.kind == "extends":
                bases = [self.compile(base, ctx) for base in child.children]
        fields, _ = self._fields(node.children, ctx)
        return f'{{"i",{{{",".join(fields)}}},{{{",".join(bases)}}}}}'

    def _function(self, node: TypeNode, ctx: _Context) -> str:
        params: list[str] = []
        vararg = "nil"
        returns = ""
        for child in node.children:
            if child.kind == "returns":
                returns = ",".join(self.compile(r, ctx) for r in child.children)
            elif child.kind == "param" and child.name == "...":
                vararg = self.compile(child.children[0], ctx)
            elif child.kind == "param":
                params.append(self.compile(child.children[0], ctx))
        return f'{{"f",{{{",".join(params)}}},{{{returns}}},{vararg}}}'

    def _typeof(self, node: TypeNode, ctx: _Context) -> str:
        """``typeof(expr)`` in a type: a local's declared type, else the value's type."""
        source = node.name or ""
        if _IDENT.fullmatch(source):
            binding = ctx.scope.lookup(source, ctx.seq)
            if binding is not None and binding.kind == "local" and binding.node is not None:
                assert binding.scope is not None
                return self.compile(binding.node, ctx.inner(binding.scope, binding.seq))
        elif "\n" in source or "\r" in source:
            return _ANY
        else:
            source = f"({source})"
        return f'{{"t",{ctx.external(source, "")}}}'

    def _annotated(self, node: TypeNode, ctx: _Context) -> str:
        base = self.compile(node.children[0], ctx)
        checks = []
        for validator in node.children[1:]:
            args = [self._argument(arg, ctx) for arg in validator.children]
            checks.append(",".join([lua_string(validator.name or ""), *args]))
        inner = ",".join(f"{{{check}}}" for check in checks)
        return f'{{"v",{base},{{{inner}}}}}'

    def _argument(self, arg: TypeNode, ctx: _Context) -> str:
        """A validator argument: a literal inline, anything else evaluated where declared."""
        source = (arg.name or "nil").strip()
        if _LITERAL.fullmatch(source):
            return f'{{"l",{source}}}'
        if "\n" in source or "\r" in source or "--" in source:
            return '{"l",nil}'
        return f'{{"x",{ctx.external(f"({source})", "")}}}'
