"""A shared base for hosts whose actors live in this process as :class:`Process` objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from wippy.actors.table import P, ProcessTable
from wippy.providers._base import HostProvider

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.actors.process import Process
    from wippy.registry import Entry


class ActorTable(ProcessTable[P], HostProvider, Generic[P]):
    """A host that keeps its actors in ``self.actors`` (PID -> :class:`Process`).

    It implements the routing contract over that table: delivery, events, terminate,
    cancel with a deadline, monitors and links, and :meth:`stop_actors` (cancel every
    actor, terminate the rest after a timeout). Subclasses implement :meth:`spawn` (adding
    their actors with :meth:`add`); a durable host overrides :meth:`watchers_changed` to
    persist monitors and links.
    """

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        HostProvider.__init__(self, kernel, entry)
        self.init_table()

    def forget(self, proc: Process) -> None:
        ProcessTable.forget(self, proc)
