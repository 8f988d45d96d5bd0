"""Go-style channels, the one primitive every blocking wait in an actor is built on.

Inboxes, event streams, timers and futures are all channels fed from Python, so
``channel.select`` works across all of them. A waiting task is resumed through the
scheduler; waiters of a task that has finished are skipped.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.actors.scheduler import LuaTask, Scheduler


class ChannelClosed(WippyError):
    def __init__(self) -> None:
        super().__init__(INVALID, "send on closed channel", retryable=False)


class Select:
    """Shared state of one blocked select: the first case to fire wins."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True


class Waiter:
    """A task blocked on a channel; ``index`` is its select case (None for a plain op)."""

    __slots__ = ("task", "index", "select", "sending", "value")

    def __init__(
        self,
        task: LuaTask,
        index: int | None = None,
        select: Select | None = None,
        sending: bool = False,
        value: Any = None,
    ) -> None:
        self.task = task
        self.index = index
        self.select = select
        self.sending = sending
        self.value = value  # what a blocked sender is sending

    @property
    def live(self) -> bool:
        if self.task.finished:
            return False
        return self.select is None or self.select.active

    def claim(self) -> None:
        if self.select is not None:
            self.select.active = False


_NO_WAITERS: Any = ()
"""Every channel's waiter queue until a task first blocks on it: most channels (an idle
process's inbox has no senders, most have no waiting receivers for long) never need a
deque, and an empty deque costs about 0.75 KiB."""


class Channel:
    """``capacity`` 0 is unbuffered, ``None`` unbounded (inboxes and event streams)."""

    __slots__ = ("capacity", "buffer", "receivers", "senders", "closed", "scheduler", "__weakref__")

    def __init__(self, scheduler: Scheduler, capacity: int | None = 0) -> None:
        self.scheduler = scheduler
        self.capacity = capacity
        self.buffer: deque[Any] = deque()
        self.receivers: deque[Waiter] = _NO_WAITERS  # made by wait_receive
        self.senders: deque[Waiter] = _NO_WAITERS  # made by wait_send
        self.closed = False

    def __repr__(self) -> str:
        return f"<Channel cap={self.capacity} len={len(self.buffer)}{' closed' if self.closed else ''}>"

    # Non-blocking halves -----------------------------------------------------------------
    def _next_receiver(self) -> Waiter | None:
        q = self.receivers
        while q:
            w = q.popleft()
            if w.live:
                return w
        return None

    def _next_sender(self) -> Waiter | None:
        q = self.senders
        while q:
            w = q.popleft()
            if w.live:
                return w
        return None

    def wait_receive(self, w: Waiter) -> None:
        """Queue ``w`` until a value (or the close) arrives."""
        if self.receivers is _NO_WAITERS:
            self.receivers = deque()
        self.receivers.append(w)

    def wait_send(self, w: Waiter) -> None:
        """Queue sender ``w`` until a receiver or buffer room takes its value."""
        if self.senders is _NO_WAITERS:
            self.senders = deque()
        self.senders.append(w)

    def _has_room(self) -> bool:
        return self.capacity is None or len(self.buffer) < self.capacity

    def try_send(self, value: Any) -> bool:
        """Deliver without blocking if a receiver waits or the buffer has room."""
        if self.closed:
            raise ChannelClosed()
        w = self._next_receiver()
        if w is not None:
            w.claim()
            self._wake(w, value, True)
            return True
        if self._has_room():
            self.buffer.append(value)
            return True
        return False

    def try_receive(self) -> tuple[Any, bool] | None:
        """``(value, True)``, ``(None, False)`` when closed and drained, None to block."""
        if self.buffer:
            value = self.buffer.popleft()
            s = self._next_sender()
            if s is not None:  # a blocked sender's value moves into the freed slot
                s.claim()
                self.buffer.append(s.value)
                self._wake(s, s.value, True)
            return value, True
        s = self._next_sender()
        if s is not None:
            s.claim()
            self._wake(s, s.value, True)
            return s.value, True
        if self.closed:
            return None, False
        return None

    def push(self, value: Any) -> bool:
        """Feed from Python (timers, futures, inboxes). False if closed or full."""
        if self.closed:
            return False
        return self.try_send(value)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while (w := self._next_receiver()) is not None:
            w.claim()
            self._wake(w, None, False)
        while (s := self._next_sender()) is not None:
            s.claim()
            self.scheduler.throw(s.task, ChannelClosed())

    # Waking --------------------------------------------------------------------------------
    def _wake(self, w: Waiter, value: Any, ok: bool) -> None:
        if w.index is not None:
            self.scheduler.resume(w.task, w.index, value, ok)
        elif w.sending:
            self.scheduler.resume(w.task, True)
        else:
            self.scheduler.resume(w.task, value, ok)


def direct_receive(scheduler: Scheduler) -> Any:
    """``chan.recv`` as a direct call from Lua when a value is ready (``true, value, ok``);
    ``false`` when the receiver must block (or its turn is used up): the Lua side then
    yields the command. Every provider runs ``chan.recv`` with the ordinary handler, so
    taking a ready value here is the same as the command would do."""

    def receive_now(ch: Any) -> Any:
        if not isinstance(ch, Channel) or scheduler.current is None or scheduler.used_up():
            return False
        got = ch.try_receive()
        if got is None:
            return False
        return (True, *got)

    return receive_now


# Commands ----------------------------------------------------------------------------------
def channel_commands() -> dict[str, Any]:
    """Handlers for the channel commands; the same for every provider."""
    from wippy.actors.scheduler import PENDING

    def new(task: LuaTask, size: int) -> tuple[Any]:
        return (Channel(task.actor.scheduler, size),)

    def send(task: LuaTask, ch: Channel, value: Any) -> Any:
        if ch.try_send(value):
            return (True,)
        ch.wait_send(Waiter(task, sending=True, value=value))
        return PENDING

    def receive(task: LuaTask, ch: Channel) -> Any:
        got = ch.try_receive()
        if got is not None:
            return got
        ch.wait_receive(Waiter(task))
        return PENDING

    def close(task: LuaTask, ch: Channel) -> tuple[()]:
        ch.close()
        return ()

    def select(task: LuaTask, has_default: bool, *flat: Any) -> Any:
        cases = [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
        for index, (kind, ch, value) in enumerate(cases, 1):
            if kind == b"recv":
                got = ch.try_receive()
                if got is not None:
                    return (index, got[0], got[1])
            elif ch.try_send(value):
                return (index, value, True)
        if has_default:
            return (0,)
        state = Select()
        for index, (kind, ch, value) in enumerate(cases, 1):
            if kind == b"recv":
                ch.wait_receive(Waiter(task, index, state))
            else:
                ch.wait_send(Waiter(task, index, state, sending=True, value=value))
        return PENDING

    return {
        "chan.new": new,
        "chan.send": send,
        "chan.recv": receive,
        "chan.close": close,
        "chan.select": select,
    }
