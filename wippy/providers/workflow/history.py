"""The records of a workflow history: the on-disk format of ``workflow.host``.

A run's history is the ``events`` table of its journal (:mod:`.journal`): one row per
record, ``(run_id, seq, data)``, where ``seq`` counts from 0 within the run and ``data``
is the record packed with :func:`wippy.lua.codec.pack` (msgpack; map keys in the order
given below, values are plain data: strings, numbers, booleans, nil, lists, maps, and
WippyError for errors). Every record is built by a function of this module and by nothing
else, so this docstring is the whole format. Records are never rewritten; a change of
format needs a new journal ``FORMAT``.

There are two kinds of record, told apart by their first key.

**Commands** (``{"op": name, ...}``) are written as the workflow code issues commands.
On replay the code must issue the same commands in the same order: a command matches its
record by ``op`` and ``key`` (absent = nil), or the run halts with a non-determinism
error. ``key`` is what identifies the command's target, as listed:

=====================  ==================================  =====================================
op                     fields after ``op``                 meaning
=====================  ==================================  =====================================
time.now, crypto.now,  ``v``: list of the values returned  a recorded value (:func:`value`);
uuid.v1/v4/v7,                                             replay answers ``v`` instead of
crypto.random_bytes,                                       computing it again
crypto.encrypt,
process.lookup
funcs.call,            ``key`` function entry ID,          an activity (:func:`activity`);
funcs.async            ``args`` list, ``ctx`` map|nil,     completed by a ``done`` input
                       ``opts`` map|nil                    referring to its seq
future.cancel          ``key`` seq of the activity         ``future:cancel()``
                                                           (:func:`future_cancel`)
time.sleep             ``at`` wall-clock due time, ns      a sleep (:func:`sleep`); completed
                       since the epoch                     by a ``done`` input
time.timer,            ``at`` first due time (ns),         a timer or ticker (:func:`timer`);
time.ticker            ``every`` period in ns (0: timer)   each tick is a ``done`` input
time.stop              ``key`` seq of the timer            ``timer:stop()`` (:func:`timer_stop`)
time.reset             ``key`` seq of the timer, ``at``    ``timer:reset()``
                       new due time (ns)                   (:func:`timer_reset`)
process.spawn          ``key`` entry ID, ``host``,         a child workflow
(child workflow)       ``child`` its workflow ID, ``pid``, (:func:`child_spawn`); ``mode``
                       ``mode``, ``args``, ``ctx``,        bit 1 monitor (always set), bit 2
                       ``opts``, ``msgs`` [[topic, v]...]  link
process.spawn          ``key`` entry ID, ``pid``           a process started on a host that
(other host)                                               is not a workflow host
                                                           (:func:`spawned`)
process.exec           ``key`` entry ID, ``host``,         a child workflow whose result the
                       ``child``, ``args``, ``opts``,      caller waits for (:func:`child_exec`);
                       ``ctx``, ``msgs``                   completed by a ``done`` input
process.send           ``key`` [destination, topic]        an effect outside the workflow
process.terminate,     ``key`` destination                 (:func:`effect`), done once after
process.cancel,                                            the record is durable, skipped on
process.(un)monitor,                                       replay (names: applied again, since
process.(un)link                                           the name registry lives in memory)
process.(un)register   ``key`` name
workflow.version       ``key`` change ID, ``v`` version    the version a run took
                                                           (:func:`version`)
workflow.attrs         (none)                              search attributes / memo were set
                                                           (:func:`attrs`; the values are in
                                                           the run row)
=====================  ==================================  =====================================

Two variants apply to any command: ``{"op", "key", "e": error}`` (:func:`failed`) records
that the command failed with ``e`` (replay returns the same error), and
``{"op", "key", "too_large": message}`` (:func:`too_large`) stands in for a record over
the size limit (replay raises the same error at the same point).

**Inputs** (``{"in": kind, ...}``) are everything that comes from outside; each is applied
at a quiescent point of the code, in history order:

- ``{"in": "done", "ref": seq[, "v": value][, "e": error]}`` (:func:`done`): the command
  at history position ``ref`` completed (a timer fired: no value; an activity: ``v`` or
  ``e``; a ``process.exec`` child: both);
- ``{"in": "msg", "topic": str, "from": pid|nil, "v": payload}`` (:func:`message`): a
  message to the workflow;
- ``{"in": "event", "event": {"kind": ..., "from": pid, ...}}`` (:func:`event`): a
  process event (``EXIT``, ``LINK_DOWN``, ``CANCEL``); an ``EXIT``/``LINK_DOWN`` carries
  ``"result": {"value": ..., "error": ...}``.

The run row beside the history holds the rest: its start ``options`` (which keep, under
``wippy.run``, the attempt, run number, start times and parent run), the watchers
(``{"monitors": [pid...], "links": [pid...], "exec": [[pid, ref]...]}``), search
attributes, memo, result and error.
"""

from __future__ import annotations

from typing import Any, Final

Record = dict[str, Any]
"""One history record, as stored (see the module docstring)."""

MISSING: Final[Any] = object()
"""Default of :func:`done`'s value and error: the field is left out."""

RECORDED_VALUES = ("time.now", "uuid.v1", "uuid.v4", "uuid.v7", "crypto.random_bytes", "crypto.now",
                   "crypto.encrypt", "process.lookup")
"""Commands whose results are recorded (``{"op", "v"}``) and answered from the record on replay."""

ACTIVITIES = ("funcs.call", "funcs.async")
TIMERS = ("time.sleep", "time.timer", "time.ticker")


# Commands -------------------------------------------------------------------------------------
def value(op: str, values: list[Any]) -> Record:
    """``op`` returned ``values`` (one of :data:`RECORDED_VALUES`)."""
    return {"op": op, "v": values}


def activity(op: str, name: str, args: list[Any], ctx: dict[str, Any] | None,
             opts: dict[str, Any] | None) -> Record:
    """``funcs.call`` / ``funcs.async`` of function ``name``."""
    return {"op": op, "key": name, "args": args, "ctx": ctx, "opts": opts}


def future_cancel(seq: int) -> Record:
    return {"op": "future.cancel", "key": seq}


def sleep(at: int) -> Record:
    """``time.sleep`` until ``at`` (ns since the epoch, wall clock)."""
    return {"op": "time.sleep", "at": at}


def timer(op: str, at: int, every: int) -> Record:
    """``time.timer`` (``every`` 0) or ``time.ticker``, first due at ``at`` (ns)."""
    return {"op": op, "at": at, "every": every}


def timer_stop(seq: int) -> Record:
    return {"op": "time.stop", "key": seq}


def timer_reset(seq: int, at: int) -> Record:
    return {"op": "time.reset", "key": seq, "at": at}


def child_spawn(entry: str, host: str, child: str, pid: str, mode: int, args: list[Any],
                ctx: dict[str, Any], opts: dict[str, Any], msgs: list[tuple[str, Any]]) -> Record:
    """``process.spawn`` of a child workflow with ID ``child`` on workflow host ``host``."""
    return {"op": "process.spawn", "key": entry, "host": host, "child": child, "pid": pid, "mode": mode,
            "args": args, "ctx": ctx, "opts": opts, "msgs": msgs}


def spawned(entry: str, pid: str) -> Record:
    """``process.spawn`` on a host that keeps no history: only the PID is recorded."""
    return {"op": "process.spawn", "key": entry, "pid": pid}


def child_exec(entry: str, host: str, child: str, args: list[Any], opts: dict[str, Any],
               ctx: dict[str, Any], msgs: list[tuple[str, Any]]) -> Record:
    """``process.exec`` of a child workflow; its result is a ``done`` input."""
    return {"op": "process.exec", "key": entry, "host": host, "child": child, "args": args, "opts": opts,
            "ctx": ctx, "msgs": msgs}


def effect(op: str, key: Any) -> Record:
    """A command with an effect outside the workflow, done once after commit."""
    return {"op": op, "key": key}


def failed(op: str, key: Any, error: Any) -> Record:
    """``op`` failed with ``error``; replay returns the same error."""
    return {"op": op, "key": key, "e": error}


def version(change: str, chosen: int) -> Record:
    return {"op": "workflow.version", "key": change, "v": chosen}


def attrs() -> Record:
    return {"op": "workflow.attrs"}


def too_large(op: str, key: Any, message: str) -> Record:
    """Stands in for the record of ``op`` that was over the size limit."""
    return {"op": op, "key": key, "too_large": message}


# Inputs ---------------------------------------------------------------------------------------
def done(ref: int, value: Any = MISSING, error: Any = MISSING) -> Record:
    """The command recorded at ``ref`` completed; ``v`` / ``e`` only when given."""
    record: Record = {"in": "done", "ref": ref}
    if value is not MISSING:
        record["v"] = value
    if error is not MISSING:
        record["e"] = error
    return record


def message(topic: str, sender: str | None, payload: Any) -> Record:
    return {"in": "msg", "topic": topic, "from": sender, "v": payload}


def event(event: dict[str, Any]) -> Record:
    """A process event (plain data; a ``result`` holds ``value`` and ``error``)."""
    return {"in": "event", "event": event}


# Reading --------------------------------------------------------------------------------------
def is_input(record: Record) -> bool:
    return "in" in record


def describe(record: Record) -> str:
    """A short description of a record, for errors (e.g. a record over the size limit)."""
    if "op" in record:
        return f"the record of command {record['op']}"
    kind = record.get("in")
    if kind == "msg":
        return f"message {record.get('topic')!r}"
    if kind == "done":
        return f"the result of history event #{record.get('ref')}"
    return f"event {record.get('event', {}).get('kind')}"
