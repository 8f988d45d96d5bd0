"""In-memory handlers of the ``funcs`` commands: calls run as local function actors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.actors.channel import Channel
from wippy.actors.functions import Future, check_target
from wippy.actors.scheduler import PENDING, LuaTask
from wippy.errors import CANCELED, INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel


def _check_future(value: Any) -> None:
    if not isinstance(value, Future):
        raise WippyError(INVALID, "not a future (its handle was replaced?)", retryable=False)


def commands(kernel: Kernel) -> dict[str, Any]:
    scheduler = kernel.scheduler
    vm = kernel.vm
    to_python = vm.to_python
    to_lua = vm.to_lua

    def call_context(task: LuaTask, ctx: Any) -> dict[str, Any]:
        context = task.actor.context
        if ctx is not None:
            context = {**context, **to_python(ctx, "context")}
        return context

    def call_options(opts: Any) -> dict[str, Any] | None:
        return None if opts is None else to_python(opts, "options")

    def call(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any, *,
             adopt: tuple[Any, Any, tuple[Any, ...]] | None = None) -> Any:
        # The callee runs at once: one that does not block answers before this returns,
        # and the caller goes on in the same step (no round trip through the run queue).
        now: list[tuple[Any, Any]] = []
        suspended = False

        def done(ok: bool, value: Any) -> None:
            answer = (value, None) if ok else (None, value)
            if suspended:
                scheduler.resume(task, *answer)
            else:
                now.append(answer)

        try:
            name = check_target(target)
            kernel.functions.start(
                name, args, call_context(task, ctx), call_options(opts), done, owner=task.actor, run_now=True,
                adopt=adopt,
            )
        except WippyError as err:
            return (None, to_lua(err))
        if now:
            return now[0]
        suspended = True
        return PENDING

    def adopt(task: LuaTask, target: Any, thread: Any, op: Any, *args: Any) -> Any:
        """A callee started inline (``rt.call_inline``) issued its first command: it becomes a
        function call actor around its coroutine, which carries that command out; the caller
        then waits for it as for any ``funcs.call``."""
        return call(task, target, None, None, None, adopt=(thread, op, args))

    def inline_call(target: Any) -> Any:
        """Direct call from Lua (``funcs.call`` without context or options): the callee's
        profile when it may run inside the caller's step (``rt.call_inline``), else false.
        Only for callers on the kernel's own dispatcher (a durable workflow records its
        calls), and each counts as a command of the drain (others get their turn)."""
        current = scheduler.current
        if current is None or current.actor.dispatcher.handlers.get(b"funcs.call") is not call:
            return False
        try:
            _, profile = kernel.functions.resolve(check_target(target))
        except WippyError:
            return False  # the command path reports it
        return False if scheduler.used_up() else profile

    vm.rt[b"inline_call"] = inline_call

    def call_async(task: LuaTask, target: Any, ctx: Any, opts: Any, args: Any) -> Any:
        try:
            name = check_target(target)
            future = Future(Channel(scheduler, 1))
            make_payload = vm.make_payload
            future.call = kernel.functions.start(
                name,
                args,
                call_context(task, ctx),
                call_options(opts),
                lambda ok, value: future.settle(ok, value, make_payload),
                owner=task.actor,
            )
        except WippyError as err:
            return (None, to_lua(err))
        return (future, future.channel)

    def future_state(task: LuaTask, future: Future) -> Any:
        _check_future(future)
        return (future.state, future.value)

    def future_cancel(task: LuaTask, future: Future) -> Any:
        _check_future(future)
        if future.state != b"pending":
            return (False, None)
        callee = future.call
        future.state = b"canceled"
        future.value = to_lua(WippyError(CANCELED, "operation was canceled", retryable=False))
        future.channel.push(future.value)
        if callee is not None:
            callee.close()
        return (True, None)

    return {
        "funcs.call": call,
        "funcs.adopt": adopt,
        "funcs.async": call_async,
        "future.state": future_state,
        "future.cancel": future_cancel,
    }
