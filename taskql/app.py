"""The ASGI application factory: `uvicorn --factory taskql.app:create_app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.admins import ensure_first_admin
from auth.services import Services, build_services
from core.settings import Settings, SettingsError, get_settings
from db import migrate
from db.engine import Timeouts, make_engine
from db.outage import OUTAGE_BASES, describe, is_outage
from graph.context import context_getter
from graph.http import GraphQLHttp, TaskQLRouter
from graph.persisted import PersistedQueries, PersistedQueryFileError, load_allow_list
from graph.schema import TaskQLSchema, build_schema
from importer.runner import background_runner, settle_heap
from taskql import exports, ide, observe, reports
from taskql.cors import GraphQLCORSMiddleware
from taskql.csrf import MultipartCsrfGuard
from taskql.front import CompiledReadsFront
from taskql.http_errors import (
    http_exception_answer,
    invalid_parameters_answer,
    outage_answer,
    unavailable_answer,
)
from taskql.limits import BodySizeLimitMiddleware
from taskql.request_id import RequestIdMiddleware

logger = logging.getLogger("taskql.app")

MULTIPART_OVERHEAD = 1024 * 1024
GRAPHQL_PATH = "/graphql"


class TaskQLApp(FastAPI):
    """FastAPI with a fast lane: a POST to /graphql goes first to `front` (when compiled reads
    are on), which answers the reads it can and hands everything else to the whole app.

    The lane carries what every answer needs (the request id and its unhandled-error answer;
    metrics, traces and log facts when they are on) and skips FastAPI's and Starlette's
    middleware, the size limits (the front reads no more than `MAX_REQUEST_BYTES` itself, and
    hands a larger body on), the CSRF guard (multipart bodies never take the lane) and the
    router: about a twentieth of the worker's CPU on the `task` read benchmark. The request id
    and observability middleware note in the scope that they ran, so a request the lane hands
    on is not given an id or counted twice."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == GRAPHQL_PATH
        ):
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app without the lane: every middleware, then the router."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> FastAPI:
    """Build the app. Tests pass their own settings and engine and skip the lifespan."""
    settings = (settings or get_settings()).checked()
    engine = engine or make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeouts=Timeouts.of(settings),
    )
    services = build_services(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate.migrate_or_refuse(
            services.engine, settings.database_url, may_migrate=not settings.is_production
        )
        await ensure_first_admin(
            services.authenticator, settings.admin_email, settings.admin_password
        )
        # Each request leaves many short-lived objects; frozen, the start-up heap (schema,
        # models, modules) is no longer walked by the collections they trigger.
        settle_heap()
        await services.events.start()  # PostgreSQL: LISTEN before the first subscriber comes
        try:
            async with background_runner(services.session_factory, settings):
                yield
        finally:
            await services.events.stop()
            await services.engine.dispose()

    app = TaskQLApp(
        title="TaskQL",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        exception_handlers={
            HTTPException: http_exception_answer,
            RequestValidationError: invalid_parameters_answer,
        },
    )
    for outage in OUTAGE_BASES:  # a database outage is 503 SERVICE_UNAVAILABLE, not a bug's 500
        app.add_exception_handler(outage, outage_answer)
    app.state.services = services  # read through taskql.dependencies.get_services

    schema = build_schema(settings)
    if settings.compiled_reads:
        schema.compile_reads(services.engine, settings)
    persisted = persisted_queries(settings)
    graphql = TaskQLRouter(
        schema,
        http=graphql_http(schema, settings, persisted),
        context_getter=context_getter(services),
        allowed_origins=settings.ws_allowed_origins,
        multipart_uploads_enabled=True,
    )
    app.include_router(graphql, prefix=GRAPHQL_PATH)
    app.include_router(reports.router)
    app.include_router(exports.router)
    app.include_router(ide.router)
    add_health_routes(app, services)

    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_multipart_bytes=settings.import_max_bytes + MULTIPART_OVERHEAD,
    )
    app.add_middleware(MultipartCsrfGuard, path_prefix=GRAPHQL_PATH)
    if settings.cors_origins:
        app.add_middleware(GraphQLCORSMiddleware, allow_origins=settings.cors_origins)
    observed = observe.setup(app, settings, services)  # metrics, the request span, log facts
    app.add_middleware(RequestIdMiddleware)

    if schema.compiled is not None:
        front: ASGIApp = CompiledReadsFront(
            app.whole,
            reads=schema.compiled,
            authenticator=services.authenticator,
            persisted=persisted,
            path=GRAPHQL_PATH,
            max_bytes=settings.max_request_bytes,
            cors=bool(settings.cors_origins),
        )
        if observed:
            front = observe.ObservabilityMiddleware(front, front_paths=observe.FRONT_PATHS)
        app.front = RequestIdMiddleware(front)
    return app


def persisted_queries(settings: Settings) -> PersistedQueries:
    """The persisted-query store `PERSISTED_QUERIES` asks for (graph.persisted)."""
    allowed = None
    if settings.persisted_queries == "allowlist":
        if settings.persisted_query_file is None:
            raise SettingsError("PERSISTED_QUERIES=allowlist needs PERSISTED_QUERY_FILE")
        try:
            allowed = load_allow_list(settings.persisted_query_file)
        except PersistedQueryFileError as exc:
            raise SettingsError(f"PERSISTED_QUERY_FILE: {exc}") from exc
    return PersistedQueries(
        settings.persisted_queries,
        max_entries=settings.persisted_query_cache_size,
        allowed=allowed,
    )


def graphql_http(
    schema: TaskQLSchema, settings: Settings, persisted: PersistedQueries
) -> GraphQLHttp:
    """The GraphQL-over-HTTP handler, with the playground when `GRAPHIQL` allows it."""
    return GraphQLHttp(
        schema,
        persisted=persisted,
        batch_max_operations=settings.batch_max_operations,
        ide_page=partial(ide.ide_html, settings) if settings.graphiql_enabled else None,
    )


def add_health_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """The database answers and its migrations are at head."""
        engine, s = services.engine, services.settings
        # The engine's own timeouts answer first; this only bounds an engine without them.
        bound = max(s.database_connect_timeout_seconds, s.database_statement_timeout_seconds) + 1
        try:
            with anyio.fail_after(bound):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                reason = await migrate.pending_reason(engine)
        except Exception as exc:  # any failure to reach the database means "not ready"
            logger.warning("readiness check failed: %s", describe(exc))
            if not is_outage(exc):
                reason = f"database unreachable: {type(exc).__name__}"
                return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
            return unavailable_answer(
                status="unavailable", reason=f"database unavailable: {describe(exc)}"
            )
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok"})
