"""Channels and select between coroutines of one function call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Project, run_lua
from wippy import WippyError

# `turn()` lets every task that is ready run before the caller goes on: a probe task is
# queued behind them and the caller waits for it. No timers involved.
PRELUDE = """
local function turn()
  local c = channel.new()
  coroutine.spawn(function() c:send(0) end)
  c:receive()
end
"""

Run = Callable[..., Any]


@pytest.fixture
def lua(tmp_path_factory: pytest.TempPathFactory) -> Run:
    def run(body: str, *args: Any) -> Any:
        return run_lua(Project(tmp_path_factory.mktemp("ch")), PRELUDE + body, *args)

    return run


def lua_error(lua: Run, body: str) -> WippyError:
    with pytest.raises(WippyError) as info:
        lua(body)
    return info.value


# Unbuffered -------------------------------------------------------------------------------------------
def test_unbuffered_receive_from_spawned_sender(lua: Run) -> None:
    assert lua('local ch = channel.new(); coroutine.spawn(function() ch:send("hi") end); return {ch:receive()}') == ["hi", True]


def test_unbuffered_send_to_spawned_receiver(lua: Run) -> None:
    body = """
    local ch, out = channel.new(), channel.new(1)
    coroutine.spawn(function() local v, ok = ch:receive(); out:send({v, ok}) end)
    local sent = ch:send({n = 1})
    return {sent, (out:receive())}
    """
    assert lua(body) == [True, [{"n": 1}, True]]


def test_unbuffered_send_blocks_until_received(lua: Run) -> None:
    body = """
    local ch = channel.new()
    local sent = false
    coroutine.spawn(function() ch:send(1); sent = true end)
    turn(); turn()
    local before = sent
    local v = ch:receive()
    turn()
    return {before, v, sent}
    """
    assert lua(body) == [False, 1, True]


def test_unbuffered_receive_blocks_until_sent(lua: Run) -> None:
    body = """
    local ch = channel.new()
    local got = nil
    coroutine.spawn(function() got = ch:receive() end)
    turn(); turn()
    local before = got
    ch:send("x")
    turn()
    return {before == nil, got}
    """
    assert lua(body) == [True, "x"]


def test_values_keep_identity_within_the_function(lua: Run) -> None:
    # Inside one function call, channels pass values as they are (no copy).
    body = """
    local ch = channel.new(1)
    local t = {}
    local f = function() end
    ch:send(t); local same_t = ch:receive() == t
    ch:send(f); local same_f = ch:receive() == f
    return {same_t, same_f}
    """
    assert lua(body) == [True, True]


def test_ping_pong(lua: Run) -> None:
    body = """
    local ping, pong = channel.new(), channel.new()
    coroutine.spawn(function()
      while true do
        local v, ok = ping:receive()
        if not ok then return end
        pong:send(v * 2)
      end
    end)
    local total = 0
    for i = 1, 100 do ping:send(i); total = total + pong:receive() end
    ping:close()
    return total
    """
    assert lua(body) == 2 * sum(range(1, 101))


# Buffered ---------------------------------------------------------------------------------------------
def test_buffered_send_does_not_block_until_full(lua: Run) -> None:
    body = """
    local ch = channel.new(2)
    local progress = 0
    coroutine.spawn(function()
      for i = 1, 3 do ch:send(i); progress = i end
    end)
    turn(); turn()
    local blocked_at = progress
    local a = ch:receive()
    turn()
    local after_one = progress
    return {blocked_at, a, after_one, (ch:receive()), (ch:receive())}
    """
    assert lua(body) == [2, 1, 3, 2, 3]


def test_buffered_without_other_side(lua: Run) -> None:
    body = """
    local ch = channel.new(3)
    for i = 1, 3 do ch:send(i * 10) end
    return {(ch:receive()), (ch:receive()), (ch:receive())}
    """
    assert lua(body) == [10, 20, 30]


def test_producer_consumer_fifo(lua: Run) -> None:
    body = """
    local ch = channel.new(7)
    coroutine.spawn(function()
      for i = 1, 500 do ch:send(i) end
      ch:close()
    end)
    local got, last, ordered = 0, 0, true
    while true do
      local v, ok = ch:receive()
      if not ok then break end
      if v ~= last + 1 then ordered = false end
      last, got = v, got + 1
    end
    return {got, ordered}
    """
    assert lua(body) == [500, True]


def test_many_senders_one_receiver(lua: Run) -> None:
    body = """
    local ch = channel.new()
    for w = 1, 5 do coroutine.spawn(function() for i = 1, 10 do ch:send(w * 100 + i) end end) end
    local seen, n = {}, 0
    for _ = 1, 50 do local v = ch:receive(); if not seen[v] then n = n + 1 end; seen[v] = true end
    return n
    """
    assert lua(body) == 50


@pytest.mark.parametrize("size", ["-1", "1.5", '"3"', "{}"])
def test_bad_size(lua: Run, size: str) -> None:
    err = lua_error(lua, f"return channel.new({size})")
    assert err.kind == "Invalid"
    assert "size" in err.message


def test_methods_need_colon(lua: Run) -> None:
    err = lua_error(lua, "local ch = channel.new(1); ch.send(5)")
    assert err.kind == "Invalid"
    assert "ch:send" in err.message


# Close ------------------------------------------------------------------------------------------------
def test_close_wakes_receivers_with_nil_false(lua: Run) -> None:
    body = """
    local ch, out = channel.new(), channel.new(3)
    for i = 1, 2 do coroutine.spawn(function() out:send({ch:receive()}) end) end
    turn()
    ch:close()
    local a, b = out:receive(), out:receive()
    return {a, b, {ch:receive()}}
    """
    assert lua(body) == [{2: False}, {2: False}, {2: False}]  # {nil, false}


def test_close_keeps_buffered_values(lua: Run) -> None:
    body = """
    local ch = channel.new(2)
    ch:send("a"); ch:send("b")
    ch:close()
    local r = {}
    for i = 1, 3 do local v, ok = ch:receive(); r[i] = {v or "nil", ok} end
    return r
    """
    assert lua(body) == [["a", True], ["b", True], ["nil", False]]


def test_close_errors_pending_senders(lua: Run) -> None:
    body = """
    local ch, out = channel.new(), channel.new(2)
    for i = 1, 2 do
      coroutine.spawn(function()
        local ok, e = pcall(ch.send, ch, i)
        out:send({ok, e:kind(), e:message()})
      end)
    end
    turn()
    ch:close()
    return {(out:receive()), (out:receive())}
    """
    result = lua(body)
    assert result == [[False, "Invalid", "send on closed channel"]] * 2


def test_send_on_closed_channel(lua: Run) -> None:
    err = lua_error(lua, "local ch = channel.new(5); ch:close(); ch:send(1)")
    assert err.kind == "Invalid"
    assert "closed" in err.message


def test_close_twice_is_a_no_op(lua: Run) -> None:
    assert lua("local ch = channel.new(); ch:close(); ch:close(); return {ch:receive()}") == {2: False}


def test_uncaught_send_error_in_spawned_coroutine_fails_the_call(lua: Run) -> None:
    body = """
    local ch = channel.new()
    coroutine.spawn(function() ch:send(1) end)
    turn()
    ch:close()
    turn()
    return "survived"
    """
    err = lua_error(lua, body)
    assert err.kind == "Invalid"
    assert "closed" in err.message


# Select -----------------------------------------------------------------------------------------------
def test_select_default_when_nothing_ready(lua: Run) -> None:
    body = """
    local ch = channel.new()
    local r = channel.select { ch:case_receive(), default = true }
    return {r.default, r.ok, r.channel == nil, r.value == nil}
    """
    assert lua(body) == [True, True, True, True]


def test_select_default_with_ready_case(lua: Run) -> None:
    body = """
    local a, b = channel.new(1), channel.new(1)
    b:send("from b")
    local r = channel.select { a:case_receive(), b:case_receive(), default = true }
    return {r.default == nil, r.channel == b, r.value, r.ok}
    """
    assert lua(body) == [True, True, "from b", True]


def test_select_only_default(lua: Run) -> None:
    assert lua("return channel.select({ default = true }).default") is True


def test_select_blocks_until_a_case_fires(lua: Run) -> None:
    body = """
    local a, b = channel.new(), channel.new()
    coroutine.spawn(function() b:send("late") end)
    local r = channel.select { a:case_receive(), b:case_receive() }
    return {r.channel == b, r.channel == a, r.value, r.ok}
    """
    assert lua(body) == [True, False, "late", True]


def test_select_leaves_other_cases_untouched(lua: Run) -> None:
    # The losing case of a blocked select must not swallow a later value.
    body = """
    local a, b = channel.new(), channel.new()
    coroutine.spawn(function() b:send(1) end)
    local r = channel.select { a:case_receive(), b:case_receive() }
    coroutine.spawn(function() a:send("for a") end)
    return {r.value, (a:receive())}
    """
    assert lua(body) == [1, "for a"]


def test_select_send_case(lua: Run) -> None:
    body = """
    local buffered = channel.new(1)
    local r1 = channel.select { buffered:case_send("v1") }
    local got1 = buffered:receive()
    local unbuffered, out = channel.new(), channel.new(1)
    coroutine.spawn(function() out:send(unbuffered:receive()) end)
    local r2 = channel.select { unbuffered:case_send("v2") }
    local full = channel.new(1)
    full:send("x")
    local r3 = channel.select { full:case_send("y"), default = true }
    return {r1.channel == buffered, r1.value, r1.ok, got1, r2.channel == unbuffered, r2.ok, out:receive(),
            r3.default, (full:receive())}
    """
    assert lua(body) == [True, "v1", True, "v1", True, True, "v2", True, "x"]


def test_select_mixed_send_and_receive(lua: Run) -> None:
    body = """
    local inbox, outbox = channel.new(), channel.new()
    coroutine.spawn(function() outbox:receive() end)
    local r = channel.select { inbox:case_receive(), outbox:case_send("msg") }
    return {r.channel == outbox, r.value}
    """
    assert lua(body) == [True, "msg"]


def test_select_on_closed_channel(lua: Run) -> None:
    body = """
    local ch = channel.new()
    coroutine.spawn(function() ch:close() end)
    local r = channel.select { ch:case_receive() }
    return {r.channel == ch, r.value == nil, r.ok}
    """
    assert lua(body) == [True, True, False]


def test_select_loop_fan_in(lua: Run) -> None:
    body = """
    local a, b, quit = channel.new(), channel.new(), channel.new()
    coroutine.spawn(function() for i = 1, 5 do a:send(i) end end)
    coroutine.spawn(function() for i = 1, 5 do b:send(i * 10) end; quit:close() end)
    local sum, from_a, from_b = 0, 0, 0
    while true do
      local r = channel.select { a:case_receive(), b:case_receive(), quit:case_receive() }
      if r.channel == quit then break end
      if r.channel == a then from_a = from_a + 1 else from_b = from_b + 1 end
      sum = sum + r.value
    end
    for _ = from_a + 1, 5 do sum = sum + a:receive() end  -- what a had not sent yet
    return {sum, from_b}
    """
    assert lua(body) == [165, 5]


@pytest.mark.parametrize(
    "cases",
    [
        "nil",
        '"x"',
        "{ 42 }",
        "{ {} }",
        '{ {_case = "recv", channel = {}} }',
        "{ ch }",
        "{ ch:case_receive(), 'nope' }",
        "{}",
    ],
)
def test_select_bad_case_is_invalid(lua: Run, cases: str) -> None:
    err = lua_error(lua, f"local ch = channel.new(1); return channel.select({cases})")
    assert err.kind == "Invalid"
    assert "channel.select" in err.message


def test_select_bad_case_names_the_case(lua: Run) -> None:
    err = lua_error(lua, "local ch = channel.new(1); return channel.select({ ch:case_receive(), 5 })")
    assert "case #2" in err.message
