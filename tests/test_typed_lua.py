"""Typed-Lua front end: typed source must become plain Lua 5.4 that behaves like the
hand-written untyped version, on the same lines, and plain Lua must pass through as is.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from lupa import lua54

from wippy.lua.typed import TranspileResult, TypedLuaSyntaxError, transpile
from wippy.lua.vm import LuaVM

# Serializes results so runs of the typed and the plain version can be compared. Chunks
# run in an environment like an entry's (the runtime's globals, type values included),
# falling back to the full standard library (debug.traceback).
_HARNESS = """
local profile = ...
local function dump(v)
    if type(v) ~= "table" then
        return type(v) .. ":" .. tostring(v)
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
end
return function(code, name)
    local env = setmetatable({}, {__index = function(_, k)
        local v = profile[k]
        if v == nil then v = _G[k] end
        return v
    end})
    local f, err = load(code, name, "t", env)
    if not f then return "compile error: " .. err end
    local res = table.pack(pcall(f))
    local out = {}
    for i = 1, res.n do out[i] = dump(res[i]) end
    return table.concat(out, " ")
end
"""


@pytest.fixture(scope="module")
def run() -> Callable[..., str]:
    """Compile and run a chunk in the runtime's Lua 5.4; returns its results, serialized."""
    vm = LuaVM()
    runner = vm.lua.execute(_HARNESS, vm.rt.profiles[b"function"])

    def run_chunk(code: str, name: str = "=t") -> str:
        return bytes(runner(code.encode(), name.encode())).decode()

    return run_chunk


def src(text: str) -> str:
    """Dedent a test snippet (keeping its first line as line 1)."""
    return textwrap.dedent(text).lstrip("\n")


def check_layout(source: str, result: TranspileResult) -> None:
    """Every line keeps its number; with types only blanked, every column too."""
    breaks = [i for i, c in enumerate(source) if c in "\r\n"]
    assert len(re.findall(r"\r\n|\n\r|\n|\r", result.code)) == len(
        re.findall(r"\r\n|\n\r|\n|\r", source)
    )
    blanked = transpile(source, runtime=False).code
    assert len(blanked) == len(source)
    assert [i for i, c in enumerate(blanked) if c in "\r\n"] == breaks
    # Lines differ from the blanked ones only where a declaration or typeof() was.
    for typed_line, blank_line in zip(result.code.splitlines(), blanked.splitlines(), strict=True):
        if typed_line != blank_line:
            assert "__wt" in typed_line


# ---------------------------------------------------------------------------------------
# Every construct of the typed dialect, next to the plain Lua a person would have written.
# ---------------------------------------------------------------------------------------

EQUIVALENTS: dict[str, tuple[str, str]] = {
    "primitive locals": (
        """
        local count: integer = 7
        local ratio: number = 0.5
        local label: string = "apples"
        local ready: boolean = false
        local blob: any = {1, 2}
        local mystery: unknown = nil
        return count * ratio, label, ready, #blob, mystery
        """,
        """
        local count = 7
        local ratio = 0.5
        local label = "apples"
        local ready = false
        local blob = {1, 2}
        local mystery = nil
        return count * ratio, label, ready, #blob, mystery
        """,
    ),
    "optional and union locals": (
        """
        local maybe: number? = nil
        local either: number | string = "seven"
        local pick: "left" | "right" = "left"
        local flag: true = true
        local exact: 42 | -1 = 42
        return maybe, either, pick, flag, exact
        """,
        """
        local maybe = nil
        local either = "seven"
        local pick = "left"
        local flag = true
        local exact = 42
        return maybe, either, pick, flag, exact
        """,
    ),
    "declaration without value": (
        """
        local total: number
        local a: string, b: {number}, c
        total = 3
        return total, a, b, c
        """,
        """
        local total
        local a, b, c
        total = 3
        return total, a, b, c
        """,
    ),
    "parameters and return": (
        """
        local function area(w: number, h: number): number
            return w * h
        end
        function perimeter(w: number, h: number?): number
            return 2 * (w + (h or w))
        end
        return area(3, 4), perimeter(5)
        """,
        """
        local function area(w, h)
            return w * h
        end
        function perimeter(w, h)
            return 2 * (w + (h or w))
        end
        return area(3, 4), perimeter(5)
        """,
    ),
    "multiple returns": (
        """
        local function split(n: integer, d: integer): (integer, integer)
            return n // d, n % d
        end
        local function lookup(key: string): (string?, string?)
            if key == "x" then return "found", nil end
            return nil, "missing " .. key
        end
        local function pair(): number, string
            return 1, "one"
        end
        local function nothing(): ()
        end
        local q, r = split(17, 5)
        local v, err = lookup("y")
        return q, r, v, err, pair(), nothing()
        """,
        """
        local function split(n, d)
            return n // d, n % d
        end
        local function lookup(key)
            if key == "x" then return "found", nil end
            return nil, "missing " .. key
        end
        local function pair()
            return 1, "one"
        end
        local function nothing()
        end
        local q, r = split(17, 5)
        local v, err = lookup("y")
        return q, r, v, err, pair(), nothing()
        """,
    ),
    "function types": (
        """
        local twice: (number) -> number = function(x: number): number
            return x * 2
        end
        local check: (number, string) -> boolean
        local fold: (acc: number, item: number) -> number = function(a, b) return a + b end
        local multi: () -> (number, number) = function() return 1, 2 end
        local callback: fun(msg: string): string = function(m) return "<" .. m .. ">" end
        local wrapper: ((number) -> number)? = twice
        return twice(4), check, fold(1, 2), multi(), callback("hi"), wrapper(1)
        """,
        """
        local twice = function(x)
            return x * 2
        end
        local check
        local fold = function(a, b) return a + b end
        local multi = function() return 1, 2 end
        local callback = function(m) return "<" .. m .. ">" end
        local wrapper = twice
        return twice(4), check, fold(1, 2), multi(), callback("hi"), wrapper(1)
        """,
    ),
    "variadic": (
        """
        local function total(...: number): number
            local sum: number = 0
            for _, v in ipairs({...}) do
                sum = sum + v
            end
            return sum
        end
        local function tag(prefix: string, ...: any): string
            return prefix .. select("#", ...)
        end
        return total(1, 2, 3), tag("n", "a", "b")
        """,
        """
        local function total(...)
            local sum = 0
            for _, v in ipairs({...}) do
                sum = sum + v
            end
            return sum
        end
        local function tag(prefix, ...)
            return prefix .. select("#", ...)
        end
        return total(1, 2, 3), tag("n", "a", "b")
        """,
    ),
    "records, optional fields, collections": (
        """
        type Point = {x: number, y: number}
        type Settings = {
            name: string,
            retries: integer,
            verbose?: boolean,
            tags?: {string};
        }
        type Scores = {[string]: number}
        type Names = {string}
        type Rows = any[]
        local p: Point = {x = 1, y = 2}
        local s: Settings = {name = "svc", retries = 3}
        local scores: Scores = {ann = 10}
        local names: Names = {"a", "b"}
        local rows: Rows = {}
        local nest: {meta: {on: boolean}, list: {[integer]: string}} = {meta = {on = true}}
        return p.x + p.y, s.name, s.verbose, scores.ann, #names, #rows, nest.meta.on
        """,
        """
        local p = {x = 1, y = 2}
        local s = {name = "svc", retries = 3}
        local scores = {ann = 10}
        local names = {"a", "b"}
        local rows = {}
        local nest = {meta = {on = true}}
        return p.x + p.y, s.name, s.verbose, scores.ann, #names, #rows, nest.meta.on
        """,
    ),
    "generics": (
        """
        local function first<T>(items: {T}): T?
            return items[1]
        end
        type Labeled = {label: string}
        local function describe<T: Labeled, U>(item: T, extra: U): string
            return item.label .. tostring(extra)
        end
        local swap = function<A, B>(a: A, b: B): (B, A) return b, a end
        return first({"z", "y"}), describe({label = "L"}, 9), swap(1, 2)
        """,
        """
        local function first(items)
            return items[1]
        end
        local function describe(item, extra)
            return item.label .. tostring(extra)
        end
        local swap = function(a, b) return b, a end
        return first({"z", "y"}), describe({label = "L"}, 9), swap(1, 2)
        """,
    ),
    "generic methods and aliases": (
        """
        type Box<T> = {value: T}
        type Pair<K, V> = {key: K, val: V}
        type Nested = Box<Box<number>>
        type Outcome<T, E> =
            | {ok: true, value: T}
            | {ok: false, error: E}
        local Stack = {}
        Stack.__index = Stack
        function Stack.new<T>(): Stack
            return setmetatable({items = {}}, Stack)
        end
        function Stack:push<T>(item: T): ()
            self.items[#self.items + 1] = item
        end
        function Stack:peek(): any
            return self.items[#self.items]
        end
        local b: Box<Box<number>>= {value = {value = 5}}
        local o: Outcome<number, string> = {ok = true, value = 1}
        local s = Stack.new()
        s:push(b.value.value)
        return s:peek(), o.ok
        """,
        """
        local Stack = {}
        Stack.__index = Stack
        function Stack.new()
            return setmetatable({items = {}}, Stack)
        end
        function Stack:push(item)
            self.items[#self.items + 1] = item
        end
        function Stack:peek()
            return self.items[#self.items]
        end
        local b = {value = {value = 5}}
        local o = {ok = true, value = 1}
        local s = Stack.new()
        s:push(b.value.value)
        return s:peek(), o.ok
        """,
    ),
    "intersections and tagged unions": (
        """
        type Named = {name: string}
        type Aged = {age: number}
        type Person = Named & Aged
        type State =
            {phase: "idle"}
            | {phase: "busy", job: string}
            | {phase: "failed", reason: string}
        local function show(state: State): string
            if state.phase == "busy" then return "busy:" .. state.job end
            return state.phase
        end
        local who: Person = {name = "Kim", age = 40}
        return who.name, show({phase = "busy", job = "x"}), show({phase = "idle"})
        """,
        """
        local function show(state)
            if state.phase == "busy" then return "busy:" .. state.job end
            return state.phase
        end
        local who = {name = "Kim", age = 40}
        return who.name, show({phase = "busy", job = "x"}), show({phase = "idle"})
        """,
    ),
    "never": (
        """
        local function stop(why: string): never
            error(why, 0)
        end
        return pcall(stop, "halt")
        """,
        """
        local function stop(why)
            error(why, 0)
        end
        return pcall(stop, "halt")
        """,
    ),
    "non-nil assertion": (
        """
        local record: {inner: {v: number}?}? = {inner = {v = 3}}
        local a = (record!).inner!.v
        local b = tostring(record!.inner!.v!)
        local c = record.inner!["v"]
        return a, b, c
        """,
        """
        local record = {inner = {v = 3}}
        local a = (record).inner.v
        local b = tostring(record.inner.v)
        local c = record.inner["v"]
        return a, b, c
        """,
    ),
    "casts": (
        """
        local raw: any = "12"
        local n = tonumber(raw :: string)
        local m = (raw as string):rep(2)
        local t = {size = 1} as {size: number}
        local deep = ((5 :: any) :: integer) + 1
        local function id(x: any): number
            return (x :: number)
        end
        local neg = -n :: number
        local cat = raw :: string .. "!"
        return n, m, t.size, deep, id(4), neg, cat
        """,
        """
        local raw = "12"
        local n = tonumber(raw)
        local m = (raw):rep(2)
        local t = {size = 1}
        local deep = ((5)) + 1
        local function id(x)
            return (x)
        end
        local neg = -n
        local cat = raw .. "!"
        return n, m, t.size, deep, id(4), neg, cat
        """,
    ),
    "validators": (
        """
        type Percent = number @min(0) @max(100)
        type Account = {
            age: number @min(0) @max(150),
            email: string @pattern("^.+@.+$") @min_len(3),
        }
        local level: number @min(0) = 1
        local scores: {number @min(0) @max(100)} = {85, 90}
        local id: number @min(1) | string @min_len(1) = 1
        local tag: string @flag = "x"
        return level, #scores, id, tag
        """,
        """
        local level = 1
        local scores = {85, 90}
        local id = 1
        local tag = "x"
        return level, #scores, id, tag
        """,
    ),
    "readonly, typeof, keyof, index, interface, asserts": (
        """
        local sample = {name = "n", size = 2}
        type Sample = typeof(sample)
        type SampleKey = keyof(Sample)
        type SizeType = Sample["size"]
        type Frozen = readonly {number}
        type FrozenMap = readonly {[string]: number}
        type Shape = interface {area: number}
        type Pick<T> = T extends string ? "s" : "other"
        interface Greeter: Shape
            function greet(name: string): string
            function greet_all<T>(names: {T}, ...: any): (number, string?)
            label?: string
        end
        local function ensure(v: any): asserts v is string
            assert(type(v) == "string")
        end
        local function first(list: readonly {number}): number
            return list[1]
        end
        ensure("ok")
        return first({4}), sample.size
        """,
        """
        local sample = {name = "n", size = 2}
        local function ensure(v)
            assert(type(v) == "string")
        end
        local function first(list)
            return list[1]
        end
        ensure("ok")
        return first({4}), sample.size
        """,
    ),
    "attributes with types": (
        """
        local limit <const>: integer = 10
        local closed = {}
        do
            local guard <close>: any = setmetatable({}, {__close = function() closed.y = 1 end})
            local after: any <close> = nil
            local also: number <const> = 2
        end
        return limit, closed.y
        """,
        """
        local limit <const> = 10
        local closed = {}
        do
            local guard <close> = setmetatable({}, {__close = function() closed.y = 1 end})
            local after <close> = nil
            local also <const> = 2
        end
        return limit, closed.y
        """,
    ),
    "labels next to casts": (
        """
        local out = {}
        for i = 1, 3 do
            if i == 2 then goto continue end
            out[#out + 1] = i :: integer
            ::continue::
        end
        local x = out[1] :: number
        ::done::
        local y = x ::again::
        return out, x, y
        """,
        """
        local out = {}
        for i = 1, 3 do
            if i == 2 then goto continue end
            out[#out + 1] = i
            ::continue::
        end
        local x = out[1]
        ::done::
        local y = x ::again::
        return out, x, y
        """,
    ),
    "contextual words stay names": (
        """
        local type_of = type
        local as, is, fun, typeof, interface = 1, 2, 3, 4, 5
        local t = {type = "x", as = as, interface = interface}
        local function readonly(extends: number): number return extends + as end
        local v: number = readonly(is) + fun + typeof + t.interface
        local r = {}
        function r.as(x) return x end
        function r:is(x) return x end
        return type_of(t), t.type, v, r.as(6), r:is(7), t.as
        """,
        """
        local type_of = type
        local as, is, fun, typeof, interface = 1, 2, 3, 4, 5
        local t = {type = "x", as = as, interface = interface}
        local function readonly(extends) return extends + as end
        local v = readonly(is) + fun + typeof + t.interface
        local r = {}
        function r.as(x) return x end
        function r:is(x) return x end
        return type_of(t), t.type, v, r.as(6), r:is(7), t.as
        """,
    ),
    "gradual typing": (
        """
        function old_style(x)
            return x + 1
        end
        function new_style(x: number): number
            return x + 1
        end
        return old_style(1), new_style(1)
        """,
        """
        function old_style(x)
            return x + 1
        end
        function new_style(x)
            return x + 1
        end
        return old_style(1), new_style(1)
        """,
    ),
}


@pytest.mark.parametrize("case", sorted(EQUIVALENTS))
def test_typed_runs_like_plain(case: str, run: Callable[..., str]) -> None:
    typed, plain = (src(text) for text in EQUIVALENTS[case])
    result = transpile(typed, "=t")
    check_layout(typed, result)
    assert result.typed
    expected = run(plain)
    assert expected.startswith("boolean:true"), expected
    assert run(result.code) == expected


def test_plain_equivalents_are_plain() -> None:
    for _, plain in EQUIVALENTS.values():
        text = src(plain)
        result = transpile(text)
        assert result.code == text
        assert result.annotations == []


# ---------------------------------------------------------------------------------------
# Layout: lines, columns, error messages and tracebacks.
# ---------------------------------------------------------------------------------------


def test_runtime_error_reports_the_source_line(run: Callable[..., str]) -> None:
    typed = src(
        """
        type Config = {
            name: string,
            port: number,
        }
        local function load_config(raw: any): Config
            local cfg = raw :: Config
            if not cfg.name then
                error("config needs a name")
            end
            return cfg
        end
        return load_config({port = 1})
        """
    )
    result = transpile(typed, "=cfg")
    assert run(result.code, "=cfg") == "boolean:false string:cfg:8: config needs a name"


def test_traceback_lines_match(run: Callable[..., str]) -> None:
    typed = src(
        """
        local function inner(n: number): never
            error("deep " .. n)
        end
        local function outer<T>(v: T): T
            inner(1)
            return v
        end
        local ok, trace = xpcall(outer, debug.traceback, 5)
        return trace
        """
    )
    out = run(transpile(typed, "@app/mod.lua").code, "@app/mod.lua")
    assert out.startswith("boolean:true string:app/mod.lua:2: deep 1\nstack traceback:")
    assert "app/mod.lua:2: in upvalue 'inner'" in out
    assert "app/mod.lua:5: in function <app/mod.lua:4>" in out
    assert "app/mod.lua:8: in main chunk" in out


def test_arithmetic_error_line_after_multiline_annotation(run: Callable[..., str]) -> None:
    typed = src(
        """
        local function f(
            a: number,
            b: {
                x: number,
            }?
        ): (
            number,
            string
        )
            return a + b.x
        end
        return f(1, nil)
        """
    )
    out = run(transpile(typed, "=t").code)
    assert out.startswith("boolean:false string:t:10: attempt to index a nil value")


def test_annotation_positions() -> None:
    typed = (
        "local x: number = 1\n"
        "local function f<T>(a: T, ...: string): (T, number)\n"
        "  return a :: T\n"
        "end\n"
        "type Id = string | number\n"
        "local v = (x!)"
    )
    result = transpile(typed)
    found = [
        (a.kind, a.name, a.text, a.start_line, a.start_column, a.end_line, a.end_column)
        for a in result.annotations
    ]
    assert found == [
        ("local", "x", ": number", 1, 8, 1, 16),
        ("generics", "f", "<T>", 2, 17, 2, 20),
        ("param", "a", ": T", 2, 22, 2, 25),
        ("vararg", "...", ": string", 2, 30, 2, 38),
        ("return", "f", ": (T, number)", 2, 39, 2, 52),
        ("cast", None, ":: T", 3, 12, 3, 16),
        ("type_alias", "Id", "type Id = string | number", 5, 1, 5, 26),
        ("non_nil", None, "!", 6, 13, 6, 14),
    ]
    blanked = transpile(typed, runtime=False).code
    for a in result.annotations:
        assert typed[a.start : a.end] == a.text
        assert blanked[a.start : a.end].strip() == ""


def test_type_trees_are_recorded() -> None:
    result = transpile("local m: {[string]: {number}?} | Box<T, (x: number) -> ()> = nil")
    node = result.annotations[0].node
    assert node is not None and node.kind == "union"
    map_node, generic = node.children
    assert map_node.kind == "map"
    assert [c.kind for c in map_node.children] == ["name", "optional"]
    assert generic.kind == "generic" and generic.name == "Box"
    fn = generic.children[1]
    assert fn.kind == "function"
    assert [c.kind for c in fn.children] == ["param", "returns"]
    assert fn.children[0].name == "x" and fn.children[1].children == ()
    record = transpile("type R = {a: number, b?: string}").annotations[0].node
    assert record is not None and record.kind == "alias" and record.name == "R"
    fields = record.children[0].children
    assert [(f.name, f.optional) for f in fields] == [("a", False), ("b", True)]


def test_crlf_and_tabs_keep_layout(run: Callable[..., str]) -> None:
    typed = "local a:\tnumber = 1\r\nlocal b: {\r\n\tx: number\r\n} = {x = 2}\r\nreturn a + b.x"
    result = transpile(typed)
    check_layout(typed, result)
    assert run(result.code) == "boolean:true number:3"


def test_blanking_never_glues_tokens(run: Callable[..., str]) -> None:
    typed = src(
        """
        local a=1
        local b=a::number-1
        local c=a::number..""
        local d=-a::integer
        local e={a::any,[a::any]=a::any}
        local f=(a::number)
        local g=#{a!}
        return b,c,d,e[1],e[1],f,g
        """
    )
    result = transpile(typed)
    assert run(result.code) == run(result.code.replace("  ", " "))
    expected = "boolean:true number:0 string:1 number:-1 number:1 number:1 number:1 number:1"
    assert run(result.code) == expected


def test_statement_ending_in_type_syntax_before_paren(run: Callable[..., str]) -> None:
    # Without a separator Lua would read `local x = f ... (g)()` as one call.
    typed = src(
        """
        local calls = {}
        local function f(...) calls[#calls + 1] = "f" return f end
        local function g() calls[#calls + 1] = "g" return g end
        local x = f :: any
        (g)()
        local y = f as any
        type Unused = number
        (g)()
        return table.concat(calls, ",")
        """
    )
    result = transpile(typed)
    check_layout(typed, result)
    assert run(result.code) == "boolean:true string:g,g"


def test_as_at_line_start_stays_a_call(run: Callable[..., str]) -> None:
    plain = src(
        """
        local seen = {}
        local function as(v) seen[#seen + 1] = v end
        local x = 1
        as "s"
        local y = x
        as {1}
        local z = y
        as(3)
        return #seen, x, y, z
        """
    )
    result = transpile(plain)
    assert result.code == plain
    assert run(plain) == "boolean:true number:3 number:1 number:1 number:1"


# ---------------------------------------------------------------------------------------
# Plain Lua 5.4 passes through unchanged.
# ---------------------------------------------------------------------------------------

PLAIN_EDGE_CASES = src(
    """
    local t = {1, 2, 3; n = 3, ["k"] = 4, [5] = 6,}
    local s1, s2 = 'it\\'s', "tab\\tq\\"\\65\\x41\\u{48}\\z
          continued"
    local long = [==[
    a ]] ]=] still long
    ]==]
    --[==[ a long
    comment ]] ]==]
    local num = 0x1p4 + 0x.8 + 1e-3 + .5 + 3. + 0xA.8p1 + 0xff + 1E+2
    local bits = (7 // 2) ~ 3 & 5 | 1 << 2 >> 1 ~ ~0
    local cmp = 1 ~= 2 and 3 <= 4 and 5 >= 4 and not nil
    local str = ("x"):rep(2) .. #t .. -2 ^ 2
    local obj = {v = 1}
    function obj:get() return self.v end
    function obj.static() return "s" end
    local m = obj:get() + #obj.static"" + #obj.static{}
    do local c <const> = 1; local d <close> = nil end
    for i = 10, 1, -3 do if i < 5 then goto out end end
    ::out::
    for k, v in pairs({}) do end
    while false do break end
    repeat local r = 1 until r == 1
    local f = function(...) return select("#", ...) end
    local a, b = f(1, nil, 3), f()
    local type = type
    local g = (f)(1)
    ;;;
    return t.n, s1, #s2, #long, num, bits, cmp, str, m, a, b, g, type(g)
    """
)


def test_plain_lua_is_untouched(run: Callable[..., str]) -> None:
    result = transpile(PLAIN_EDGE_CASES)
    assert result.code == PLAIN_EDGE_CASES
    assert result.annotations == [] and not result.typed
    assert run(PLAIN_EDGE_CASES).startswith("boolean:true number:3 string:it")


def test_runtime_lua_sources_are_untouched() -> None:
    root = resources.files("wippy.lua")
    count = 0
    for path in _lua_files(root):
        text = path.read_text(encoding="utf-8")
        assert transpile(text, "@" + path.name).code == text
        count += 1
    assert count > 0


def _lua_files(folder: Any) -> list[Any]:
    """Every ``.lua`` file under a package folder (Traversable), recursively."""
    found = []
    for child in folder.iterdir():
        if child.is_dir():
            found.extend(_lua_files(child))
        elif child.name.endswith(".lua"):
            found.append(child)
    return found


# ---------------------------------------------------------------------------------------
# Syntax errors: the right line, in Lua's format.
# ---------------------------------------------------------------------------------------

TYPED_ERRORS = [
    ("local x: = 1", 1, "type expected near '='"),
    ("local a = 1\nlocal b:\n  = 2", 3, "type expected near '='"),
    ("type Broken = {\n  a: number,\n  b: \n}", 4, "type expected near '}'"),
    ("local t: {x: number\nlocal y = 1", 2, "'}' expected (to close '{' at line 1) near 'local'"),
    ("local function f(a: number\n\n: number end", 3, "')' expected near ':'"),
    ("local f: (a: number) = nil", 1, "'->' expected near '='"),
    ("local b: Box<number = nil", 1, "'>' expected near '='"),
    ("x = y ::\n", 2, "type expected near <eof>"),
    ("function f<>() end", 1, "<name> expected near '>'"),
    ("local v: number @\n\n(1) = 2", 3, "<name> expected near '('"),
]


@pytest.mark.parametrize(("source", "line", "message"), TYPED_ERRORS)
def test_typed_syntax_errors_name_the_line(source: str, line: int, message: str) -> None:
    with pytest.raises(TypedLuaSyntaxError) as info:
        transpile(source, "@app/broken.lua")
    assert info.value.line == line
    assert str(info.value) == f"app/broken.lua:{line}: {message}"


PLAIN_ERRORS = [
    "x = [[abc",
    "x = 'abc",
    "x = 'ab\nc'",
    "x = 3..2",
    "x = 0x",
    "--[[ abc",
    "x = $",
    "x = 1\ny",
    "if x then",
    "function f()\n\n",
    "local 1",
    "x = (1",
    "x = '\\q'",
    "x = [=x",
    "local x <foo> = 1",
    "return 1\nx = 2",
    "for x do end",
    "function f() return ... end",
    "a.b:c = 1",
    "x = 3x",
    "f(\n1,\n",
    "local t = {1,\n2",
    "x = }",
    "f() = 1",
    "while true do\n  x = 1\n",
]


@pytest.mark.parametrize("source", PLAIN_ERRORS)
def test_plain_errors_match_lua(source: str) -> None:
    lua = lua54.LuaRuntime()
    loader = lua.eval("function(s) local f, e = load(s, '=t') return e end")
    expected = loader(source)
    with pytest.raises(TypedLuaSyntaxError) as info:
        transpile(source, "=t")
    assert str(info.value) == expected


def test_deleting_any_token_fails_like_lua() -> None:
    """Deleting each token of a plain chunk in turn: we must never reject what Lua accepts,
    and when both reject, both must name the same line."""
    lua = lua54.LuaRuntime()
    loader = lua.eval("function(s) local f, e = load(s, '=t') return e end")
    pieces = PLAIN_EDGE_CASES.split(" ")
    for i in range(len(pieces)):
        mutated = " ".join(pieces[:i] + pieces[i + 1 :])
        lua_error = loader(mutated)
        try:
            transpile(mutated, "=t")
        except TypedLuaSyntaxError as err:
            assert lua_error is not None, (mutated, err)
            assert str(err).split(":")[1] == lua_error.split(":")[1], (mutated, err, lua_error)
        else:
            if lua_error is not None:
                # Accepted here, rejected by Lua: only semantic checks Lua does while
                # compiling (goto targets and the like) may be left to Lua.
                assert "goto" in lua_error or "label" in lua_error, (mutated, lua_error)


def test_chunk_names_follow_lua() -> None:
    def message(chunkname: str) -> str:
        with pytest.raises(TypedLuaSyntaxError) as info:
            transpile("local x: = 1", chunkname)
        return str(info.value)

    assert message("=entry").startswith("entry:1:")
    assert message("@dir/file.lua").startswith("dir/file.lua:1:")
    assert message("local x: = 1").startswith('[string "local x: = 1"]:1:')
    assert message("?").startswith('[string "?"]:1:')


# ---------------------------------------------------------------------------------------
# Size: a big file goes through in one piece (no timing asserted).
# ---------------------------------------------------------------------------------------


def test_large_typed_file(run: Callable[..., str]) -> None:
    block = src(
        """
        type Item{n} = {{id: number, name: string?}}
        function make{n}<T>(id: number, extra: T): Item{n}
            local item: Item{n} = {{id = id :: integer, name = nil}}
            return item
        end
        total = total + make{n}(1, "x").id
        """
    )
    typed = "total = 0\n" + "".join(block.format(n=i) for i in range(1500)) + "return total\n"
    result = transpile(typed, "=big")
    check_layout(typed, result)
    assert len(result.annotations) == 1500 * 7
    assert run(result.code, "=big") == "boolean:true number:1500"
