"""Context values (``process.with_context``, ``funcs.new():with_context``) travel to
workflows and activities in Temporal headers, so any SDK can see and forward them."""

from __future__ import annotations

import contextvars
from typing import Any

from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from wippy.providers.temporal.converter import DATA_CONVERTER

HEADER = "wippy-context"
CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("wippy_context", default=None)


def _with_context(headers: Any) -> dict[str, Payload]:
    values = CONTEXT.get()
    if not values:
        return dict(headers)
    return {**headers, HEADER: DATA_CONVERTER.payload_converter.to_payloads([values])[0]}


def _read(headers: Any) -> dict[str, Any] | None:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    return DATA_CONVERTER.payload_converter.from_payloads([payload])[0]


class _WorkflowOut(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_context(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_context(input.headers)
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> workflow.ChildWorkflowHandle[Any, Any]:
        input.headers = _with_context(input.headers)
        return await super().start_child_workflow(input)


class _WorkflowIn(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOut(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        CONTEXT.set(_read(input.headers))
        return await super().execute_workflow(input)


class _ActivityIn(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        CONTEXT.set(_read(input.headers))
        return await super().execute_activity(input)


class _ClientOut(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        input.headers = _with_context(input.headers)
        return await super().start_workflow(input)


class ContextInterceptor(Interceptor, client.Interceptor):
    """Carries ``CONTEXT`` in the ``wippy-context`` header: client start -> workflow ->
    activities and children."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOut(next)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityIn(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _WorkflowIn


def activity_context() -> dict[str, Any]:
    """The context of the running activity (empty when none was sent)."""
    return dict(CONTEXT.get() or {})
