"""``temporal.worker``: a Temporal worker whose workflows are Lua, plus the host provider
that lets ordinary processes spawn, signal, monitor and link those workflows."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.common import RawValue, TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from wippy.actors.commands.env import env_system
from wippy.actors.host import ExitResult, SpawnRequest
from wippy.actors.router import make_pid, parse_pid
from wippy.actors.scheduler import Dispatcher
from wippy.errors import ALREADY_EXISTS, CANCELED, INVALID, NOT_FOUND, UNAVAILABLE, WippyError
from wippy.providers._base import HostProvider
from wippy.providers._durable.commands import packed_args, plain_messages
from wippy.providers._durable.exits import exit_to_links
from wippy.providers._durable.ids import new_workflow_id
from wippy.providers._durable.options import StartOptions, seconds
from wippy.providers.temporal.client import TemporalClientService, server_hint
from wippy.providers.temporal.context import CONTEXT, activity_context
from wippy.providers.temporal.failures import (
    from_failure,
    quiet_expected_failures,
    rpc_error,
    rpc_kind,
    to_application_error,
)
from wippy.providers.temporal.options import start_options
from wippy.providers.temporal.search import typed_search_attributes
from wippy.providers.temporal.worker_options import WorkerSettings, worker_settings
from wippy.providers.temporal.workflow import CANCEL_SIGNAL, EVENT_SIGNAL, WORKERS, LuaWorkflow

if TYPE_CHECKING:
    from wippy.actors.kernel import Kernel
    from wippy.registry import Entry

log = logging.getLogger("wippy.temporal")

class TemporalWorkerHost(HostProvider):
    kind = "temporal.worker"
    runs = ("workflow.lua",)

    def __init__(self, kernel: Kernel, entry: Entry) -> None:
        super().__init__(kernel, entry)
        client_id = entry.resolve(str(entry.data.get("client", "")))
        self.client_id = client_id
        # the task queue as the entry names it (what Lua code names as a spawn host) and as
        # polled (the client's tq_prefix applied, at start)
        self.queue_name = str(entry.data.get("task_queue", "default"))
        self.task_queue = self.queue_name
        # the workflow task timeout of runs started through this worker and of their child
        # workflows, unless a start sets temporal.workflow.task_timeout (server default 10s)
        self.task_timeout = seconds("workflow_task_timeout", entry.data.get("workflow_task_timeout"))
        self.worker: Worker | None = None
        self._task: asyncio.Task[None] | None = None
        self._ops: set[asyncio.Task[Any]] = set()
        self._last: asyncio.Future[Any] | None = None
        self._watches: dict[str, _Watch] = {}  # pid -> the watch on its latest run
        self._watch_tasks: set[asyncio.Task[None]] = set()
        self._starting: dict[str, asyncio.Future[str]] = {}  # pid -> its start (the run ID), while in flight
        self.loop: asyncio.AbstractEventLoop | None = None  # the runtime's loop (workflows run in a thread)
        self.settings = WorkerSettings()  # worker_options, read at start

    @property
    def workflow_types(self) -> dict[str, str]:
        """Temporal workflow type -> entry ID for the workflows this worker runs: entries whose
        ``meta.temporal.workflow.worker`` is this worker (type ``meta.temporal.workflow.name``
        or the entry ID), and workflow entries no worker claims (type = entry ID)."""
        types: dict[str, str] = {}
        for entry in self.kernel.registry.of_kind("workflow.lua"):
            meta = (entry.meta.get("temporal") or {}).get("workflow") or {}
            worker = meta.get("worker")
            if worker is None or entry.resolve(str(worker)) == self.host_id:
                types[str(meta.get("name") or entry.id)] = entry.id
        return types

    def type_of(self, entry_id: str) -> str | None:
        for name, eid in self.workflow_types.items():
            if eid == entry_id:
                return name
        return None

    @property
    def dispatcher(self) -> Dispatcher:
        return self.kernel.dispatcher  # only used by in-thread workflows, which build their own

    def _client_service(self) -> TemporalClientService:
        service = self.kernel.services.get(self.client_id)
        if not isinstance(service, TemporalClientService):
            raise WippyError(UNAVAILABLE, f"{self.host_id}: client {self.client_id} is not started")
        return service

    # Lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        service = self._client_service()
        quiet_expected_failures()
        self.settings = worker_settings(self.host_id, self.entry.data.get("worker_options"),
                                        env_system(self.kernel).lookup)
        for warning in self.settings.warnings:
            log.warning("%s: %s", self.host_id, warning)
        self.task_queue = service.settings.tq_prefix + self.task_queue
        self.loop = asyncio.get_running_loop()
        self.kernel.router.add_host(self)
        self.running = True
        WORKERS[self.task_queue] = self
        self._task = asyncio.create_task(self._run(service), name=f"temporal worker {self.host_id}")
        self._task.add_done_callback(self._worker_ended)

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: the Temporal worker stopped: %s", self.host_id, task.exception(),
                      exc_info=task.exception())

    async def _run(self, service: TemporalClientService) -> None:
        client = await service.connected()
        settings = self.settings
        self.worker = self.make_worker(client, settings)
        log.info("%s: polling task queue %s", self.host_id, self.task_queue)
        await self.worker.run()

    def make_worker(self, client: Any, settings: WorkerSettings) -> Worker:
        """The SDK worker: the Lua workflows (unless disable_workflow_worker), the function
        activities and the runtime's local activities, with ``worker_options``' arguments."""
        return Worker(
            client, task_queue=self.task_queue, workflows=[LuaWorkflow] if settings.workflows else [],
            activities=[self._activity(), *self._local_activities()],
            workflow_runner=UnsandboxedWorkflowRunner(),  # the client's interceptors apply too
            workflow_task_executor=concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wippy-wf"),
            **settings.kwargs,
        )

    async def stop(self, timeout: float) -> None:
        self.running = False
        if self.worker is not None:
            try:
                await asyncio.wait_for(self.worker.shutdown(), timeout)
            except TimeoutError:
                log.warning("%s: worker did not shut down within %gs", self.host_id, timeout)
        # only now: a task the worker still runs while shutting down must find its project
        if WORKERS.get(self.task_queue) is self:
            del WORKERS[self.task_queue]
        for task in [*self._ops, *self._watch_tasks, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._ops, *self._watch_tasks, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.kernel.router.remove_host(self.host_id)
        self.worker, self._task, self._last = None, None, None  # (see TemporalClientService.stop)
        self._watches.clear()

    # Activities ------------------------------------------------------------------------------
    def _activity(self) -> Any:
        kernel = self.kernel

        @activity.defn(dynamic=True)
        async def run_function(args: Sequence[RawValue]) -> Any:
            name = activity.info().activity_type
            conv = activity.payload_converter()
            values = [conv.from_payload(a.payload) for a in args]
            return await call_function(kernel, name, values, activity_context())

        return run_function

    def _local_activities(self) -> list[Any]:
        kernel = self.kernel
        router = kernel.router

        @activity.defn(name="wippy.send")
        async def send(dest: str, topic: str, payload: Any, sender: str | None) -> bool:
            try:
                router.send(dest, topic, kernel.vm.to_lua(payload, "message"), sender)
            except WippyError as err:  # (an error the workflow gets back, not one to retry)
                raise to_application_error(err) from None
            return True

        @activity.defn(name="wippy.spawn")
        async def spawn(entry: str, host: str, mode: int, context: dict[str, Any], options: dict[str, Any],
                        name: str | None, messages: list[Any], args: list[Any], parent: str) -> str:
            try:
                target = router.host_for_spawn(host, kernel.registry)
                request = SpawnRequest(entry, kernel.lua_args(args), parent=parent, context=context,
                                       options=options, name=name,
                                       messages=[(t, kernel.vm.to_lua(p)) for t, p in messages],
                                       monitor=bool(mode & 1), link=bool(mode & 2))
                return target.spawn(request)
            except WippyError as err:
                raise to_application_error(err) from None

        @activity.defn(name="wippy.control")
        async def control(op: str, args: list[Any], caller: str) -> Any:
            try:
                if op == "lookup":
                    return router.names.get(args[0])
                if op == "register":
                    self.register_name(args[0], args[1] if len(args) > 1 and args[1] else caller)
                    return True
                if op == "unregister":
                    return router.unregister(args[0])
                target = router.resolve(args[0])
                host = router.host_of(target)
                if op == "terminate":
                    return bool(host and host.terminate(target, None))
                if op == "cancel":
                    deadline = args[1] if len(args) > 1 and isinstance(args[1], (int, float)) else 5000
                    reason = args[2] if len(args) > 2 and isinstance(args[2], str) else "canceled"
                    return bool(host and host.cancel(target, caller, reason, deadline / 1000))
            except WippyError as err:
                raise to_application_error(err) from None
            raise to_application_error(WippyError(INVALID, f"unknown control operation {op}"))

        @activity.defn(name="wippy.search_types")
        async def search_types(names: list[str]) -> dict[str, str | None] | None:
            """The registered types of search attributes (None: not registered), for a
            workflow's ``workflow.attrs``; None when the server will not say. Recorded in
            the history, so a replay checks the values exactly as the first run did."""
            service = self._client_service()
            client = await service.connected(service.settings.connection_timeout)
            return await service.search_types.lookup(client, names, service.settings.connection_timeout)

        return [send, spawn, control, search_types]

    def send_from_workflow(self, dest: str, topic: str, payload: Any, sender: str) -> None:
        """A message from one of this worker's workflows (called from the workflow thread)
        to a process of the runtime: sent on the runtime's loop, in the order asked."""
        kernel = self.kernel

        def send() -> None:
            try:
                kernel.router.send(dest, topic, kernel.vm.to_lua(payload, "message"), sender)
            except WippyError as err:  # the workflow has carried on: say so
                log.warning("%s: message %r from %s to %s not delivered: %s", self.host_id, topic, sender,
                            dest, err)

        if self.loop is not None and self.running:
            self.loop.call_soon_threadsafe(send)

    # Names -----------------------------------------------------------------------------------
    def register_name(self, name: str, owner: str) -> None:
        """Register ``name`` for ``owner``; a workflow of this worker keeps it until its run
        ends, however it ends (the name registry lives in the kernel, not in Temporal)."""
        router = self.kernel.router
        router.register(name, owner)
        if router.host_of(owner) is self and owner not in self._watches:
            self._watch(owner, self._starting.get(owner))

    def replayed_name_op(self, op: str, args: list[Any], caller: str) -> None:
        """A workflow replayed ``process.registry.register/unregister`` (a local activity whose
        result comes from history): names live in the kernel, so after a restart the
        replay applies it again. Called from the workflow thread."""
        def apply() -> None:
            try:
                if op == "register":
                    self.register_name(args[0], args[1] if len(args) > 1 and args[1] else caller)
                else:
                    self.kernel.router.unregister(args[0])
            except WippyError as err:  # e.g. the name is taken now: say so, carry on
                log.warning("%s: replaying %s of %r for %s: %s", self.host_id, op, args[0], caller, err)

        if self.loop is not None and self.running:
            self.loop.call_soon_threadsafe(apply)

    # Host provider -----------------------------------------------------------------------------
    async def _client(self) -> Any:
        service = self._client_service()
        return await service.connected(service.settings.connection_timeout)

    def _background(self, coro: Any) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)
        self._last = task
        return task

    def barrier(self) -> Any:
        last, self._last = self._last, None
        return last

    async def handle(self, pid: str) -> WorkflowHandle[Any, Any]:
        _, workflow_id = parse_pid(pid)
        return (await self._client()).get_workflow_handle(workflow_id)

    def spawn(self, request: SpawnRequest) -> str:
        entry = self.entry_for_spawn(request.entry_id)
        workflow_type = self.type_of(entry.id)
        if workflow_type is None:
            raise WippyError(INVALID, f"{entry.id} is registered to another worker (meta.temporal.workflow.worker), "
                                      f"not {self.host_id}", retryable=False)
        options = StartOptions.parse(request.options)
        workflow_id = options.workflow_id or request.name or new_workflow_id()
        vm = self.kernel.vm
        args = packed_args(vm, request.args)
        messages = plain_messages(vm, request.messages)
        kwargs = start_options(self, options, workflow_id)
        if messages:  # signal-with-start: the first startup message arrives before anything else
            kwargs["start_signal"], first = messages[0][0], messages[0][1]
            kwargs["start_signal_args"] = [first, request.parent]
            messages = messages[1:]
        pid = make_pid(self.host_id, workflow_id)
        context = dict(request.context)

        async def start() -> str:
            CONTEXT.set(context)
            client = await self._client()
            if options.search:
                kwargs["search_attributes"] = await self._search_attributes(client, options.search)
            try:
                handle = await client.start_workflow(workflow_type, args=args, **kwargs)
            except RPCError as exc:
                raise self._start_error(exc, entry.id) from None
            except Exception as exc:
                if "already" in str(exc).lower():  # running, or closed and refused by the reuse policy
                    raise WippyError(ALREADY_EXISTS, f"workflow {workflow_id} already exists: {exc}") from None
                raise
            for topic, payload in messages:
                await handle.signal(topic, args=[payload, request.parent])
            return str(handle.result_run_id or handle.first_execution_run_id or "")

        starting = self._starting[pid] = self._background(start())
        starting.add_done_callback(lambda f: self._starting.pop(pid) if self._starting.get(pid) is f else None)
        if request.parent is not None and (request.monitor or request.link):
            # watch the run this start makes (or finds): a later start of the same workflow
            # ID (terminate_existing, a reuse policy) is another run with watchers of its own
            watch = self._watch(pid, starting)
            if request.monitor:
                watch.monitors.add(request.parent)
            if request.link:
                watch.links.add(request.parent)
                self.kernel.router.watch(request.parent, pid, link=True)
        return pid

    async def _search_attributes(self, client: Any, values: dict[str, Any]) -> TypedSearchAttributes:
        """The start option ``search_attributes``, checked against the namespace's types."""
        service = self._client_service()
        names = sorted(str(k) for k in values)
        types = await service.search_types.lookup(client, names, service.settings.connection_timeout)
        return typed_search_attributes(values, types, service.settings.namespace,
                                       "start option search_attributes")

    def _start_error(self, exc: RPCError, entry_id: str) -> WippyError:
        """A start the server refused: the kind its status means (a conflict of start
        options is Invalid); no answer is Unavailable, with what to do about it."""
        if rpc_kind(exc) == UNAVAILABLE:
            address = self._client_service().settings.address
            return WippyError(UNAVAILABLE, f"cannot start {entry_id}: the Temporal server at {address} did not "
                                           f"answer: {exc.message}; {server_hint(address)}", retryable=True)
        return rpc_error(exc, f"cannot start {entry_id}")

    def deliver(self, pid: str, topic: str, payload: Any, sender: str | None) -> bool:
        value = self.kernel.vm.to_python(payload, "message")
        self._background(self._signal(pid, topic, [value, sender]))
        return True

    async def _signal(self, pid: str, name: str, args: list[Any]) -> None:
        await (await self.handle(pid)).signal(name, args=args)

    def deliver_event(self, pid: str, event: dict[str, Any]) -> bool:
        vm = self.kernel.vm
        plain = {k: v for k, v in event.items() if k != "result"}
        if "result" in event:
            plain["result"] = {"value": vm.to_python(event["result"]["value"]),
                               "error": vm.to_python(event["result"]["error"])}
        self._background(self._signal(pid, EVENT_SIGNAL, [plain]))
        return True

    def terminate(self, pid: str, error: Any) -> bool:
        reason = "terminated"
        if error is not None:
            reason = str(self.kernel.vm.to_python(error))
        self._background(self._terminate(pid, reason))
        return True

    async def _terminate(self, pid: str, reason: str) -> None:
        await (await self.handle(pid)).terminate(reason=reason)

    def cancel(self, pid: str, sender: str | None, reason: str, deadline: float) -> bool:
        self._background(self._signal(
            pid, CANCEL_SIGNAL, [{"from": sender, "reason": reason, "deadline": int(deadline * 1000)}]))
        loop = asyncio.get_running_loop()
        loop.call_later(deadline, lambda: self._background(self._terminate_if_running(pid, reason)))
        return True

    async def _terminate_if_running(self, pid: str, reason: str) -> None:
        with contextlib.suppress(RPCError):  # already finished
            await self._terminate(pid, f"cancel deadline passed ({reason})")

    # Monitors and links of ordinary processes --------------------------------------------------
    def _watch(self, pid: str, starting: asyncio.Future[str] | None) -> _Watch:
        """A new watch on the run of ``pid`` that ``starting`` starts (the latest run when
        None); it becomes the one later monitors and links of ``pid`` join."""
        watch = self._watches[pid] = _Watch()
        task = asyncio.ensure_future(self._await_exit(pid, watch, starting))
        self._watch_tasks.add(task)
        task.add_done_callback(self._watch_tasks.discard)
        return watch

    def add_watcher(self, pid: str, watcher: str, link: bool) -> bool:
        watch = self._watches.get(pid) or self._watch(pid, self._starting.get(pid))
        (watch.links if link else watch.monitors).add(watcher)
        return True

    def remove_watcher(self, pid: str, watcher: str, link: bool) -> None:
        watch = self._watches.get(pid)
        if watch is not None:
            (watch.links if link else watch.monitors).discard(watcher)

    async def _await_exit(self, pid: str, watch: _Watch, starting: asyncio.Future[str] | None) -> None:
        vm = self.kernel.vm
        try:
            run_id = await starting if starting is not None else None
            handle = (await self._client()).get_workflow_handle(parse_pid(pid)[1], run_id=run_id or None)
            value = await handle.result()
            result = ExitResult(value=vm.to_lua(value))
        except WorkflowFailureError as exc:
            result = ExitResult(error=vm.to_lua(from_failure(exc.cause or exc)))
        except RPCError as exc:
            result = ExitResult(error=vm.to_lua(WippyError(NOT_FOUND, f"workflow {pid}: {exc}")))
        except WippyError as err:  # the start itself failed
            result = ExitResult(error=vm.to_lua(err))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = ExitResult(error=vm.to_lua(WippyError(CANCELED, f"workflow {pid} ended: {exc}")))
        if self._watches.get(pid) is watch:
            del self._watches[pid]
        exit_to_links(self.kernel.router, pid, result, watch.links)
        self.kernel.router.exited(pid, result, watch.monitors, watch.links)


class _Watch:
    """The monitors and links of one workflow run."""

    __slots__ = ("monitors", "links")

    def __init__(self) -> None:
        self.monitors: set[str] = set()
        self.links: set[str] = set()


async def call_function(kernel: Kernel, name: str, values: list[Any], context: dict[str, Any]) -> Any:
    """Run a function entry on the main runtime; raise its error as an ApplicationError."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] = loop.create_future()
    vm = kernel.vm

    def done(ok: bool, value: Any) -> None:
        if outcome.done():
            return
        converted = vm.to_python(value, "result" if ok else "error")
        if ok:
            outcome.set_result(converted)
        else:
            outcome.set_exception(to_application_error(converted))

    try:
        call = kernel.functions.start(name, kernel.lua_args(values), context, None, done)
    except WippyError as err:
        if err.kind == NOT_FOUND:  # not registered here: retryable, as the Temporal SDK says it
            err = WippyError(NOT_FOUND, f"activity {name} is not registered: {err.message}", retryable=True)
        raise to_application_error(err) from None
    try:
        return await outcome
    except asyncio.CancelledError:
        call.close()
        raise
