"""Operating the server: `GET /metrics`, and the middleware that counts HTTP requests, opens the
request's span and binds its log facts (README: Operating).

Nothing here is installed unless it is asked for: the middleware only with METRICS on, tracing
configured (OTEL_TRACES_EXPORTER) or LOG_FORMAT=json; the route only with METRICS on.
"""

import hmac
import logging
from datetime import UTC, datetime

import anyio
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.services import Services
from core import logs, metrics, tracing
from core.request_id import current_request_id
from core.settings import Settings, SettingsError
from db.observe import observe_engine, sample_pools
from db.queue_figures import queue_figures
from graph import observe

logger = logging.getLogger("taskql.metrics")

MIN_TOKEN_CHARS = 16
FIGURES_TIMEOUT_SECONDS = 2.0
TRACE_HEADERS = (b"traceparent", b"tracestate")
FRONT_PATHS = frozenset({"/graphql"})  # answered before routing by the compiled reads' front
SCOPE_KEY = "taskql.observed"  # set once a request is counted and traced (the fast lane's)


def setup(app: FastAPI, settings: Settings, services: Services) -> bool:
    """Turn on what the settings and the `OTEL_*` environment ask for; True when requests are
    to go through `ObservabilityMiddleware`."""
    if settings.metrics == "token" and len(settings.metrics_token or "") < MIN_TOKEN_CHARS:
        raise SettingsError(f"METRICS=token needs a METRICS_TOKEN of {MIN_TOKEN_CHARS}+ characters")
    metrics_on = settings.metrics != "off"
    metrics.enable(metrics_on)
    if tracing.TRACER is None:
        tracing.configure_from_environment()
    tracing_on = tracing.TRACER is not None
    observe.configure(settings.slow_operation_ms)
    observe_engine(services.engine, pool_metrics=metrics_on, sql_spans=tracing_on)
    if metrics_on:
        add_metrics_route(app, settings, services)
    if metrics_on or tracing_on or settings.log_format == "json":
        app.add_middleware(ObservabilityMiddleware, front_paths=FRONT_PATHS)
        return True
    return False


def add_metrics_route(app: FastAPI, settings: Settings, services: Services) -> None:
    token = (settings.metrics_token or "").encode() if settings.metrics == "token" else None

    @app.get("/metrics", include_in_schema=False)
    async def metrics_page(request: Request) -> Response:
        """The Prometheus text of every worker of this server."""
        if token is not None:
            sent = request.headers.get("authorization", "")
            scheme, _, value = sent.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token):
                return Response(
                    "metrics need METRICS_TOKEN as a bearer token\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        await refresh_queue_figures(services)
        sample_pools()
        return Response(metrics.scrape(), media_type=metrics.CONTENT_TYPE)


async def refresh_queue_figures(services: Services) -> None:
    """The import queue's gauges, read from the database (every runner's jobs)."""
    try:
        with anyio.fail_after(FIGURES_TIMEOUT_SECONDS):
            async with services.session_factory() as session:
                figures = await queue_figures(session=session)
    except Exception as exc:  # the scrape still answers, with the last figures
        logger.warning("metrics: could not read the import queue: %s", type(exc).__name__)
        return
    for status, count in figures.jobs_by_status.items():
        metrics.import_jobs.labels(status).set(count)
    metrics.import_queue_depth.set(figures.jobs_by_status.get("QUEUED", 0))
    oldest = figures.oldest_queued_at
    age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
    metrics.import_oldest_queued_seconds.set(max(age, 0.0))


def route_label(scope: Scope, answered_before_routing: frozenset[str]) -> str:
    """The route template that answered (`/imports/{job_id}/errors.csv`), for labels: a route
    without parameters is its path; a path no route matched is OTHER, unless a middleware in
    front of the router answers it (the compiled reads' front door)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if isinstance(template, str) and "{" in template:
        return template
    path: str = scope["path"]
    if route is not None or path in answered_before_routing:
        return path
    return metrics.OTHER


class _StatusWatch:
    """A send that notes the response's status (500 until one is sent)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 500

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class ObservabilityMiddleware:
    """HTTP requests by route and status, open WebSockets, the request's span, its log facts."""

    def __init__(self, app: ASGIApp, *, front_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.front_paths = front_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if SCOPE_KEY in scope:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = True
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        facts = logs.bind_request()
        watched = _StatusWatch(send)
        try:
            if tracing.TRACER is None:
                await self.app(scope, receive, watched.send)
            else:
                await self._traced(scope, receive, watched, facts)
        finally:
            if metrics.ON:
                route = route_label(scope, self.front_paths)
                metrics.record_http(route, scope["method"], str(watched.status))

    async def _traced(
        self, scope: Scope, receive: Receive, watched: "_StatusWatch", facts: logs.RequestFacts
    ) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in TRACE_HEADERS
        }
        span = tracing.start_span(
            scope["method"],
            context=tracing.incoming_context(headers),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "taskql.request_id": current_request_id(),
            },
        )
        assert span is not None
        facts.span = span
        with trace.use_span(span, end_on_exit=True, record_exception=True):
            await self.app(scope, receive, watched.send)
            route = route_label(scope, self.front_paths)
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", watched.status)
            if watched.status >= 500:
                span.set_status(Status(StatusCode.ERROR))

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not metrics.ON:
            await self.app(scope, receive, send)
            return
        metrics.websocket_connections.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            metrics.websocket_connections.dec()
