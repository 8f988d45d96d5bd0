"""``process.host``: the in-memory provider. Actors live as long as the runtime does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wippy.actors.process import Process
from wippy.actors.router import make_pid
from wippy.providers._base import ProviderSpec
from wippy.providers._table import ActorTable
from wippy.registry.schema import INT, LIMITS, MAP, Field

if TYPE_CHECKING:
    from wippy.actors.host import SpawnRequest
    from wippy.actors.scheduler import Dispatcher

PROFILES = {"process.lua": b"process", "workflow.lua": b"workflow"}


class ProcessHost(ActorTable[Process]):
    kind = "process.host"
    runs = ("process.lua", "workflow.lua")
    instant_delivery = True

    _counter = 0

    @property
    def dispatcher(self) -> Dispatcher:
        return self.kernel.dispatcher

    def spawn(self, request: SpawnRequest) -> str:
        entry = self.entry_for_spawn(request.entry_id)
        self._counter += 1
        pid = make_pid(self.host_id, f"{self._counter:x}")
        router = self.kernel.router
        if request.name is not None:
            router.register(request.name, pid)
        proc = self.add(Process(self, pid, entry.id, PROFILES[entry.kind], request.context))
        self.wire(proc, request)
        proc.start(request.args)
        return pid

    async def stop(self, timeout: float) -> None:
        """Cancel every process, wait up to ``timeout``, then terminate the rest."""
        self.running = False
        try:
            await self.stop_actors(timeout)
        finally:
            self.kernel.router.remove_host(self.host_id)


FIELDS = {
    # upstream's worker-pool settings: accepted for compatibility, not needed on asyncio
    "host": Field(MAP, fields={"workers": Field(INT), "queue_size": Field(INT), "local_queue_size": Field(INT),
                               "max_processes": Field(INT)}),
    "limits": LIMITS,
}
SPEC = ProviderSpec("process.host", factory=ProcessHost, description="in-memory process host", fields=FIELDS)
