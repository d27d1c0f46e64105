"""OpenTelemetry traces, off unless the standard `OTEL_*` variables ask for them.

`OTEL_TRACES_EXPORTER=console` prints finished spans, `otlp` sends them to
`OTEL_EXPORTER_OTLP_ENDPOINT` when the `opentelemetry-exporter-otlp-proto-http` package is
installed (it is not a TaskQL dependency: without it `otlp` falls back to the console with a
warning), `none` or unset records nothing. `OTEL_SERVICE_NAME` names the service (`taskql`).
While tracing is off, `TRACER` is None and every hook returns after one check.
"""

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

logger = logging.getLogger("core.tracing")

TRACER: Tracer | None = None  # None: tracing is off
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            logger.warning(
                "OTEL_TRACES_EXPORTER=otlp but opentelemetry-exporter-otlp-proto-http is not "
                "installed: printing spans to the console instead"
            )
            return ConsoleSpanExporter()
        exporter: SpanExporter = OTLPSpanExporter()
        return exporter
    if name not in ("", "none"):
        logger.warning("OTEL_TRACES_EXPORTER=%s is not supported: tracing stays off", name)
    return None


def configure_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Start tracing when `OTEL_TRACES_EXPORTER` names an exporter; whether it is on."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = _exporter(environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower())
    if exporter is None:
        return False
    install(BatchSpanProcessor(exporter))
    return True


def install(processor: SpanProcessor, sampler: Sampler | None = None) -> TracerProvider:
    """Send spans to `processor` from now on (tests pass a simple in-memory one); the sampler
    is `OTEL_TRACES_SAMPLER`'s unless one is given."""
    global TRACER, _provider
    service = os.environ.get("OTEL_SERVICE_NAME", "taskql")
    _provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
    _provider.add_span_processor(processor)
    TRACER = _provider.get_tracer("taskql")
    return _provider


def uninstall() -> None:
    """Stop tracing (flushing what is pending)."""
    global TRACER, _provider
    if _provider is not None:
        _provider.shutdown()
    TRACER, _provider = None, None


def incoming_context(headers: Mapping[str, str]) -> Context | None:
    """The caller's trace context from a W3C `traceparent` header, if it sent one."""
    if "traceparent" not in headers:
        return None
    return _PROPAGATOR.extract(headers)


def start_span(
    name: str,
    *,
    context: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Span | None:
    """A started span (the caller ends it), or None while tracing is off."""
    tracer = TRACER
    if tracer is None:
        return None
    return tracer.start_span(name, context=context, kind=kind, attributes=attributes)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A child of the current span for the block, or nothing while tracing is off."""
    tracer = TRACER
    if tracer is None or _sampled_out():
        yield None
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def _sampled_out() -> bool:
    """Inside a trace the sampler dropped: its children would be dropped too, so skip them."""
    current = trace.get_current_span()
    return current.get_span_context().is_valid and not current.is_recording()


def child_span(name: str, attributes: dict[str, Any]) -> Span | None:
    """A started child of the current span (the caller ends it), or None outside a recorded
    trace: no span then, not even a dropped one."""
    tracer = TRACER
    if tracer is None or not trace.get_current_span().is_recording():
        return None
    return tracer.start_span(name, attributes=attributes)


def current_span() -> Span:
    """The span of the current context (a non-recording one outside any)."""
    return trace.get_current_span()
