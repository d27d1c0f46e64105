"""Per-operation figures: the metrics, the spans and the access line of each GraphQL operation.

The executor's operations go through `ObserveOperations`, a schema extension (a span per
operation with parse, validate and execute children). Reads the compiled path answers never
reach the extensions, so their doors call `compiled_answered` instead. Both end in `finished`:
the counters and latency (core.metrics), an access line on `taskql.access` at INFO, and a
warning for operations slower than SLOW_OPERATION_MS.
"""

import logging
import time
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from core import logs, metrics, tracing

access_logger = logging.getLogger("taskql.access")
slow_logger = logging.getLogger("taskql.slow")

T = TypeVar("T")
OK, ERROR, REQUEST_ERROR = "ok", "error", "request_error"
_slow_seconds: float | None = 1.0


def configure(slow_operation_ms: int) -> None:
    """The slow-operation threshold (0: no warning)."""
    global _slow_seconds
    _slow_seconds = slow_operation_ms / 1000 if slow_operation_ms > 0 else None


def error_code(errors: list[GraphQLError] | None) -> str:
    """The first error's `extensions.code`, "" without errors."""
    if not errors:
        return ""
    extensions = errors[0].extensions or {}
    code = extensions.get("code")
    return code if isinstance(code, str) else "INTERNAL_SERVER_ERROR"


@dataclass(slots=True)
class Pending:
    """An operation over HTTP, until something records it."""

    started: float
    done: bool = False


_pending: ContextVar[Pending | None] = ContextVar("observe_pending", default=None)


def operation_started() -> Pending:
    """Note an HTTP operation's start (see `unrecorded`)."""
    pending = Pending(time.perf_counter())
    _pending.set(pending)
    return pending


def unrecorded(pending: Pending, code: str) -> None:
    """Record an operation refused before the extensions saw it (it did not parse, named no
    operation of its document, or its persisted query was unknown), as unnamed."""
    if not pending.done:
        finished(None, "unknown", REQUEST_ERROR, code, time.perf_counter() - pending.started, "")


def finished(
    name: str | None, kind: str, outcome: str, code: str, seconds: float, path: str
) -> None:
    """Record one operation: metrics, the access line, the slow warning."""
    pending = _pending.get()
    if pending is not None:
        pending.done = True
    if metrics.ON:
        metrics.record_operation(name, kind, outcome, code, seconds)
    facts = logs.request_facts()
    if facts is not None:
        facts.operation = name
        if facts.span is not None:
            facts.span.set_attribute("graphql.operation.name", name or "")
            facts.span.set_attribute("graphql.operation.type", kind)
    slow = _slow_seconds is not None and seconds >= _slow_seconds
    if not slow and not access_logger.isEnabledFor(logging.INFO):
        return
    extra = {
        "operation_type": kind,
        "outcome": outcome,
        "code": code or None,
        "read_path": path,
        "duration_ms": round(seconds * 1000, 3),
    }
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info(
            "%s %s %s%s %.1f ms",
            kind,
            name or "<unnamed>",
            outcome,
            f" {code}" if code else "",
            seconds * 1000,
            extra=extra,
        )
    if slow:
        slow_logger.warning(
            "slow operation %s (%s): %.1f ms",
            name or "<unnamed>",
            kind,
            seconds * 1000,
            extra=extra,
        )


_document_name: ContextVar[str | None] = ContextVar("observe_document_name", default=None)


def name_operation(requested: str | None, document: DocumentNode) -> None:
    """The compiled path's operation name: the request's, else its document's first one."""
    _document_name.set(requested or document_operation_name(document))


def compiled_answered(started: float) -> None:
    """A read the compiled path answered (it has no errors by construction)."""
    if metrics.ON:
        metrics.compiled_reads.inc()
    name = _document_name.get()
    finished(name, "query", OK, "", time.perf_counter() - started, "compiled")


def document_operation_name(document: DocumentNode | None) -> str | None:
    """The name of a document's first operation (what runs when the request names none)."""
    if document is None:
        return None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.name.value if definition.name is not None else None
    return None


def remember_user(user_id: int | None) -> None:
    """The caller, for the request's log lines and span."""
    facts = logs.request_facts()
    if facts is not None:
        facts.user_id = user_id
    if tracing.TRACER is not None and user_id is not None:
        tracing.current_span().set_attribute("enduser.id", str(user_id))


class ObserveOperations(SchemaExtension):
    """Metrics, spans and the access line for operations the executor runs."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with tracing.span("graphql.operation") as span:
            yield
            context = self.execution_context
            name = context.operation_name
            try:
                kind = context.operation_type.value
            except Exception:  # no document, or no operation by that name
                kind, name = "unknown", None
            result: Any = context.result
            errors: list[GraphQLError] = getattr(result, "errors", None) or []
            # Field errors have a path; errors before execution (a request error) have none.
            refused = not any(error.path for error in errors)
            outcome = OK if not errors else (REQUEST_ERROR if refused else ERROR)
            code = error_code(errors)
            if span is not None:
                span.set_attribute("graphql.operation.name", name or "")
                span.set_attribute("graphql.operation.type", kind)
                if code:
                    span.set_attribute("graphql.error.code", code)
            request = getattr(context.context, "request", None)
            http = getattr(request, "scope", {}).get("type") == "http"
            if metrics.ON and kind == "query" and http:
                metrics.executor_reads.inc()
            finished(name, kind, outcome, code, time.perf_counter() - started, "executor")

    def on_parse(self) -> Iterator[None]:
        with tracing.span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with tracing.span("graphql.validate"):
            yield

    def on_execute(self) -> Iterator[None]:
        with tracing.span("graphql.execute"):
            yield


def counts_subscriptions() -> bool:
    return metrics.ON


def is_subscription(document: DocumentNode | None, name: str | None) -> bool:
    """Whether the operation `name` picks in `document` is a subscription."""
    if document is None:
        return False
    operation = get_operation_ast(document, name)
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


async def counted_subscription(results: AsyncGenerator[T, None]) -> AsyncGenerator[T, None]:
    """`results`, counted as an active subscription until they end or the client leaves."""
    metrics.subscriptions_active.inc()
    try:
        async with aclosing(results):
            async for result in results:
                yield result
    finally:
        metrics.subscriptions_active.dec()
