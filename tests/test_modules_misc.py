"""json, uuid, base64, crypto and logger modules: every function, error paths, round trips."""

from __future__ import annotations

import asyncio
import base64 as py_base64
import hashlib
import hmac
import json as py_json
import logging
import re
import time
import uuid as py_uuid
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NS_URL = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"


def lua(project: Project, body: str, *args: Any, modules: list[str]) -> Any:
    return run_lua(project, body, *args, modules=modules)


def lua_error(project: Project, body: str, *args: Any, modules: list[str]) -> WippyError:
    """Run a body that returns `nil, err` (or raises) and return the error."""
    with pytest.raises(WippyError) as info:
        run_lua(project, body, *args, modules=modules)
    return info.value


def js(project: Project, body: str, *args: Any) -> Any:
    return lua(project, 'local json = require("json")\n' + body, *args, modules=["json"])


def js_error(project: Project, body: str, *args: Any) -> WippyError:
    return lua_error(project, 'local json = require("json")\n' + body, *args, modules=["json"])


# ---------------------------------------------------------------------------------------
# json.encode
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"hello"', '"hello"'),
        ("42", "42"),
        ("-7", "-7"),
        ("true", "true"),
        ("false", "false"),
        ("nil", "null"),
        ("2.5", "2.5"),
        ("3.0", "3.0"),
        ("0.1", "0.1"),
        ("1/0", "null"),
        ("0/0", "null"),
        ("9007199254740993", "9007199254740993"),
        ("math.maxinteger", "9223372036854775807"),
        ("{1, 2, 3}", "[1,2,3]"),
        ('{"a", "b"}', '["a","b"]'),
        ("{}", "[]"),
        ('{name = "Alice", age = 30}', '{"age":30,"name":"Alice"}'),
        ('"q\\"b\\\\s\\n\\t\\1\\127"', '"q\\"b\\\\s\\n\\t\\u0001\\u007f"'),
        ('"héllo ✓"', '"héllo ✓"'),
    ],
)
def test_encode_values(project: Project, expr: str, expected: str) -> None:
    assert js(project, f"return json.encode({expr})") == expected


def test_encode_nested_structure_sorts_keys(project: Project) -> None:
    out = js(project, """
        return json.encode({ id = "ord-123", items = { {sku = "ABC", qty = 2}, {sku = "XYZ", qty = 1} },
                             total = 99.5, meta = { tags = {} } })
    """)
    assert out == '{"id":"ord-123","items":[{"qty":2,"sku":"ABC"},{"qty":1,"sku":"XYZ"}],"meta":{"tags":[]},"total":99.5}'


def test_encode_returns_nil_error_pair(project: Project) -> None:
    assert js(project, "local s, err = json.encode({1}); return {s, err == nil}") == ["[1]", True]


def test_encode_invalid_utf8_is_replaced(project: Project) -> None:
    assert js(project, 'return json.encode("a\\255b")') == '"a\ufffdb"'


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("local t = {}; t.self = {t}; v = t", "cyclic table at value.self[1]"),
        ("v = {handler = function() end}", "cannot encode a function at value.handler to JSON"),
        ("v = {list = {coroutine.create(function() end)}}", "cannot encode a coroutine at value.list[1] to JSON"),
        ("v = {1, 2, nil, 4}", "sparse array at value: highest index is 4 but it has only 3 elements"),
        ("v = {[0] = 'x'}", "table at value has a key of type integer (0)"),
        ("v = {[1.5] = 'x'}", "table at value has a key of type float (1.5)"),
        ("v = {[true] = 'x'}", "table at value has a key of type boolean (true)"),
        ("v = {1, 2, name = 'x'}", "table at value mixes array indexes and string keys"),
        ("v = {err = errors.new('boom')}", "cannot encode a value of type error at value.err to JSON"),
    ],
)
def test_encode_errors_name_the_value(project: Project, setup: str, message: str) -> None:
    err = js_error(project, f"local v; {setup}\nreturn json.encode(v)")
    assert err.kind == "Internal"
    assert err.retryable is False
    assert err.message.startswith("json.encode: ")
    assert message in err.message


def test_encode_depth_limit(project: Project) -> None:
    body = """
        local function nest(n) local t = {} ; local cur = t
          for i = 2, n do cur[1] = {} ; cur = cur[1] end ; return t end
        local ok = json.encode(nest(128))
        local s, err = json.encode(nest(129))
        return {ok ~= nil, s == nil, err:kind(), err:message()}
    """
    ok, failed, kind, message = js(project, body)
    assert ok and failed and kind == "Internal"
    assert "nested deeper than 128 levels" in message


# ---------------------------------------------------------------------------------------
# json.decode
# ---------------------------------------------------------------------------------------
def test_decode_object_array_and_scalars(project: Project) -> None:
    out = js(project, """
        local user = json.decode('{"name":"Bob","active":true,"n":null}')
        local items = json.decode('[10, 20, 30]')
        local resp = json.decode([[
        { "status": "ok", "data": { "users": [ {"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"} ] } }
        ]])
        return {user.name, user.active, user.n == nil, items[1], #items, resp.data.users[1].name,
                json.decode('"x"'), json.decode(" 12 "), json.decode("null") == nil, json.decode("false")}
    """)
    assert out == ["Bob", True, True, 10, 3, "Alice", "x", 12, True, False]


def test_decode_keeps_integers_and_floats(project: Project) -> None:
    out = js(project, """
        local v = json.decode('[1, -0, 1.0, 1e2, 9007199254740993, 9223372036854775807, 12345678901234567890, 2.5E-3]')
        local types = {}
        for i = 1, 8 do types[i] = math.type(v[i]) end
        return {types, v[5] == 9007199254740993, v[6] == math.maxinteger, v[8]}
    """)
    assert out == [
        ["integer", "integer", "float", "float", "integer", "integer", "float", "float"],
        True,
        True,
        0.0025,
    ]


def test_decode_strings_and_escapes(project: Project) -> None:
    out = js(project, r"""
        return {json.decode([["a\"b\\c\/d\b\f\n\r\t"]]), json.decode([["\u00e9\u2713\ud83d\ude00"]]),
                json.decode([["\ud800x"]]), json.decode([["héllo"]])}
    """)
    assert out == ['a"b\\c/d\b\f\n\r\t', "é✓😀", "\ufffdx", "héllo"]


def test_round_trip_nested_tables(project: Project) -> None:
    doc = {
        "name": "order",
        "lines": [{"sku": "A", "qty": 2, "price": 9.99}, {"sku": "B", "qty": 1, "price": 100.0}],
        "flags": {"paid": True, "shipped": False},
        "empty_list": [],
        "empty_obj": {},
        "nulls": [1, None, 3, None],
        "deep": {"a": {"b": {"c": [[1, [2, [3]]]]}}},
        "text": 'quote " backslash \\ newline \n unicode ✓',
    }
    text = py_json.dumps(doc)
    out = js(project, """
        local text = ...
        local v, err = json.decode(text)
        assert(err == nil, tostring(err))
        local again = json.encode(v)
        local v2 = json.decode(again)
        return {again, json.encode(v2) == again, v.lines[2].qty, math.type(v.lines[2].price)}
    """, text)
    again, stable, qty, price_type = out
    assert py_json.loads(again) == doc
    assert stable is True and qty == 1 and price_type == "float"
    assert '"empty_obj":{}' in again and '"empty_list":[]' in again and '"nulls":[1,null,3,null]' in again


def test_decode_empty_object_encodes_back_as_object(project: Project) -> None:
    out = js(project, """
        local out = {}
        for i, text in ipairs({"{}", "[]", '{"a": null}', "[null]", '{"a": {}, "b": [{}]}'}) do
            out[i] = json.encode(json.decode(text))
        end
        return out
    """)
    assert out == ["{}", "[]", "{}", "[null]", '{"a":{},"b":[{}]}']


@pytest.mark.parametrize(
    ("arg", "message"),
    [("42", "json.decode: string expected, got number"), ("nil", "json.decode: string expected, got nil"),
     ('""', "json.decode: empty string is not valid JSON")],
)
def test_decode_invalid_input(project: Project, arg: str, message: str) -> None:
    err = js_error(project, f"return json.decode({arg})")
    assert (err.kind, err.message) == ("Invalid", message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not valid json", "unexpected character 'n' at line 1, column 1 (byte 1)"),
        ('{"a": [1, 2,]}', "unexpected character ']' at line 1, column 13 (byte 13)"),
        ('{\n  "a": 1,\n  "b" 2\n}', "expected ':' after object key, found character '2' at line 3, column 7 (byte 19)"),
        ('{"a": 1} x', "unexpected character 'x' after the JSON value at line 1, column 10"),
        ('"abc', "unterminated string at line 1, column 1"),
        ('"a\nb"', "control character in string (must be escaped) at line 1, column 3"),
        ('"\\x"', "invalid escape in string at line 1, column 2"),
        ('"\\u12"', "invalid \\u escape in string"),
        ("[01]", "invalid number (leading zero) at line 1, column 2"),
        ("[1.]", "invalid number (digits expected after '.')"),
        ("[1e]", "invalid number (digits expected in exponent)"),
        ("[NaN]", "unexpected character 'N'"),
        ("[1e999]", "number out of range"),
        ("{1: 2}", "expected a string key in object, found character '1'"),
        ("[1 2]", "expected ',' or ']' in array, found character '2'"),
        ('{"a": 1 "b": 2}', "expected ',' or '}' in object, found character '\"'"),
        ("[", "unexpected end of input"),
        ("[tru]", "unexpected character 't'"),
    ],
)
def test_decode_syntax_errors_have_positions(project: Project, text: str, message: str) -> None:
    err = js_error(project, "return json.decode(...)", text)
    assert err.kind == "Internal"
    assert err.message.startswith("json.decode: ")
    assert message in err.message
    assert err.details["operation"] == "decode"
    assert {"line", "column", "offset"} <= set(err.details)


def test_decode_depth_limit(project: Project) -> None:
    ok, failed, message = js(project, """
        local ok = json.decode(string.rep("[", 128) .. string.rep("]", 128))
        local v, err = json.decode(string.rep("[", 129) .. string.rep("]", 129))
        return {ok ~= nil, v == nil, err:message()}
    """)
    assert ok and failed
    assert "nesting deeper than 128 levels" in message


# ---------------------------------------------------------------------------------------
# json.validate / validate_string
# ---------------------------------------------------------------------------------------
USER_SCHEMA = """
    local user_schema = {
        type = "object",
        properties = {
            name = {type = "string", minLength = 1},
            email = {type = "string", format = "email"},
            age = {type = "integer", minimum = 0, maximum = 150},
        },
        required = {"name", "email"},
    }
"""


def test_validate_accepts_valid_data(project: Project) -> None:
    out = js(project, USER_SCHEMA + """
        local ok, err = json.validate(user_schema, {name = "Alice", email = "alice@example.com", age = 30})
        local ok2 = json.validate('{"type":"number","minimum":0}', 42)
        return {ok, err == nil, ok2}
    """)
    assert out == [True, True, True]


def test_validate_reports_every_problem(project: Project) -> None:
    out = js(project, USER_SCHEMA + """
        local ok, err = json.validate(user_schema, {name = "", email = "not-an-email", age = 200.5})
        return {ok, err:kind(), err:message(), err:details().errors}
    """)
    ok, kind, message, problems = out
    assert ok is False and kind == "Invalid"
    assert message.startswith("json.validate: validation failed: ")
    assert "$.name: must be at least 1 characters long, got 0" in problems
    assert '$.email: is not a valid email, got "not-an-email"' in problems
    assert "$.age: expected integer, got number" in problems


def test_validate_missing_required(project: Project) -> None:
    out = js(project, USER_SCHEMA + "local ok, err = json.validate(user_schema, {}); return err:message()")
    assert "missing required property 'name'" in out and "missing required property 'email'" in out


@pytest.mark.parametrize(
    ("schema", "good", "bad", "problem"),
    [
        ('{type = "array", items = {type = "integer"}, minItems = 1}', "{1, 2}", "{1, 'x'}", "$[1]: expected integer, got string"),
        ('{type = "array", minItems = 1}', "{1}", "{}", "must have at least 1 items, got 0"),
        ('{type = "array", uniqueItems = true}', "{1, 2}", "{1, 1.0}", "items must be unique"),
        ('{enum = {"create", "update"}}', '"create"', '"drop"', 'must be one of ["create", "update"], got "drop"'),
        ('{const = 3}', "3.0", "4", "must be 3, got 4"),
        ('{type = "string", pattern = "^a+$", maxLength = 3}', '"aa"', '"aaaa"', "must be at most 3 characters long"),
        ('{type = "string", pattern = "^a+$"}', '"aa"', '"ab"', "does not match pattern '^a+$'"),
        ('{type = "number", exclusiveMinimum = 0, multipleOf = 0.5}', "1.5", "0", "must be > 0, got 0"),
        ('{type = "number", multipleOf = 0.5}', "2", "0.3", "must be a multiple of 0.5"),
        ('{type = "object", additionalProperties = false, properties = {a = {}}}', "{a = 1}", "{b = 1}", "property 'b' is not allowed"),
        ('{type = "object", patternProperties = {["^x_"] = {type = "string"}}}', "{x_a = 's'}", "{x_a = 1}", "$.x_a: expected string"),
        ('{anyOf = {{type = "string"}, {type = "integer"}}}', "3", "true", "does not match any schema in anyOf"),
        ('{oneOf = {{type = "number"}, {type = "integer"}}}', "1.5", "1", "must match exactly one schema in oneOf (matched 2)"),
        ('{["not"] = {type = "null"}, type = {"string", "boolean"}}', "true", "1", "expected string or boolean, got integer"),
        ('{allOf = {{minimum = 1}, {maximum = 2}}}', "2", "3", "must be <= 2, got 3"),
        ('{["$defs"] = {pos = {type = "integer", minimum = 1}}, properties = {n = {["$ref"] = "#/$defs/pos"}}}', "{n = 1}", "{n = 0}", "$.n: must be >= 1, got 0"),
        ('{["if"] = {properties = {kind = {const = "a"}}}, ["then"] = {required = {"a"}}}', "{kind = 'b'}", "{kind = 'a'}", "missing required property 'a'"),
        ('{type = "string", format = "uuid"}', '"' + NS_URL + '"', '"nope"', "is not a valid uuid"),
        ('{type = "string", format = "date-time"}', '"2024-01-02T03:04:05Z"', '"2024-01-02"', "is not a valid date-time"),
        ('{type = "object", dependentRequired = {card = {"cvv"}}}', "{card = 1, cvv = 2}", "{card = 1}", "property 'cvv' is required when 'card' is present"),
        ("{properties = {a = false}}", "{b = 1}", "{a = 1}", "$.a: no value is allowed here"),
    ],
)
def test_validate_keywords(project: Project, schema: str, good: str, bad: str, problem: str) -> None:
    out = js(project, f"""
        local schema = {schema}
        local ok1, err1 = json.validate(schema, {good})
        local ok2, err2 = json.validate(schema, {bad})
        return {{ok1, err1 and err1:message() or "", ok2, err2 and err2:message() or ""}}
    """)
    ok1, msg1, ok2, msg2 = out
    assert ok1 is True, msg1
    assert ok2 is False
    assert problem in msg2


def test_validate_boolean_schemas(project: Project) -> None:
    out = js(project, """
        local ok, err = json.validate(false, 1)
        return {json.validate(true, {1, 2}), ok, err:message()}
    """)
    assert out == [True, False, "json.validate: validation failed: $: no value is allowed here"]


def test_validate_empty_table_is_array_and_object(project: Project) -> None:
    out = js(project, """
        return {json.validate({type = "array"}, {}), json.validate({type = "object"}, {})}
    """)
    assert out == [True, True]


def test_validate_string(project: Project) -> None:
    out = js(project, """
        local schema = {type = "object", properties = {action = {type = "string", enum = {"create", "update", "delete"}}},
                        required = {"action"}}
        local ok = json.validate_string(schema, '{"action":"create","data":{}}')
        local bad, err = json.validate_string(schema, '{"action":"drop"}')
        local broken, err2 = json.validate_string(schema, '{"action":')
        return {ok, bad, err:kind(), err:message(), broken, err2:kind(), err2:message()}
    """)
    assert out[:3] == [True, False, "Invalid"]
    assert "$.action: must be one of" in out[3]
    assert out[4:6] == [False, "Invalid"]
    assert out[6].startswith("json.validate_string: JSON text is not valid:")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('json.validate({type = "strin"}, 1)', "json.validate: schema compilation failed: unknown type 'strin'"),
        ('json.validate({type = "string", pattern = "("}, "x")', "schema compilation failed: invalid pattern '('"),
        ('json.validate({["$ref"] = "#/nope"}, 1)', "schema compilation failed: $ref '#/nope' does not resolve"),
        ('json.validate({["$ref"] = "http://x/s.json"}, 1)', "unsupported $ref 'http://x/s.json'"),
        ('json.validate("{bad", 1)', "schema compilation failed: schema is not valid JSON"),
        ("json.validate(42, 1)", "json.validate: schema must be a table or a JSON string, got number"),
        ("json.validate({}, {f = print})", "json.validate: data.f: a function cannot cross"),
        ("json.validate_string({}, 5)", "json.validate_string: JSON text must be a string, got number"),
    ],
)
def test_validate_errors(project: Project, call: str, message: str) -> None:
    out = js(project, f"local ok, err = {call}; return {{ok, err:kind(), err:message()}}")
    assert out[0] is False and out[1] == "Invalid"
    assert message in out[2]


# ---------------------------------------------------------------------------------------
# uuid
# ---------------------------------------------------------------------------------------
def uu(project: Project, body: str, *args: Any) -> Any:
    return lua(project, 'local uuid = require("uuid")\n' + body, *args, modules=["uuid"])


def test_uuid_generators(project: Project) -> None:
    v1, v4, v7, errs = uu(project, """
        local a, e1 = uuid.v1(); local b, e2 = uuid.v4(); local c, e3 = uuid.v7()
        return {a, b, c, {e1 == nil, e2 == nil, e3 == nil}}
    """)
    assert errs == [True, True, True]
    for value, version in ((v1, "1"), (v4, "4"), (v7, "7")):
        m = UUID_RE.match(value)
        assert m and m.group(1) == version, value
    assert abs((py_uuid.UUID(v7).int >> 80) / 1000 - time.time()) < 10


def test_uuid_v7_is_strictly_increasing(project: Project) -> None:
    ids = uu(project, "local out = {} ; for i = 1, 500 do out[i] = uuid.v7() end ; return out")
    assert ids == sorted(ids) and len(set(ids)) == 500


def test_uuid_v4_is_unique(project: Project) -> None:
    ids = uu(project, "local out = {} ; for i = 1, 200 do out[i] = uuid.v4() end ; return out")
    assert len(set(ids)) == 200


def test_uuid_name_based_match_rfc(project: Project) -> None:
    out = uu(project, """
        local ns = ...
        return {uuid.v3(ns, "x"), uuid.v5(ns, "https://example.com/resource"), uuid.v5(ns, "https://example.com/resource"),
                uuid.v5(string.upper(ns), "\\0\\255")}
    """, NS_URL)
    ns = py_uuid.UUID(NS_URL)
    assert out[0] == str(py_uuid.uuid3(ns, "x"))
    assert out[1] == out[2] == str(py_uuid.uuid5(ns, "https://example.com/resource"))
    digest = hashlib.sha1(ns.bytes + b"\0\xff").digest()
    assert out[3] == str(py_uuid.UUID(bytes=digest[:16], version=5))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('uuid.v3(nil, "x")', "uuid.v3: namespace and name must be strings, got nil and string"),
        ('uuid.v5("ns", 5)', "uuid.v5: namespace and name must be strings, got string and number"),
        ('uuid.v5("not-a-uuid", "x")', 'uuid.v5: invalid namespace UUID "not-a-uuid"'),
        ("uuid.version(12)", "uuid.version: input must be a string, got number"),
        ('uuid.version("zzz")', 'uuid.version: invalid UUID format: "zzz"'),
        ('uuid.variant("")', 'uuid.variant: invalid UUID format: ""'),
        ("uuid.parse({})", "uuid.parse: input must be a string, got table"),
        ('uuid.parse("6ba7b811-9dad-11d1-80b4_00c04fd430c8")',
         'uuid.parse: invalid UUID format: "6ba7b811-9dad-11d1-80b4_00c04fd430c8"'),
        ("uuid.format(nil)", "uuid.format: input must be a string, got nil"),
        ('uuid.format("x", "simple")', 'uuid.format: invalid UUID format: "x"'),
        (f'uuid.format("{NS_URL}", "hex")', 'uuid.format: unsupported format "hex" (use standard, simple or urn)'),
    ],
)
def test_uuid_errors(project: Project, call: str, message: str) -> None:
    err = lua_error(project, f'local uuid = require("uuid")\nreturn {call}', modules=["uuid"])
    assert (err.kind, err.message, err.retryable) == ("Invalid", message, False)


def test_uuid_validate_forms(project: Project) -> None:
    simple = NS_URL.replace("-", "")
    out = uu(project, """
        local inputs = {...}
        local out = {}
        for i = 1, #inputs do out[i] = uuid.validate(inputs[i]) end
        out[#out + 1] = uuid.validate(nil)
        out[#out + 1] = uuid.validate(12)
        return out
    """, NS_URL, NS_URL.upper(), "{" + NS_URL + "}", "urn:uuid:" + NS_URL, "URN:UUID:" + NS_URL, simple,
        NS_URL[:-1], NS_URL + "0", "(" + NS_URL + ")", "g" + NS_URL[1:], "urn:uuix:" + NS_URL, "6ba7b811-9dad11d1-80b4-00c04fd430c8-")
    assert out == [True] * 6 + [False] * 6 + [False, False]


def test_uuid_version_variant_parse(project: Project) -> None:
    v1 = str(py_uuid.uuid1(node=0x0123456789AB))
    out = uu(project, """
        local ns, v1 = ...
        return {uuid.version(ns), uuid.variant(ns), uuid.parse(ns), uuid.parse(v1),
                uuid.variant("00000000-0000-0000-0000-000000000000"),
                uuid.variant("00000000-0000-0000-c000-000000000000"),
                uuid.variant("00000000-0000-0000-e000-000000000000"),
                uuid.version("{" .. uuid.v4() .. "}"),
                uuid.parse(uuid.v7())}
    """, NS_URL, v1)
    assert out[0] == 1 and out[1] == "RFC4122"
    assert out[2]["version"] == 1 and out[2]["node"] == "00c04fd430c8"
    assert out[2]["timestamp"] == 886630433  # 1998-02-04, the RFC 4122 namespace ids
    assert out[3]["node"] == "0123456789ab" and abs(out[3]["timestamp"] - time.time()) < 10
    assert out[4:7] == ["NCS", "Microsoft", "Future"]
    assert out[7] == 4
    assert out[8]["version"] == 7 and abs(out[8]["timestamp"] - time.time()) < 10 and "node" not in out[8]


def test_uuid_parse_v4_has_no_timestamp(project: Project) -> None:
    out = uu(project, "return uuid.parse(uuid.v4())")
    assert out == {"version": 4, "variant": "RFC4122"}


def test_uuid_format(project: Project) -> None:
    out = uu(project, """
        local id = ...
        return {uuid.format(id), uuid.format(id, "standard"), uuid.format(id, "simple"), uuid.format(id, "urn"),
                uuid.format("{" .. string.upper(id) .. "}", "simple"), uuid.format(id, 5)}
    """, NS_URL)
    simple = NS_URL.replace("-", "")
    assert out == [NS_URL, NS_URL, simple, "urn:uuid:" + NS_URL, simple, NS_URL]


def test_random_ids_go_through_commands(project: Project) -> None:
    """A durable host replays v1/v4/v7 and random bytes by answering the commands."""
    project.function("t", """
        local uuid = require("uuid")
        local crypto = require("crypto")
        return { main = function()
            return {uuid.v1(), uuid.v4(), uuid.v7(), crypto.random.uuid(), crypto.random.bytes(3),
                    crypto.random.string(3, "xyz")}
        end }
    """, modules=["uuid", "crypto"])
    runtime = project.runtime()
    runtime.kernel.dispatcher.update({
        "uuid.v1": lambda task: (b"one",),
        "uuid.v4": lambda task: (b"four",),
        "uuid.v7": lambda task: (b"seven",),
        "crypto.random_bytes": lambda task, n: (bytes([0, 1, 2, 3, 4][:n]),),
    })
    out = asyncio.run(runtime.call("app:t"))
    assert out == ["one", "four", "seven", "four", "\x00\x01\x02", "xyz"]


# ---------------------------------------------------------------------------------------
# base64
# ---------------------------------------------------------------------------------------
def b64(project: Project, body: str, *args: Any) -> Any:
    return lua(project, 'local base64 = require("base64")\n' + body, *args, modules=["base64"])


def test_base64_encode_decode(project: Project) -> None:
    out = b64(project, """
        local enc, err = base64.encode("Hello, World!")
        return {enc, err == nil, base64.decode("SGVsbG8sIFdvcmxkIQ=="), base64.encode(""), base64.decode(""),
                base64.decode("SGVs\\nbG8=\\r\\n"), base64.encode("a"), base64.encode("ab"), base64.decode("QR==")}
    """)
    assert out == ["SGVsbG8sIFdvcmxkIQ==", True, "Hello, World!", "", "", "Hello", "YQ==", "YWI=", "A"]


def test_base64_binary_round_trip(project: Project) -> None:
    out = b64(project, """
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        local data = table.concat(all):rep(5)
        local enc = base64.encode(data)
        local dec = base64.decode(enc)
        return {enc, dec == data, #dec}
    """)
    data = bytes(range(256)) * 5
    assert out == [py_base64.b64encode(data).decode(), True, 1280]


def test_base64_binary_through_python(project: Project) -> None:
    data = bytes(range(255, -1, -1))
    out = b64(project, "return base64.decode(...)", py_base64.b64encode(data).decode())
    assert out == data


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("base64.encode(nil)", "base64.encode: string expected, got nil"),
        ("base64.encode({})", "base64.encode: string expected, got table"),
        ("base64.decode(42)", "base64.decode: string expected, got number"),
        ('base64.decode("SGVsb*8=")', "base64.decode: invalid base64 data: illegal character '*' at byte 5"),
        ('base64.decode("SGVs bG8=")', "illegal character ' ' at byte 4"),
        ('base64.decode("SGVsbG8-")', "illegal character '-' at byte 7"),
        ('base64.decode("SGVsbG8")', "length 7 is not a multiple of 4 (missing or extra padding)"),
        ('base64.decode("SG=sbG8=")', "misplaced padding '=' at byte 2"),
        ('base64.decode("S===")', "misplaced padding '=' at byte 1"),
        ('base64.decode("\\255AAA")', "illegal character 0xff at byte 0"),
    ],
)
def test_base64_errors(project: Project, call: str, message: str) -> None:
    err = lua_error(project, f'local base64 = require("base64")\nreturn {call}', modules=["base64"])
    assert err.kind == "Invalid" and err.retryable is False
    assert message in err.message


# ---------------------------------------------------------------------------------------
# crypto
# ---------------------------------------------------------------------------------------
def cr(project: Project, body: str, *args: Any) -> Any:
    return lua(project, 'local crypto = require("crypto")\n' + body, *args, modules=["crypto"])


def cr_error(project: Project, body: str, *args: Any) -> WippyError:
    return lua_error(project, 'local crypto = require("crypto")\n' + body, *args, modules=["crypto"])


def test_random_bytes_and_string(project: Project) -> None:
    out = cr(project, """
        local b, err = crypto.random.bytes(32)
        local s1 = crypto.random.string(64)
        local s2 = crypto.random.string(40, "0123456789abcdef")
        return {#b, err == nil, b ~= crypto.random.bytes(32), s1, s2, crypto.random.bytes(2.0) and true,
                crypto.random.uuid(), #crypto.random.bytes(1024 * 1024)}
    """)
    n, ok, differ, s1, s2, float_ok, rid, big = out
    assert (n, ok, differ, float_ok, big) == (32, True, True, True, 1024 * 1024)
    assert re.fullmatch(r"[A-Za-z0-9]{64}", s1)
    assert re.fullmatch(r"[0-9a-f]{40}", s2)
    assert UUID_RE.match(rid).group(1) == "4"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("crypto.random.bytes(0)", "crypto.random.bytes: length must be a positive integer, got 0"),
        ("crypto.random.bytes(-1)", "length must be a positive integer, got -1"),
        ("crypto.random.bytes(1.5)", "length must be a positive integer, got 1.5"),
        ('crypto.random.bytes("8")', "length must be a positive integer, got 8"),
        ("crypto.random.bytes(1024 * 1024 + 1)", "length 1048577 exceeds the maximum of 1048576 bytes (1 MiB)"),
        ("crypto.random.string(nil)", "crypto.random.string: length must be a positive integer, got nil"),
        ('crypto.random.string(4, "")', "crypto.random.string: charset cannot be empty"),
        ("crypto.random.string(4, 7)", "crypto.random.string: charset must be a string, got number"),
    ],
)
def test_random_errors(project: Project, call: str, message: str) -> None:
    err = cr_error(project, f"return {call}")
    assert err.kind == "Invalid" and message in err.message


def test_hmac_known_vectors(project: Project) -> None:
    # RFC 4231 test case 2
    out = cr(project, """
        local h, err = crypto.hmac.sha256("Jefe", "what do ya want for nothing?")
        return {h, err == nil, crypto.hmac.sha512("Jefe", "what do ya want for nothing?"),
                crypto.hmac.sha256("k", "\\0\\255")}
    """)
    assert out[0] == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert out[1] is True
    assert out[2] == (
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd"
        "caeab1a34d4a6b4b636e070a38bce737"
    )
    assert out[3] == hmac.new(b"k", b"\0\xff", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('crypto.hmac.sha256("", "data")', "crypto.hmac.sha256: key cannot be empty"),
        ('crypto.hmac.sha512(nil, "data")', "crypto.hmac.sha512: key must be a string, got nil"),
        ('crypto.hmac.sha256("k", {})', "crypto.hmac.sha256: data must be a string, got table"),
    ],
)
def test_hmac_errors(project: Project, call: str, message: str) -> None:
    err = cr_error(project, f"return {call}")
    assert (err.kind, err.message) == ("Invalid", message)


def test_pbkdf2(project: Project) -> None:
    out = cr(project, """
        return {crypto.pbkdf2("password", "salt", 1000, 32), crypto.pbkdf2("password", "salt", 1000, 64, "sha512"),
                crypto.pbkdf2("pw", "NaCl", 2.0, 20)}
    """)
    assert out[0] == hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1000, 32)
    assert out[1] == hashlib.pbkdf2_hmac("sha512", b"password", b"salt", 1000, 64)
    assert out[2] == hashlib.pbkdf2_hmac("sha256", b"pw", b"NaCl", 2, 20)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('crypto.pbkdf2("", "s", 1, 1)', "crypto.pbkdf2: password must be a non-empty string"),
        ('crypto.pbkdf2("p", "", 1, 1)', "crypto.pbkdf2: salt must be a non-empty string"),
        ('crypto.pbkdf2("p", "s", 0, 1)', "crypto.pbkdf2: iterations must be a positive integer, got 0"),
        ('crypto.pbkdf2("p", "s", 10000001, 1)', "crypto.pbkdf2: iterations 10000001 exceeds the maximum (10000000)"),
        ('crypto.pbkdf2("p", "s", 1, 0)', "crypto.pbkdf2: key length must be a positive integer, got 0"),
        ('crypto.pbkdf2("p", "s", 1, 8, "md5")', "crypto.pbkdf2: unsupported hash function md5 (use sha256 or sha512)"),
    ],
)
def test_pbkdf2_errors(project: Project, call: str, message: str) -> None:
    err = cr_error(project, f"return {call}")
    assert (err.kind, err.message) == ("Invalid", message)


def test_constant_time_compare(project: Project) -> None:
    out = cr(project, """
        local ok, err = pcall(crypto.constant_time_compare, "a", nil)
        return {crypto.constant_time_compare("abc", "abc"), crypto.constant_time_compare("abc", "abd"),
                crypto.constant_time_compare("abc", "abcd"), crypto.constant_time_compare("", ""),
                ok, err:kind(), err:message()}
    """)
    assert out == [
        True, False, False, True, False, "Invalid",
        "crypto.constant_time_compare: both arguments must be strings, got string and nil",
    ]


def test_jwt_round_trip_each_algorithm(project: Project) -> None:
    out = cr(project, """
        local out = {}
        for _, alg in ipairs({"HS256", "HS384", "HS512"}) do
            local token, err = crypto.jwt.encode({sub = "u1", n = 5, exp = os.time() + 60, _header = {kid = "k1"}}, "secret", alg)
            assert(err == nil, tostring(err))
            local claims, verr = crypto.jwt.verify(token, "secret", alg)
            assert(verr == nil, tostring(verr))
            out[#out + 1] = {token, claims}
        end
        return out
    """)
    for (token, claims), (alg, digest) in zip(
        out, (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)), strict=True
    ):
        head, body, sig = token.split(".")
        assert py_json.loads(py_base64.urlsafe_b64decode(head + "==")) == {"alg": alg, "kid": "k1", "typ": "JWT"}
        assert claims["sub"] == "u1" and claims["n"] == 5 and "_header" not in claims
        expected = hmac.new(b"secret", f"{head}.{body}".encode(), digest).digest()
        assert py_base64.urlsafe_b64decode(sig + "==") == expected


def test_jwt_verify_known_token(project: Project) -> None:
    token = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    claims, kind, message = cr(project, """
        local token = ...
        local claims = crypto.jwt.verify(token, "your-256-bit-secret", "HS256", false)
        local none, err = crypto.jwt.verify(token, "your-256-bit-secret")
        return {claims, err:kind(), err:message()}
    """, token)
    assert claims == {"sub": "1234567890", "name": "John Doe", "iat": 1516239022}
    assert (kind, message) == ("Internal", "crypto.jwt.verify: token is missing required claim: exp")


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        ('local t = crypto.jwt.encode({exp = os.time() + 60}, "a"); return crypto.jwt.verify(t, "b")',
         "Internal", "crypto.jwt.verify: token signature is invalid"),
        ('local t = crypto.jwt.encode({exp = os.time() + 60}, "a", "HS512"); return crypto.jwt.verify(t, "a")',
         "Internal", "crypto.jwt.verify: token signing method 'HS512' is not the expected 'HS256'"),
        ('local t = crypto.jwt.encode({exp = os.time() - 1}, "a"); return crypto.jwt.verify(t, "a")',
         "Internal", "crypto.jwt.verify: token has invalid claims: token is expired"),
        ('local t = crypto.jwt.encode({exp = os.time() + 60, nbf = os.time() + 30}, "a"); return crypto.jwt.verify(t, "a")',
         "Internal", "crypto.jwt.verify: token has invalid claims: token is not valid yet"),
        ('local t = crypto.jwt.encode({exp = "soon"}, "a"); return crypto.jwt.verify(t, "a")',
         "Internal", "crypto.jwt.verify: token has invalid claims: exp must be a number"),
        ('return crypto.jwt.verify("a.b", "k")', "Internal", "token is malformed: it must have 3 dot-separated segments"),
        ('return crypto.jwt.verify("a.b.c", "k")', "Internal", "crypto.jwt.verify: token is malformed"),
        ('return crypto.jwt.verify(nil, "k")', "Invalid", "crypto.jwt.verify: token must be a string, got nil"),
        ('return crypto.jwt.verify("a.b.c", "")', "Invalid", "crypto.jwt.verify: key cannot be empty"),
        ('return crypto.jwt.verify("a.b.c", "k", "RS256")', "Invalid", "RS256 is not supported by this runtime"),
        ('return crypto.jwt.encode({}, "k", "none")', "Invalid", "crypto.jwt.encode: unsupported algorithm none (use HS256, HS384 or HS512)"),
        ('return crypto.jwt.encode("x", "k")', "Invalid", "crypto.jwt.encode: payload must be a table, got string"),
        ('return crypto.jwt.encode({1, 2}, "k")', "Invalid", "crypto.jwt.encode: payload must be a table of claims"),
        ('return crypto.jwt.encode({f = print}, "k")', "Invalid", "crypto.jwt.encode: payload.f: a function cannot cross"),
        ('return crypto.jwt.encode({}, "")', "Invalid", "crypto.jwt.encode: key cannot be empty"),
        ('return crypto.jwt.encode({x = 0/0}, "k")', "Invalid", "crypto.jwt.encode: payload cannot be encoded as JSON"),
    ],
)
def test_jwt_errors(project: Project, body: str, kind: str, message: str) -> None:
    err = cr_error(project, body)
    assert err.kind == kind
    assert message in err.message


def test_jwt_expiry_not_required(project: Project) -> None:
    out = cr(project, """
        local t = crypto.jwt.encode({sub = "x", nbf = os.time() - 5}, "k")
        return crypto.jwt.verify(t, "k", "HS256", false)
    """)
    assert out["sub"] == "x"


def test_jwt_clock_is_a_command(project: Project) -> None:
    project.function("t", """
        local crypto = require("crypto")
        return { main = function()
            local t = crypto.jwt.encode({exp = 1000}, "k")
            return crypto.jwt.verify(t, "k")
        end }
    """, modules=["crypto"])
    runtime = project.runtime()
    runtime.kernel.dispatcher.update({"crypto.now": lambda task: (999.5,)})
    assert asyncio.run(runtime.call("app:t")) == {"exp": 1000}


@pytest.mark.parametrize("cipher,key_len", [("aes", 16), ("aes", 24), ("aes", 32), ("chacha20", 32)])
def test_encryption_round_trip_and_layout(project: Project, cipher: str, key_len: int) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

    key = bytes(range(key_len))
    sealed, again, plain, with_aad, plain_aad = cr(project, f"""
        local key = ...
        local a = crypto.encrypt.{cipher}("attack at dawn", key)
        local b = crypto.encrypt.{cipher}("attack at dawn", key)
        local c = crypto.encrypt.{cipher}("with aad", key, "header")
        return {{a, b, crypto.decrypt.{cipher}(a, key), c, crypto.decrypt.{cipher}(c, key, "header")}}
    """, key)
    # nonce (12) || ciphertext || tag (16), a fresh nonce each time
    assert len(sealed) == 12 + len("attack at dawn") + 16 and sealed[:12] != again[:12]
    aead = AESGCM(key) if cipher == "aes" else ChaCha20Poly1305(key)
    assert aead.decrypt(sealed[:12], sealed[12:], None) == b"attack at dawn"  # the standard construction
    assert plain == "attack at dawn" and plain_aad == "with aad"
    assert aead.decrypt(with_aad[:12], with_aad[12:], b"header") == b"with aad"


@pytest.mark.parametrize("body,kind,text", [
    ('crypto.encrypt.aes("x", "short")', "Invalid", "key must be 16, 24, or 32 bytes"),
    ('crypto.decrypt.aes("x", string.rep("k", 15))', "Invalid", "key must be 16, 24, or 32 bytes"),
    ('crypto.encrypt.chacha20("x", string.rep("k", 16))', "Invalid", "key must be 32 bytes"),
    ('crypto.encrypt.aes(nil, string.rep("k", 16))', "Invalid", "data must be a string"),
    ('crypto.decrypt.chacha20("short", string.rep("k", 32))', "Invalid", "encrypted data too short"),
    ('crypto.decrypt.aes(crypto.encrypt.aes("x", string.rep("k", 16)), string.rep("j", 16))', "Internal",
     "message authentication failed"),
    ('crypto.decrypt.aes(crypto.encrypt.aes("x", string.rep("k", 16), "a"), string.rep("k", 16), "b")',
     "Internal", "message authentication failed"),
])
def test_encryption_errors(project: Project, body: str, kind: str, text: str) -> None:
    err = cr_error(project, f"return {body}")
    assert err.kind == kind and err.retryable is False
    assert text in err.message


# ---------------------------------------------------------------------------------------
# logger
# ---------------------------------------------------------------------------------------
def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("wippy.lua")]


def test_logger_levels_and_fields(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wippy.lua")
    lua(project, """
        local logger = require("logger")
        logger:debug("d", {a = 1})
        logger:info("user logged in", {user = "bob", roles = {"admin", "dev"}, ok = true})
        logger:warn("careful")
        logger:error("failed", {error = errors.new({kind = errors.NOT_FOUND, message = "no such user"})})
        logger.info("dot call works", {n = 2.5})
    """, modules=["logger"])
    recs = records(caplog)
    assert [(r.name, r.levelno, r.lua_message) for r in recs] == [
        ("wippy.lua", logging.DEBUG, "d"),
        ("wippy.lua", logging.INFO, "user logged in"),
        ("wippy.lua", logging.WARNING, "careful"),
        ("wippy.lua", logging.ERROR, "failed"),
        ("wippy.lua", logging.INFO, "dot call works"),
    ]
    assert recs[1].fields == {"ok": True, "roles": ["admin", "dev"], "user": "bob"}
    assert recs[1].getMessage() == 'user logged in ok=true roles=["admin","dev"] user=bob'
    assert recs[2].fields == {}
    assert recs[3].fields == {"error": "NotFound: no such user"}
    assert recs[4].fields == {"n": 2.5}


def test_logger_with_and_named(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="wippy.lua")
    lua(project, """
        local logger = require("logger")
        local req = logger:with({request_id = "r1", user = "anon"})
        local auth = req:named("auth")
        auth:info("login", {user = "bob"})
        auth:named("db"):with({table = "users"}):warn("slow query", {ms = 120})
        req:info("done")
        logger:info("root untouched")
    """, modules=["logger"])
    recs = records(caplog)
    assert [(r.name, r.fields) for r in recs] == [
        ("wippy.lua.auth", {"request_id": "r1", "user": "bob"}),
        ("wippy.lua.auth.db", {"ms": 120, "request_id": "r1", "table": "users", "user": "anon"}),
        ("wippy.lua", {"request_id": "r1", "user": "anon"}),
        ("wippy.lua", {}),
    ]


def test_logger_respects_level(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="wippy.lua")
    lua(project, """
        local logger = require("logger")
        logger:debug("hidden") ; logger:info("hidden") ; logger:warn("shown")
    """, modules=["logger"])
    assert [r.lua_message for r in records(caplog)] == ["shown"]


def test_logger_never_fails_on_odd_field_values(project: Project, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wippy.lua")
    lua(project, """
        local logger = require("logger")
        logger:info(42, {fn = print, co = coroutine.create(function() end), bin = "\\255"})
    """, modules=["logger"])
    (rec,) = records(caplog)
    assert rec.lua_message == "42"
    # lupa hands coroutines to Python as coroutine *functions*, so both read "<function>".
    assert rec.fields == {"bin": b"\xff", "co": "<function>", "fn": "<function>"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('logger:named("")', "logger:named: name cannot be empty"),
        ("logger:named(5)", "logger:named: name must be a string, got number"),
        ('logger:with("x")', "logger:with: fields must be a table, got string"),
        ("logger:info({})", "logger:info: message must be a string, got table"),
        ('logger:error("m", "f")', "logger:error: fields must be a table, got string"),
    ],
)
def test_logger_argument_errors(project: Project, call: str, message: str) -> None:
    err = lua_error(project, f'local logger = require("logger")\n{call}', modules=["logger"])
    assert (err.kind, err.message) == ("Invalid", message)
