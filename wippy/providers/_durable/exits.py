"""How the end of a durable workflow reaches the processes watching it.

Upstream's durable semantics differ from plain processes in one point: a process *linked*
to a workflow hears about every end of it, not only abnormal ones. Monitors get ``EXIT``
as always; links get ``LINK_DOWN`` when the workflow failed or was terminated, and
``EXIT`` (with the result) when it completed normally. (A plain process that ends
normally tells its links nothing.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wippy.actors.host import ExitResult
    from wippy.actors.router import Router


def exit_to_links(router: Router, pid: str, result: ExitResult, links: Iterable[str]) -> None:
    """A workflow ``pid`` that completed normally: an ``EXIT`` to each linked process (the
    router's own exit notice, which comes after, sends LINK_DOWN for abnormal ends)."""
    if result.abnormal:
        return
    event_result = {"value": result.value, "error": None}
    for peer in links:
        router.deliver_event(peer, {"kind": "EXIT", "from": pid, "result": event_result})
