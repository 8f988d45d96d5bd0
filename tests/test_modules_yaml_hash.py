"""yaml and hash modules: every function, options and error paths."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
import yaml as pyyaml

from tests.conftest import Project, run_lua
from wippy.lua.modules.hash import fnv1_32, fnv1_64


def y(project: Project, body: str) -> Any:
    return run_lua(project, 'local yaml = require("yaml")\n' + body, modules=["yaml"])


def h(project: Project, body: str) -> Any:
    return run_lua(project, 'local hash = require("hash")\n' + body, modules=["hash"])


# --------------------------------------------------------------------------------------
# yaml.decode
# --------------------------------------------------------------------------------------
def test_decode_values_of_every_type(project: Project) -> None:
    got = y(project, r'''
        local v = yaml.decode("name: app\ncount: 42\nratio: 3.5\non: true\nnone: ~\nwhen: 2024-01-02\n"
          .. "list:\n  - a\n  - 2\nnested:\n  deep:\n    k: v\n")
        return {v = v, count_type = math.type(v.count), ratio_type = math.type(v.ratio), none = v.none == nil}
    ''')
    assert got["v"] == {"name": "app", "count": 42, "ratio": 3.5, "on": True, "when": "2024-01-02",
                        "list": ["a", 2], "nested": {"deep": {"k": "v"}}}
    assert got["count_type"] == "integer" and got["ratio_type"] == "float" and got["none"] is True


@pytest.mark.parametrize(("text", "expected"), [("- 1\n- two\n", [1, "two"]), ("just text", "just text"),
                                                ("12", 12), ("true", True), ("[1, [2, 3]]", [1, [2, 3]])])
def test_decode_any_top_level_value(project: Project, text: str, expected: Any) -> None:
    assert y(project, f"return yaml.decode({text!r})") == expected


@pytest.mark.parametrize(
    ("arg", "kind", "message"),
    [("123", "Invalid", "string expected, got number"), ("nil", "Invalid", "string expected, got nil"),
     ('""', "Invalid", "input cannot be empty"), ('":\\n  :\\n  invalid"', "Internal", "decode failed"),
     ('"a: [1, 2"', "Internal", "decode failed")],
)
def test_decode_errors_are_returned(project: Project, arg: str, kind: str, message: str) -> None:
    got = y(project, f"local v, err = yaml.decode({arg})\nreturn {{v = v, kind = err:kind(), msg = err:message(), "
                     "retryable = err:retryable()}")
    assert got["kind"] == kind and message in got["msg"] and got["retryable"] is False and "v" not in got


# --------------------------------------------------------------------------------------
# yaml.encode
# --------------------------------------------------------------------------------------
def test_encode_sorts_keys_and_indents_four_spaces(project: Project) -> None:
    text = y(project, 'return yaml.encode({zeta = 1, alpha = {b = {1, 2}, a = "x"}, mid = true})')
    assert text == "alpha:\n    a: x\n    b:\n        - 1\n        - 2\nmid: true\nzeta: 1\n"


def test_encode_with_options_indents_two_spaces(project: Project) -> None:
    text = y(project, 'return yaml.encode({b = {x = 1}, a = {1}}, {sort_unordered = true})')
    assert text == "a:\n  - 1\nb:\n  x: 1\n"


def test_field_order_applies_at_every_level(project: Project) -> None:
    text = y(project, '''return yaml.encode({zebra = 1, alpha = 2, kind = "demo", name = "test",
                                            child = {zebra = 3, name = "inner", b = 4}},
                                           {field_order = {"name", "kind", 7}, sort_unordered = true})''')
    assert text == ("name: test\nkind: demo\nalpha: 2\nchild:\n  name: inner\n  b: 4\n  zebra: 3\nzebra: 1\n")


def test_encode_lists_of_maps_and_empty_tables(project: Project) -> None:
    text = y(project, 'return yaml.encode({items = {{id = 1, tags = {"a"}}, {id = 2}}, none = {}})')
    assert text == "items:\n    - id: 1\n      tags:\n          - a\n    - id: 2\nnone: {}\n"
    assert pyyaml.safe_load(text) == {"items": [{"id": 1, "tags": ["a"]}, {"id": 2}], "none": {}}


def test_strings_that_look_like_other_types_stay_strings(project: Project) -> None:
    assert y(project, 'return yaml.decode(yaml.encode({a = "true", b = "12", c = "null", d = ""}))') == \
        {"a": "true", "b": "12", "c": "null", "d": ""}


def test_roundtrip(project: Project) -> None:
    value = y(project, """
        local v = {name = "x", list = {1, 2, 3, 4, 5}, nested = {a = {b = {c = "deep"}}}, f = 3.14, t = false}
        return yaml.decode(yaml.encode(v))
    """)
    assert value == {"name": "x", "list": [1, 2, 3, 4, 5], "nested": {"a": {"b": {"c": "deep"}}}, "f": 3.14,
                     "t": False}


@pytest.mark.parametrize(("arg", "message"), [("123", "table expected, got number"),
                                              ('"not a table"', "table expected, got string"),
                                              ("nil", "table expected, got nil"),
                                              ("{f = function() end}", "cannot cross")])
def test_encode_errors_are_returned_invalid(project: Project, arg: str, message: str) -> None:
    got = y(project, f"local v, err = yaml.encode({arg})\nreturn {{v = v, kind = err:kind(), msg = err:message()}}")
    assert got["kind"] == "Invalid" and message in got["msg"] and "v" not in got


# --------------------------------------------------------------------------------------
# hash
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "sha512"])
@pytest.mark.parametrize(("lua_text", "data"), [('""', b""), ('"hello"', b"hello"), ('"\\0\\255 binary"', b"\0\xff binary")])
def test_digests_hex_and_raw(project: Project, algo: str, lua_text: str, data: bytes) -> None:
    got = h(project, f"local raw = hash.{algo}({lua_text}, true)\n"
                     f"return {{hash.{algo}({lua_text}), (raw:gsub('.', function(c) return string.format('%02x', c:byte()) end))}}")
    assert got == [hashlib.new(algo, data).hexdigest(), hashlib.new(algo, data).hexdigest()]


def test_known_vectors(project: Project) -> None:
    assert h(project, 'return {hash.md5("hello"), hash.sha1("hello"), hash.sha256("hello"), #hash.sha512("x", true)}') \
        == ["5d41402abc4b2a76b9719d911017c592", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 64]


@pytest.mark.parametrize("algo", ["md5", "sha1", "sha256", "sha512"])
def test_hmac(project: Project, algo: str) -> None:
    got = h(project, f'return {{hash.hmac_{algo}("message", "secret"), #hash.hmac_{algo}("message", "secret", true),'
                     f' hash.hmac_{algo}("message", "other")}}')
    assert got[0] == hmac.new(b"secret", b"message", algo).hexdigest()
    assert got[1] == hashlib.new(algo).digest_size and got[2] != got[0]


@pytest.mark.parametrize(("data", "fnv32", "fnv64"), [(b"", 0x811C9DC5, 0xCBF29CE484222325),
                                                      (b"a", 0x050C5D7E, 0xAF63BD4C8601B7BE),
                                                      (b"foobar", 0x31F0B262, 0x340D8765A4DDA9C2)])
def test_fnv1_vectors(data: bytes, fnv32: int, fnv64: int) -> None:
    assert fnv1_32(data) == fnv32
    assert fnv1_64(data) % (1 << 64) == fnv64


def test_fnv_in_lua(project: Project) -> None:
    got = h(project, 'return {hash.fnv32("a"), hash.fnv64("a"), math.type(hash.fnv64("a")), hash.fnv32("b")}')
    assert got[0] == 0x050C5D7E and got[1] == 0xAF63BD4C8601B7BE - (1 << 64) and got[2] == "integer"
    assert got[3] != got[0]


@pytest.mark.parametrize(("call", "message"), [
    ("hash.md5(123)", "hash.md5: data must be a string, got number"),
    ("hash.sha512(nil)", "data must be a string, got nil"),
    ('hash.hmac_sha256(1, "k")', "data must be a string"),
    ('hash.hmac_sha1("d", 5)', "secret must be a string, got number"),
    ("hash.fnv32({})", "hash.fnv32: data must be a string, got table"),
    ("hash.fnv64(true)", "hash.fnv64: data must be a string"),
])
def test_non_strings_are_returned_invalid(project: Project, call: str, message: str) -> None:
    got = h(project, f"local v, err = {call}\nreturn {{v = v, kind = err:kind(), msg = err:message()}}")
    assert got["kind"] == "Invalid" and message in got["msg"] and "v" not in got
