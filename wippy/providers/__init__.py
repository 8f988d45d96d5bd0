"""The provider SDK: everything needed to add a kind of host to wippy.

A *host provider* decides what an actor is and how the commands its Lua code yields are
carried out. To add one:

1. subclass :class:`HostProvider` (or :class:`ActorTable` for actors kept in memory as
   :class:`Process` objects) and implement its abstract methods;
2. describe it with a :class:`ProviderSpec` (kind name, YAML fields as :class:`Field`,
   factory); kinds of entries it runs that are new (plain data to the loader) are
   :class:`KindSpec` objects;
3. publish the spec in your package's ``wippy.providers`` entry-point group.

``docs/providers.md`` walks through a complete example. Names not listed in ``__all__``
are private and may change.
"""

from wippy.actors.host import ExitResult, SpawnRequest
from wippy.actors.kernel import Kernel
from wippy.actors.process import Process
from wippy.actors.router import make_pid, parse_pid
from wippy.actors.scheduler import PENDING, Dispatcher, LuaTask
from wippy.providers._admin import (
    CancelInput,
    CommandResult,
    HistoryEvent,
    InvalidRequest,
    ListInput,
    PendingWork,
    SignalInput,
    TerminateInput,
    Text,
    Value,
    WorkflowAdmin,
    WorkflowDetails,
    WorkflowHistory,
    WorkflowRun,
)
from wippy.providers._base import HostProvider, ProviderSpec
from wippy.providers._table import ActorTable
from wippy.registry import Entry
from wippy.registry.kinds import KindSpec, register_kind
from wippy.registry.schema import Field

__all__ = [
    "PENDING",
    "ActorTable",
    "CancelInput",
    "CommandResult",
    "Dispatcher",
    "Entry",
    "ExitResult",
    "Field",
    "HistoryEvent",
    "HostProvider",
    "InvalidRequest",
    "Kernel",
    "KindSpec",
    "ListInput",
    "LuaTask",
    "PendingWork",
    "Process",
    "ProviderSpec",
    "SignalInput",
    "SpawnRequest",
    "TerminateInput",
    "Text",
    "Value",
    "WorkflowAdmin",
    "WorkflowDetails",
    "WorkflowHistory",
    "WorkflowRun",
    "make_pid",
    "parse_pid",
    "register_kind",
]
