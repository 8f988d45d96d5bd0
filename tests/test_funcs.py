"""The `funcs` module: calls, futures, executors, context, timeouts and cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Project
from wippy import WippyError

CALLEES = {
    "add": "return { main = function(a, b) return a + b end }",
    "echo": "return { main = function(...) return ... end }",
    "noop": "return { main = function() end }",
    "fail": """return { main = function()
        return nil, errors.new({message = "nope", kind = errors.CONFLICT, retryable = true, details = {n = 1}})
      end }""",
    "forever": "return { main = function() channel.new():receive() end }",
    "mutate": "return { main = function(t) t.x = 99; t.inner.y = 99; return t end }",
}
WITH_FUNCS = {
    # Prints when it starts and when it finishes `n` scheduler round trips later (an async
    # call waited for is a round trip; a plain funcs.call of a callee that does not block
    # completes inline, without one).
    "slow": """
        local funcs = require("funcs")
        return { main = function(n)
          print("slow started")
          for _ = 1, n do funcs.async("app:noop"):response():receive() end
          print("slow finished")
          return "done"
        end }""",
    "ctxdump": """
        local ctx = require("ctx")
        return { main = function(key)
          local v, err = ctx.get(key)
          local all, all_err = ctx.all()
          return {value = v, err = err and err:kind(), all = all, all_err = all_err}
        end }""",
    # Calls ctxdump itself: context must flow through two levels.
    "relay": """
        local funcs = require("funcs")
        return { main = function(key) return funcs.call("app:ctxdump", key) end }""",
}


class Funcs:
    """A project with the callees above plus one entry `app:t` running ``body``."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.lines: list[str] = []
        for name, source in CALLEES.items():
            project.function(name, source)
        for name, source in WITH_FUNCS.items():
            project.function(name, source, modules=["funcs", "ctx"])

    def runtime(self, body: str) -> Any:
        self.project.function("t", f"local funcs = require('funcs')\nlocal ctx = require('ctx')\n"
                                   f"local function main(...)\n{body}\nend\nreturn {{ main = main }}\n",
                              modules=["funcs", "ctx"])
        return self.project.runtime(output=self.lines.append)

    def run(self, body: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        runtime = self.runtime(body)
        return asyncio.run(runtime.call("app:t", *args, context=context))


@pytest.fixture
def funcs(project: Project) -> Funcs:
    return Funcs(project)


# call ---------------------------------------------------------------------------------------------
def test_call_returns_result(funcs: Funcs) -> None:
    assert funcs.run('return {funcs.call("app:add", 2, 3)}') == [5]


def test_call_passes_all_arguments(funcs: Funcs) -> None:
    assert funcs.run('return funcs.call("app:echo", {1, {a = "b"}, "x", 2.5})') == [1, {"a": "b"}, "x", 2.5]


def test_call_arguments_are_copies(funcs: Funcs) -> None:
    body = """
    local t = {x = 1, inner = {y = 1}}
    local back = funcs.call("app:mutate", t)
    return {t.x, t.inner.y, back.x, back.inner.y, back ~= t}
    """
    assert funcs.run(body) == [1, 1, 99, 99, True]


def test_call_error(funcs: Funcs) -> None:
    body = 'local v, e = funcs.call("app:fail"); return {v == nil, e:kind(), e:message(), e:retryable(), e:details()}'
    assert funcs.run(body) == [True, "Conflict", "nope", True, {"n": 1}]


def test_call_can_be_nested_in_expressions(funcs: Funcs) -> None:
    assert funcs.run('return funcs.call("app:add", funcs.call("app:add", 1, 2), funcs.call("app:add", 3, 4))') == 10


# async and Future ------------------------------------------------------------------------------------
def test_future_states(funcs: Funcs) -> None:
    body = """
    local f, err = funcs.async("app:add", 20, 22)
    assert(err == nil)
    local r0, e0 = f:result()
    local er0, has0 = f:error()
    local before = {f:is_complete(), f:is_canceled(), r0 == nil, e0 == nil, er0 == nil, has0}
    local ch = f:response()
    local payload, ok = ch:receive()
    local r, e = f:result()
    local er, has = f:error()
    return {before = before, same = ch == f:channel(), data = payload:data(), ok = ok,
            after = {f:is_complete(), f:is_canceled(), r:data(), e == nil, er == nil, has},
            meta = getmetatable(payload)}
    """
    got = funcs.run(body)
    assert got["before"] == [False, False, True, True, True, False]
    assert got["same"] is True
    assert got["data"] == 42
    assert got["ok"] is True
    assert got["after"] == [True, False, 42, True, True, False]
    assert got["meta"] == "wippy.payload"


def test_future_result_is_cached(funcs: Funcs) -> None:
    body = """
    local f = funcs.async("app:echo", "v")
    f:response():receive()
    return {f:result():data(), f:result():data()}
    """
    assert funcs.run(body) == ["v", "v"]


def test_future_error(funcs: Funcs) -> None:
    body = """
    local f = funcs.async("app:fail")
    local value, ok = f:channel():receive()
    local r, e = f:result()
    local er, has = f:error()
    return {value:kind(), ok, r == nil, e:kind(), e:retryable(), e:details(),
            er:kind(), er:message(), er:retryable(), has, f:is_complete(), f:is_canceled()}
    """
    assert funcs.run(body) == ["Conflict", True, True, "Conflict", True, {"n": 1},
                               "Internal", "nope", False, True, True, False]


def test_async_bad_target(funcs: Funcs) -> None:
    body = """
    local f1, e1 = funcs.async("nope")
    local f2, e2 = funcs.async("app:missing")
    return {f1 == nil, e1:kind(), f2 == nil, e2:kind()}
    """
    assert funcs.run(body) == [True, "Invalid", True, "NotFound"]


def test_future_methods_need_colon(funcs: Funcs) -> None:
    body = 'local f = funcs.async("app:noop"); local ok, e = pcall(f.result); return {ok, e:kind()}'
    assert funcs.run(body) == [False, "Invalid"]


def test_select_over_future_channels(funcs: Funcs) -> None:
    body = """
    local f1 = funcs.async("app:add", 1, 1)
    local f2 = funcs.async("app:echo", "two")
    local f3 = funcs.async("app:fail")
    local c1, c2, c3 = f1:channel(), f2:channel(), f3:channel()
    local got, order = {}, {}
    for i = 1, 3 do
      local r = channel.select { c1:case_receive(), c2:case_receive(), c3:case_receive() }
      assert(r.ok)
      if r.channel == c1 then got.one = r.value:data(); order[i] = 1
      elseif r.channel == c2 then got.two = r.value:data(); order[i] = 2
      elseif r.channel == c3 then got.three = r.value:kind(); order[i] = 3
      end
    end
    table.sort(order)
    return {got = got, order = order}
    """
    assert funcs.run(body) == {"got": {"one": 2, "two": "two", "three": "Conflict"}, "order": [1, 2, 3]}


def test_many_futures_in_parallel(funcs: Funcs) -> None:
    body = """
    local fs = {}
    for i = 1, 50 do fs[i] = funcs.async("app:add", i, i) end
    local sum = 0
    for i = 1, 50 do sum = sum + fs[i]:response():receive():data() end
    return sum
    """
    assert funcs.run(body) == 2 * sum(range(1, 51))


# cancel ---------------------------------------------------------------------------------------------
CANCEL_BODY = """
local function trip() funcs.async("app:noop"):response():receive() end  -- one scheduler round trip
local f = funcs.async("app:slow", 10)
trip()                          -- slow has started and is mid-way
local canceled, cerr = {CANCEL}
for _ = 1, 40 do trip() end     -- enough for slow to finish if it still ran
local r, e = f:result()
local er, has = f:error()
local v, ok = f:channel():receive()
return {canceled = canceled, cerr = cerr == nil, is_canceled = f:is_canceled(), complete = f:is_complete(),
        result = r and r:data() or e:kind(), error = er and er:kind(), has = has,
        received = ok and (getmetatable(v) == "wippy.payload" and v:data() or v:kind())}
"""


def test_cancel_stops_the_callee(funcs: Funcs) -> None:
    got = funcs.run(CANCEL_BODY.replace("{CANCEL}", "f:cancel()"))
    assert funcs.lines == ["slow started"]  # it never reached "slow finished"
    assert got == {"canceled": True, "cerr": True, "is_canceled": True, "complete": True,
                   "result": "Canceled", "error": "Internal", "has": True, "received": "Canceled"}


def test_without_cancel_the_callee_finishes(funcs: Funcs) -> None:
    # The control for the test above: the same timing lets the callee finish.
    got = funcs.run(CANCEL_BODY.replace("{CANCEL}", "false, nil"))
    assert funcs.lines == ["slow started", "slow finished"]
    assert got == {"canceled": False, "cerr": True, "is_canceled": False, "complete": True,
                   "result": "done", "has": False, "received": "done"}


def test_cancel_after_completion_and_twice(funcs: Funcs) -> None:
    body = """
    local f = funcs.async("app:noop")
    f:response():receive()
    local late = f:cancel()
    local g = funcs.async("app:forever")
    local first, second = g:cancel(), g:cancel()
    return {late, f:is_canceled(), first, second, g:is_canceled()}
    """
    assert funcs.run(body) == [False, False, True, False, True]


def test_caller_ending_cancels_its_callees(funcs: Funcs) -> None:
    runtime = funcs.runtime('funcs.async("app:slow", 10); funcs.async("app:noop"):response():receive(); return "left"')

    async def go() -> list[Any]:
        first = await runtime.call("app:t")
        # Plenty of round trips for an orphaned slow call to finish, were it still running.
        for _ in range(40):
            await runtime.call("app:noop")
        return [first]

    assert asyncio.run(go()) == ["left"]
    assert funcs.lines == ["slow started"]


# Executors -------------------------------------------------------------------------------------------
def test_executor_with_context_is_immutable_and_reusable(funcs: Funcs) -> None:
    body = """
    local base = funcs.new()
    local a = base:with_context({x = "1"})
    local b = a:with_context({y = "2"})
    local c = a:with_context({x = "3"})
    return {
      base = base:call("app:ctxdump", "x"),
      a1 = a:call("app:ctxdump", "x"),
      a2 = a:call("app:ctxdump", "y"),
      b = b:call("app:ctxdump", "x"),
      c = c:call("app:ctxdump", "x"),
      distinct = base ~= a and a ~= b,
    }
    """
    got = funcs.run(body)
    assert got["base"] == {"err": "NotFound", "all": {}}
    assert got["a1"] == {"value": "1", "all": {"x": "1"}}
    assert got["a2"] == {"err": "NotFound", "all": {"x": "1"}}
    assert got["b"] == {"value": "1", "all": {"x": "1", "y": "2"}}
    assert got["c"] == {"value": "3", "all": {"x": "3"}}
    assert got["distinct"] is True


def test_executor_context_is_copied(funcs: Funcs) -> None:
    body = """
    local values = {x = {n = 1}}
    local exec = funcs.new():with_context(values)
    values.x.n = 2
    return exec:call("app:ctxdump", "x").value
    """
    assert funcs.run(body) == {"n": 1}


def test_executor_async(funcs: Funcs) -> None:
    body = """
    local f = funcs.new():with_context({k = "v"}):async("app:ctxdump", "k")
    return f:response():receive():data().value
    """
    assert funcs.run(body) == "v"


def test_context_flows_through_nested_calls(funcs: Funcs) -> None:
    body = 'return funcs.new():with_context({k = {1, 2}}):call("app:relay", "k")'
    assert funcs.run(body) == {"value": [1, 2], "all": {"k": [1, 2]}}


def test_caller_context_reaches_callee_and_merges(funcs: Funcs) -> None:
    body = """
    return {
      plain = funcs.call("app:ctxdump", "user"),
      merged = funcs.new():with_context({extra = true}):call("app:ctxdump", "user"),
      mine = ctx.get("user"),
    }
    """
    got = funcs.run(body, context={"user": "u1"})
    assert got["plain"] == {"value": "u1", "all": {"user": "u1"}}
    assert got["merged"] == {"value": "u1", "all": {"user": "u1", "extra": True}}
    assert got["mine"] == "u1"


def test_ctx_errors(funcs: Funcs) -> None:
    body = """
    local out = {}
    for i, key in ipairs({"missing", "", 42}) do
      local v, e = ctx.get(key)
      out[i] = {v == nil, e:kind(), e:retryable()}
    end
    return out
    """
    assert funcs.run(body) == [[True, "NotFound", False], [True, "Invalid", False], [True, "Invalid", False]]


def test_ctx_all_without_values_is_empty(funcs: Funcs) -> None:
    assert funcs.run('local all, err = ctx.all(); return {type(all), next(all) == nil, err == nil}') == ["table", True, True]


def test_with_context_and_options_reject_non_tables(funcs: Funcs) -> None:
    body = """
    local e1, err1 = funcs.new():with_context("x")
    local e2, err2 = funcs.new():with_options(5)
    return {e1 == nil, err1:kind(), e2 == nil, err2:kind()}
    """
    assert funcs.run(body) == [True, "Invalid", True, "Invalid"]


def test_executor_methods_need_colon(funcs: Funcs) -> None:
    body = 'local ok, e = pcall(funcs.new().call, "app:noop"); return {ok, e:kind()}'
    assert funcs.run(body) == [False, "Invalid"]


def test_with_actor_and_scope_need_security_objects(funcs: Funcs) -> None:
    body = """
    local ok1, err1 = pcall(funcs.new().with_actor, funcs.new(), {})
    local ok2, err2 = pcall(funcs.new().with_scope, funcs.new(), nil)
    return {ok1, err1:kind(), err1:message(), ok2, err2:message()}
    """
    assert funcs.run(body) == [False, "Invalid", "security.Actor expected", False, "scope cannot be nil"]


# Timeouts ---------------------------------------------------------------------------------------------
def test_timeout_option(funcs: Funcs) -> None:
    body = """
    local exec = funcs.new():with_options({timeout = 20})
    local v, e = exec:call("app:forever")
    local ok = exec:call("app:add", 1, 2)   -- the executor stays usable
    return {v == nil, e:kind(), e:message(), ok}
    """
    none, kind, message, ok = funcs.run(body)
    assert (none, kind, ok) == (True, "Timeout", 3)
    assert "app:forever" in message


def test_timeout_keeps_context(funcs: Funcs) -> None:
    body = """
    local exec = funcs.new():with_context({k = 1}):with_options({timeout = 5000})
    return exec:call("app:ctxdump", "k").value
    """
    assert funcs.run(body) == 1


def test_timeout_on_async(funcs: Funcs) -> None:
    body = """
    local f = funcs.new():with_options({timeout = 20}):async("app:forever")
    local v, ok = f:response():receive()
    local r, e = f:result()
    return {v:kind(), ok, e:kind(), f:is_canceled()}
    """
    assert funcs.run(body) == ["Timeout", True, "Timeout", False]


def test_timeout_stops_the_callee(funcs: Funcs) -> None:
    body = """
    local v, e = funcs.new():with_options({timeout = 1}):call("app:slow", 1000000)
    for _ = 1, 20 do funcs.call("app:noop") end
    return e:kind()
    """
    assert funcs.run(body) == "Timeout"
    assert funcs.lines == ["slow started"]


@pytest.mark.parametrize("timeout", ["-1", "0", '"soon"'])
def test_bad_timeout_is_invalid(funcs: Funcs, timeout: str) -> None:
    body = f'local v, e = funcs.new():with_options({{timeout = {timeout}}}):call("app:noop"); return {{v == nil, e:kind()}}'
    assert funcs.run(body) == [True, "Invalid"]


def test_python_timeout(project: Project) -> None:
    project.function("forever", CALLEES["forever"])
    runtime = project.runtime()
    with pytest.raises(WippyError) as info:
        asyncio.run(runtime.call("app:forever", timeout=0.02))
    assert info.value.kind == "Timeout"


# Calls run inside the caller's step ----------------------------------------------------------------
def test_a_callee_that_needs_its_own_actor_gets_one_midway(project: Project) -> None:
    """funcs.call runs the callee inside the caller until its first command; from there it is a
    function call actor of its own (its own PID, context and inbox), and the answer is the same."""
    project.function("ident", """
        return { main = function(tag)
          local before = tag .. ":" .. tostring(process.pid() ~= nil)
          local me = process.pid()
          process.send(me, "self", tag)
          local msg = process.inbox():receive()
          return { before = before, got = msg:payload():data(), same_pid = me == process.pid() }
        end }
    """)
    project.function("caller", """
        local funcs = require("funcs")
        return { main = function()
          local out = {}
          for i = 1, 3 do
            local r, err = funcs.call("app:ident", "t" .. i)
            if err then error(err) end
            out[i] = r
          end
          return { out = out, mine = process.pid() }
        end }
    """, modules=["funcs"])
    result = project.call("app:caller")
    assert [r["got"] for r in result["out"]] == ["t1", "t2", "t3"]
    assert all(r["before"].endswith(":true") and r["same_pid"] for r in result["out"])


def test_errors_and_results_of_calls_that_finish_inline(project: Project) -> None:
    project.function("pair", "return { main = function(a) if a < 0 then return nil, 'negative' end return a * 2 end }")
    project.function("boom", "return { main = function() error('boom') end }")
    body = """
    local a, ea = funcs.call("app:pair", 21)
    local b, eb = funcs.call("app:pair", -1)
    local c, ec = funcs.call("app:boom")
    local d, ed = funcs.call("app:missing")
    return {a, ea == nil, b == nil, eb:message(), c == nil, ec:message():find("boom") ~= nil, d == nil, ed:kind()}
    """
    from tests.conftest import run_lua

    out = run_lua(project, 'local funcs = require("funcs")\n' + body, modules=["funcs"])
    assert out == [42, True, True, "negative", True, True, True, "NotFound"]


def test_deep_inline_nesting_falls_back_to_commands(project: Project) -> None:
    project.function("down", """
        local funcs = require("funcs")
        return { main = function(n) if n == 0 then return 0 end return 1 + funcs.call("app:down", n - 1) end }
    """, modules=["funcs"])
    assert project.call("app:down", 40) == 40


def test_a_step_run_outside_the_run_queue_is_not_cut_by_its_budget(project: Project) -> None:
    """Durable hosts step their workflows themselves (not from the run queue): the run queue's
    work budget must not stop such a step, even right after a busy drain used it up."""
    project.function("busy", """
        return { main = function(n) for i = 1, n do process.pid() end return n end }
    """)

    async def main() -> Any:
        from wippy.actors.functions import FunctionCall

        rt = project.runtime()
        async with rt:
            assert await rt.call("app:busy", 5000) == 5000  # drains that use up their work budget
            kernel = rt.kernel
            done: list[Any] = []
            call = FunctionCall(kernel, "app:busy", b"function", kernel.lua_args([4500]), {},
                                lambda ok, value: done.append((ok, value)))
            left, steps = None, 0
            while not done and steps < 10:  # as a durable host's own loop does
                left = kernel.scheduler.step(call.task, left)
                steps += 1
            return done, steps

    done, steps = asyncio.run(main())
    assert done == [(True, 4500)] and steps <= 3, (done, steps)
