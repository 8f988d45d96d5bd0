"""Python side of ``registry``: ``build_delta`` (pure: it compares two lists of entries)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wippy.errors import INVALID, WippyError

if TYPE_CHECKING:
    from wippy.lua.vm import LuaVM


def _entry_id(entry: Any, where: str) -> str:
    if not isinstance(entry, dict):
        raise WippyError(INVALID, f"{where}: an entry must be a table", retryable=False)
    eid = entry.get("id")
    if isinstance(eid, dict):
        eid = f"{eid.get('ns', '')}:{eid.get('name', '')}"
    if not isinstance(eid, str) or not eid:
        raise WippyError(INVALID, f"{where}: an entry needs an id (\"ns:name\" or {{ns, name}})", retryable=False)
    return eid


def build_delta(old: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    """Operations turning ``old`` into ``new``: creates and updates in ``new``'s order,
    then deletes in ``old``'s order. An entry is updated when its kind, meta or data differ."""
    before = {_entry_id(e, f"from[{i}]"): e for i, e in enumerate(old, 1)}
    after = {_entry_id(e, f"to[{i}]"): e for i, e in enumerate(new, 1)}
    ops: list[dict[str, Any]] = []
    for eid, entry in after.items():
        prior = before.get(eid)
        if prior is None:
            ops.append({"kind": "entry.create", "entry": entry})
        elif any(prior.get(k) != entry.get(k) for k in ("kind", "meta", "data")):
            ops.append({"kind": "entry.update", "entry": entry})
    for eid, entry in before.items():
        if eid not in after:
            ops.append({"kind": "entry.delete", "entry": entry})
    return ops


def natives(vm: LuaVM) -> dict[str, Any]:
    to_lua, to_python = vm.to_lua, vm.to_python

    def lua_build_delta(old: Any, new: Any) -> tuple[Any, Any]:
        try:
            a, b = to_python(old, "from"), to_python(new, "to")
            a = [] if a == {} else a
            b = [] if b == {} else b
            if not isinstance(a, list) or not isinstance(b, list):
                raise WippyError(INVALID, "registry.build_delta: from and to must be arrays of entries",
                                 retryable=False)
            return to_lua(build_delta(a, b), "ops"), None
        except WippyError as err:
            if not err.message.startswith("registry.build_delta"):
                err = WippyError(INVALID, f"registry.build_delta: {err.message}", retryable=False)
            return None, to_lua(err)

    return {"build_delta": lua_build_delta}
