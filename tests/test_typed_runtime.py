"""Typed Lua at run time: declared types are values (casts, ``:is``, reflection,
comparison), ``typeof`` gives declared or dynamic types, and typed files keep their lines.

Every construct of the upstream type-system page runs here under the real runtime.
"""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from tests.conftest import Project
from wippy import Runtime
from wippy.errors import INVALID, WippyError
from wippy.lua.typed import transpile
from wippy.lua.vm import LuaVM


def call(project: Project, entry: str = "app:t", *args: Any) -> Any:
    return project.call(entry, *args)


def failure(project: Project, entry: str = "app:t") -> str:
    """The error message of a call that must fail."""
    with pytest.raises(Exception) as info:
        project.call(entry)
    return str(info.value)


# ---------------------------------------------------------------------------------------
# Every construct of the type-system page, in one typed file.
# ---------------------------------------------------------------------------------------

SHOWCASE = """
type Status = "pending" | "active" | "done"
type User = {name: string, age: number}
type Config = {
    host: string,
    port: number,
    timeout?: number,
    debug?: boolean
}
type HasName = {name: string}
type Named = {name: string}
type Aged = {age: number}
type Person = Named & Aged
type Result<T, E> =
    {ok: true, value: T}
    | {ok: false, error: E}
type LoadState =
    {status: "loading"}
    | {status: "loaded", data: User}
    | {status: "error", message: string}
type Point = {x: number, y: number}
type StringArray = {string}
type StringMap = {[string]: number}
type Member = {
    age: number @min(0) @max(150),
    name: string @min_len(1) @max_len(100)
}

local checks = 0
local function expect(cond: boolean, what: string)
    checks = checks + 1
    if not cond then error("check failed: " .. what, 2) end
end
local function fails(f: () -> any, needle: string): string
    local ok, err = pcall(f)
    expect(not ok, "should fail: " .. needle)
    local text = tostring(err)
    expect(text:find(needle, 1, true) ~= nil, "'" .. text .. "' should mention " .. needle)
    return text
end

local function process(x: number?): number
    if x ~= nil then
        return x
    end
    return 0
end

local function add(a: number, b: number): number
    return a + b
end

local function div_mod(a: number, b: number): (number, number)
    return math.floor(a / b), a % b
end

local function fetch(url: string): (string?, error?)
    if url == "" then return nil, errors.new("empty url") end
    return "data:" .. url, nil
end

local double: (number) -> number = function(x: number): number
    return x * 2
end

local function sum(...: number): number
    local total: number = 0
    for _, v in ipairs({...}) do
        total = total + v
    end
    return total
end

local function identity<T>(x: T): T
    return x
end

local function greet<T: HasName>(obj: T): string
    return "Hello, " .. obj.name
end

local function render(state: LoadState): string
    if state.status == "loading" then
        return "Loading..."
    elseif state.status == "loaded" then
        return "Hello, " .. state.data.name
    elseif state.status == "error" then
        return "Error: " .. state.message
    end
    return "?"
end

function fail(msg: string): never
    error(msg)
end

function old_function(x)
    return x + 1
end

function new_function(x: number): number
    return x + 1
end

local function main(): any
    -- primitives, any, unknown, nil safety
    local n: number = 3.14
    local i: integer = 42
    local s: string = "hello"
    local b: boolean = true
    local a: any = "anything"
    local u: unknown = nil
    local y: number? = nil
    local z: number? = 42
    expect(n > 3 and i == 42 and s == "hello" and b and a == "anything" and u == nil, "primitives")
    expect(y == nil and z == 42, "optionals")
    expect(process(nil) == 0 and process(5) == 5, "narrowing")
    local val: number | string = "seven"
    if type(val) == "number" then expect(false, "union narrowing") else expect(val:upper() == "SEVEN", "union") end
    local st: Status = "pending"
    expect(Status:is(st) == "pending", "literal union value")

    -- functions
    expect(add(2, 3) == 5, "add")
    local q, r = div_mod(7, 2)
    expect(q == 3 and r == 1, "div_mod")
    local data, ferr = fetch("")
    expect(data == nil and ferr ~= nil, "error return")
    expect(double(4) == 8 and sum(1, 2, 3) == 6, "function types, varargs")
    expect(identity(42) == 42 and identity("hello") == "hello", "generics")
    expect(greet({name = "Alice"}) == "Hello, Alice", "constrained generics")

    -- records, optional fields, intersections, tagged unions
    local usr: User = {name = "alice", age = 25}
    local cfg: Config = {host = "localhost", port = 8080}
    local p: Person = {name = "Alice", age = 30}
    expect(User:is(usr) == usr and Config:is(cfg) == cfg and Person:is(p) == p, "records")
    expect(Person:is({name = "Alice"}) == nil, "intersection needs every part")
    expect(render({status = "loaded", data = usr}) == "Hello, alice", "tagged unions")
    expect(LoadState:is({status = "loaded", data = usr}) ~= nil, "tagged union value")
    expect(LoadState:is({status = "unknown"}) == nil, "tagged union mismatch")
    local NumResult = Result
    expect(NumResult:is({ok = true, value = 1}) ~= nil and NumResult:is({ok = 1}) == nil, "generic union")
    fails(function() fail("boom") end, "boom")

    -- error idiom and non-nil assertion
    local value, err = fetch("x")
    if err then return nil, err end
    expect(value == "data:x", "error idiom")
    local maybe: User? = usr
    local name = (maybe!).name
    expect(name == "alice", "non-nil assertion")

    -- safe casts
    local raw: any = {name = "bob", age = 3}
    local user = User(raw)
    expect(user.name == "bob", "User(data)")
    local x: any = "text"
    expect(string(x) == "text" and integer(7) == 7 and boolean(false) == false, "primitive casts")
    expect(math.type(integer(7.0)) == "integer" and number(1.5) == 1.5, "integer(7.0)")
    local pt = Point({x = 1, y = 2})
    expect(pt.x + pt.y == 3, "Point(data)")
    fails(function() return Point({x = 1}) end, "Point.y: expected number, got nil")
    fails(function() return string(5) end, "expected string, got 5")
    fails(function() return integer(1.5) end, "expected integer, got 1.5")

    -- Type:is
    local ok_p, no_err = Point:is({x = 1, y = 2})
    local bad_p, is_err = Point:is({x = "1", y = 2})
    expect(ok_p ~= nil and no_err == nil, "is ok")
    expect(bad_p == nil and tostring(is_err):find("Point.x: expected number, got \\"1\\"", 1, true), "is fails")
    expect(is_err:kind() == errors.INVALID, "Invalid kind")

    -- unsafe casts
    local cast1 = raw :: User
    local cast2 = raw as User
    expect(cast1 == raw and cast2 == raw, "unsafe casts")

    -- reflection
    expect(Number:kind() == "number" and Point:kind() == "record" and Point:name() == "Point", "kind, name")
    local seen = {}
    for fname, typ in User:fields() do seen[#seen + 1] = fname .. ":" .. typ:kind() end
    expect(table.concat(seen, ",") == "name:string,age:number", "fields in order")
    expect(User.name:kind() == "string" and User:name() == "User", "field types and name()")
    local arr: {number} = {1, 2, 3}
    expect(typeof(arr):elem():kind() == "number", "array elem")
    local map: {[string]: number} = {}
    expect(typeof(map):key():kind() == "string" and typeof(map):val():kind() == "number", "map")
    local opt: number? = nil
    expect(typeof(opt):kind() == "optional" and typeof(opt):inner():kind() == "number", "optional")
    local variants = {}
    for variant in Status:variants() do variants[#variants + 1] = tostring(variant) end
    expect(table.concat(variants, " ") == '"pending" "active" "done"', "variants")
    local fn: (number, string) -> boolean
    local kinds = {}
    for param in typeof(fn):params() do kinds[#kinds + 1] = param:kind() end
    expect(table.concat(kinds, ",") == "number,string" and typeof(fn):ret():kind() == "boolean", "fn")

    -- comparison, table keys
    expect(Number == Number and Integer <= Number and Integer < Number, "comparison")
    expect(not (Number < Integer) and not (Number <= Integer) and String ~= Number, "comparison 2")
    local handlers = {}
    handlers[Number] = function() return "number handler" end
    handlers[String] = function() return "string handler" end
    local dynamic = 1.5
    local h = handlers[typeof(dynamic)]
    expect(h and h() == "number handler" and handlers[typeof("s")]() == "string handler", "keys")

    -- annotations and validators
    local count: number = 0
    local words: StringArray = {"a"}
    local counts: StringMap = {a = 1}
    local lim: number @min(0) @max(100) = 50
    local email: string @pattern("^.+@.+$") = "test@example.com"
    local scores: {number @min(0) @max(100)} = {85, 90}
    local id: number @min(1) | string @min_len(1) = 1
    expect(count == 0 and #words == 1 and counts.a == 1 and lim == 50, "annotations")
    expect(email ~= nil and #scores == 2 and id == 1, "validated locals")
    expect(typeof(scores):elem():is(101) == nil and typeof(scores):elem():is(100) == 100, "elem validators")
    expect(typeof(id):is("") == nil and typeof(id):is(0) == nil and typeof(id):is("x") == "x", "union members")
    expect(typeof(email):is("nope") == nil and typeof(email):is("a@b") == "a@b", "pattern")
    fails(function() return Member({age = 151, name = "x"}) end, "Member.age: 151 is above the maximum 150")
    fails(function() return Member({age = 1, name = ""}) end, "length 0 is below the minimum length 1")

    -- gradual adoption
    expect(old_function(1) == 2 and new_function(1) == 2, "gradual")
    return checks
end

return { main = main }
"""


def test_every_construct_of_the_type_page_runs(project: Project) -> None:
    project.function("t", SHOWCASE)
    assert call(project) == 56  # every check ran


# ---------------------------------------------------------------------------------------
# Casts and errors
# ---------------------------------------------------------------------------------------


def test_cast_errors_are_invalid_with_the_user_line(project: Project) -> None:
    project.function(
        "t",
        """
        type Point = {x: number, y: number}
        local function main()
            local raw = {x = 1}
            local p = Point(raw)  -- not a tail call: the caller's line stays on the stack
            return p
        end
        return { main = main }
        """,
    )
    with pytest.raises(WippyError) as info:
        project.call("app:t")
    assert info.value.kind == INVALID
    assert info.value.message == "Point.y: expected number, got nil (missing field)"
    assert "t.lua:5:" in (info.value.stack or "")  # the source starts with a blank line


def test_error_objects_from_is(project: Project) -> None:
    project.function(
        "t",
        """
        type Id = number | string
        type Tags = {string} @min_len(1) @max_len(2)
        type Entry = {id: Id, tags: Tags, meta?: {[string]: string}}
        local function main()
            local out = {}
            for _, v in ipairs({
                {id = true, tags = {"a"}},
                {id = 1, tags = {}},
                {id = 1, tags = {"a", "b", "c"}},
                {id = 1, tags = {"a", 2}},
                {id = 1, tags = {"a"}, meta = {env = 1}},
                {id = 1, tags = {"a"}, meta = {[5] = "x"}},
                "nope",
            }) do
                local ok, err = Entry:is(v)
                assert(ok == nil)
                out[#out + 1] = err:kind() .. "|" .. err:message()
            end
            return out
        end
        return { main = main }
        """,
    )
    assert [m.split("|", 1)[1] for m in call(project)] == [
        "Entry.id: expected number | string, got true",
        "Entry.tags: length 0 is below the minimum length 1",
        "Entry.tags: length 3 is above the maximum length 2",
        "Entry.tags[2]: expected string, got 2",
        "Entry.meta.env: expected string, got 1",
        'Entry.meta: key 5: expected string, got 5',
        'Entry: expected {id: Id, tags: Tags, meta?: {[string]: string}}, got "nope"',
    ]
    assert all(m.split("|", 1)[0] == INVALID for m in call(project))


def test_string_cast_and_string_library(project: Project) -> None:
    project.function(
        "t",
        """
        local function main()
            local ok, err = pcall(string, nil)
            return {string("x"), ("ab"):upper(), string.rep("z", 2),
                getmetatable(string), ok, err:message()}
        end
        return { main = main }
        """,
    )
    assert call(project) == ["x", "AB", "zz", "wippy.module", False, "expected string, got nil"]


# ---------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------

LINES = """\
type A = {n: number}; local first = 1
type B<T> = {
    value: T,
    list: {T},
}
local function boom(v: A): number
    local b: B<number> = {value = 1, list = {}}
    return v.n + b.missing.x
end
local function cast(v: any)
    local b = B(v)
    return b
end
local function main(which: string)
    if which == "boom" then return (boom({n = 1})) end
    if which == "cast" then return cast(5) end
    local arr: {number} = {}
    return typeof(arr):elem():kind() .. first
end
return { main = main }
"""


def test_lines_are_kept(project: Project) -> None:
    project.function("t", LINES)
    code = transpile(LINES, "@t.lua").code
    assert code.count("\n") == LINES.count("\n")
    assert code.splitlines()[7] == LINES.splitlines()[7]
    runtime = project.runtime()
    assert asyncio.run(runtime.call("app:t", "x")) == "number1"
    with pytest.raises(Exception) as info:
        asyncio.run(runtime.call("app:t", "boom"))
    assert "t.lua:8: attempt to index a nil value (field 'missing')" in str(info.value)
    with pytest.raises(WippyError) as info:
        asyncio.run(runtime.call("app:t", "cast"))
    assert info.value.message == "B: expected {value: any, list: {any}}, got 5"
    assert "t.lua:11:" in (info.value.stack or "")


# ---------------------------------------------------------------------------------------
# Libraries export types; values are built once per compiled chunk.
# ---------------------------------------------------------------------------------------


def test_library_types_are_shared_values(project: Project) -> None:
    project.function(
        "inner",
        """
        type Flag = "hot" | "cold"
        type Inner = {id: string @min_len(2), flags: {Flag} @min_len(1)}
        return { Inner = Inner, Flag = Flag }
        """,
        kind="library.lua",
        method=None,
    )
    project.function(
        "outer",
        """
        local inner = require("inner")
        type Label = string @max_len(4)
        type Outer = {inner: inner.Inner, label: Label}
        type Outers = {Outer} @min_len(1)
        local Alias = inner.Flag
        type Tagged = {flag: Alias}
        return { Outer = Outer, Outers = Outers, Tagged = Tagged, Inner = inner.Inner }
        """,
        kind="library.lua",
        method=None,
        imports={"inner": "app:inner"},
    )
    project.function(
        "t",
        """
        local o1 = require("o1")
        local o2 = require("o2")
        local function main()
            local good = {inner = {id = "ab", flags = {"hot"}}, label = "x"}
            local _, e1 = o1.Outer:is({inner = {id = "a", flags = {"hot"}}, label = "x"})
            local _, e2 = o1.Outers:is({good, {inner = good.inner, label = "toolong"}})
            local _, e3 = o1.Tagged:is({flag = "warm"})
            return {rawequal(o1.Outer, o2.Outer), rawequal(o1.Inner, o2.Inner),
                rawequal(o1.Tagged, o2.Tagged), o1.Outers:is({good}) ~= nil,
                e1:message(), e2:message(), e3:message()}
        end
        return { main = main }
        """,
        imports={"inner": "app:inner", "o1": "app:outer", "o2": "app:outer"},
    )
    assert call(project) == [
        True,
        True,
        True,
        True,
        "Outer.inner.id: length 1 is below the minimum length 2",
        "Outers[2].label: length 7 is above the maximum length 4",
        'Tagged.flag: expected "hot" | "cold", got "warm"',
    ]


def test_chunk_types_are_built_once_per_state() -> None:
    vm = LuaVM()
    source = "type P = {x: number}\nreturn P"
    code = transpile(source, "=t").code
    values = []
    for _ in range(3):
        chunk, err = vm.compile("t", code, "=t")
        assert err is None
        env = vm.lua.eval("function(p) return setmetatable({}, {__index = p}) end")(
            vm.rt.profiles[b"function"]
        )
        values.append(chunk(env))
    assert values[0] is not None
    eq = vm.lua.eval("rawequal")
    assert eq(values[0], values[1]) and eq(values[1], values[2])


# ---------------------------------------------------------------------------------------
# Declared types: forward and recursive references, generics, interfaces, typeof.
# ---------------------------------------------------------------------------------------


def test_forward_recursive_and_generic_types(project: Project) -> None:
    project.function(
        "t",
        """
        type Tree = {value: number, children: {Tree}, parent?: Later}
        type Later = {name: string}
        type List<T> = {head: T, tail: List<T>?}
        type Pair<A, B> = {a: A, b: B}
        type Nums = List<number>
        type SP = Pair<string, Pair<number, boolean>>
        interface Greeter
            function greet(name: string): string
            label?: string
        end
        interface Loud: Greeter
            volume: integer
        end
        local function main()
            local tree = {value = 1, children = {{value = 2, children = {}}}}
            local bad_tree = {value = 1, children = {{value = "x", children = {}}}}
            local _, e1 = Tree:is(bad_tree)
            local _, e2 = Nums:is({head = 1, tail = {head = 2, tail = {head = "z"}}})
            local _, e3 = SP:is({a = "x", b = {a = 1, b = 2}})
            local _, e4 = Loud:is({greet = function() end, volume = 1.5})
            local _, e5 = Tree:is({value = 1, children = {}, parent = {}})
            return {Tree:is(tree) == tree, e1:message(), e2:message(), e3:message(),
                Greeter:is({greet = print}) ~= nil, e4:message(), e5:message(),
                tostring(Nums), tostring(List), Loud:kind()}
        end
        return { main = main }
        """,
    )
    assert call(project) == [
        True,
        'Tree.children[1].value: expected number, got "x"',
        'Nums.tail.tail.head: expected number, got "z"',
        "SP.b.b: expected boolean, got 2",
        True,
        "Loud.volume: expected integer, got 1.5",
        "Tree.parent.name: expected string, got nil (missing field)",
        "Nums",
        "List",
        "interface",
    ]


def test_typeof_static_dynamic_and_shadowed(project: Project) -> None:
    project.function(
        "t",
        """
        local sample: {name: string, age: integer} = {name = "Ada", age = 3}
        type Sample = typeof(sample)
        local function main()
            local plain = {1, 2}
            local n: integer = 3
            local first = typeof(n)
            local out = {Sample:kind(), Sample:is({name = "x", age = 1.5}) == nil,
                typeof(plain):kind(), first:kind(), typeof(3):kind(), typeof(nil):kind(),
                typeof(Sample):kind(), tostring(typeof(sample))}
            do
                local function typeof(v) return "mine" end
                out[#out + 1] = typeof(n)
            end
            local function generic<T>(v: T): string return typeof(v):kind() end
            out[#out + 1] = generic("s")
            return out
        end
        return { main = main }
        """,
    )
    assert call(project) == [
        "record",
        True,
        "table",
        "integer",
        "number",
        "nil",
        "type",
        "{name: string, age: integer}",
        "mine",
        "string",
    ]


def test_field_named_like_a_method(project: Project) -> None:
    project.function(
        "t",
        """
        type Shape = {kind: "circle" | "square", name: string, is: boolean}
        local function main()
            return {Shape:kind(), Shape:name(), Shape.kind:kind(), Shape.name:kind(),
                Shape:is({kind = "circle", name = "c", is = true}) ~= nil,
                Shape.is:kind(), tostring(Shape.kind)}
        end
        return { main = main }
        """,
    )
    assert call(project) == ["record", "Shape", "union", "string", True, "boolean",
                             '"circle" | "square"']


def test_type_values_are_read_only(project: Project) -> None:
    project.function(
        "t",
        """
        type P = {x: number}
        local function main()
            local ok, err = pcall(function() P.x = 1 end)
            local ok2 = pcall(function() __wippy_types.x = 1 end)
            return {ok, err:message(), ok2, getmetatable(P), next(P) == nil}
        end
        return { main = main }
        """,
    )
    assert call(project) == [False, "type values are read-only", False, "wippy.type", True]


def test_validator_arguments_from_locals(project: Project) -> None:
    project.function(
        "t",
        """
        local LIMIT = 3
        type Short = string @max_len(LIMIT)
        local function main()
            local _, err = Short:is("abcd")
            return {Short:is("abc"), err:message()}
        end
        return { main = main }
        """,
    )
    assert call(project) == ["abc", "Short: length 4 is above the maximum length 3"]


def test_bad_pattern_is_reported(project: Project) -> None:
    project.function(
        "t",
        """
        type Bad = string @pattern("(")
        local function main() return 1 end
        return { main = main }
        """,
    )
    assert "@pattern \"(\": invalid regular expression" in failure(project)


# ---------------------------------------------------------------------------------------
# The emitted code
# ---------------------------------------------------------------------------------------


def test_declarations_only_touch_their_own_lines() -> None:
    source = textwrap.dedent(
        """\
        local x = 1
        type P = {
            a: number,
        }
        local q: P = {a = x}
        print(typeof(q))
        typeof(q)
        """
    )
    lines = transpile(source, "=t").code.splitlines()
    assert lines[0].startswith("local __wt=__wippy_types[") and lines[0].endswith(";local x = 1")
    assert lines[1].strip() == "local P=__wt[1];"
    assert lines[2].strip() == "" and lines[3].strip() == ""
    assert lines[5] == "print(__wt[2]  )"
    assert lines[6] == "typeof(q)"  # a statement of its own stays a call


def test_too_many_types_for_locals_become_globals(project: Project) -> None:
    decls = "".join(f"type T{i} = {{v: number}}\n" for i in range(200))
    project.function(
        "t",
        decls
        + """
        local function main() return {T0:name(), T199:is({v = 1}) ~= nil} end
        return { main = main }
        """,
    )
    assert call(project) == ["T0", True]


def test_shebang_first_line(project: Project) -> None:
    project.function(
        "t",
        """#!/usr/bin/env wippy
        type P = {x: number}
        local function main() return P:name() end
        return { main = main }
        """,
    )
    assert call(project) == "P"


def test_runtime_reuses_one_chunk_table(project: Project) -> None:
    """Instances of an entry share the chunk's type values (no per-instance building)."""
    project.function(
        "t",
        """
        type P = {x: number}
        local function main(prev)
            return P:is({x = 1}) ~= nil
        end
        return { main = main }
        """,
    )
    runtime: Runtime = project.runtime()

    async def many() -> list[Any]:
        return [await runtime.call("app:t") for _ in range(3)]

    assert asyncio.run(many()) == [True, True, True]
