"""The ASGI application factory: `uvicorn --factory taskql.app:create_app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.admins import ensure_first_admin
from auth.services import Services, build_services
from core.settings import Settings, get_settings
from db import migrate
from db.engine import make_engine
from graph.context import TaskQLRouter, context_getter
from graph.schema import build_schema
from importer.runner import background_runner, settle_heap
from taskql import reports
from taskql.csrf import MultipartCsrfGuard
from taskql.front import CompiledReadsFront
from taskql.limits import BodySizeLimitMiddleware
from taskql.request_id import RequestIdMiddleware

logger = logging.getLogger("taskql.app")

MULTIPART_OVERHEAD = 1024 * 1024


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> FastAPI:
    """Build the app. Tests pass their own settings and engine and skip the lifespan."""
    settings = (settings or get_settings()).checked()
    services = build_services(settings, engine or make_engine(settings.database_url))

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
        try:
            async with background_runner(services.session_factory, settings):
                yield
        finally:
            await services.engine.dispose()

    app = FastAPI(title="TaskQL", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services  # read through taskql.dependencies.get_services

    schema = build_schema(settings)
    if settings.compiled_reads:
        schema.compile_reads(services.engine, settings)
    graphql = TaskQLRouter(
        schema,
        context_getter=context_getter(services),
        graphql_ide="graphiql",
        allowed_origins=settings.ws_allowed_origins,
        multipart_uploads_enabled=True,
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(reports.router)
    add_health_routes(app, services)

    if schema.compiled is not None:  # innermost: inside the size limits, CORS and request ids
        app.add_middleware(
            CompiledReadsFront,
            reads=schema.compiled,
            authenticator=services.authenticator,
            path="/graphql",
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_multipart_bytes=settings.import_max_bytes + MULTIPART_OVERHEAD,
    )
    app.add_middleware(MultipartCsrfGuard, path_prefix="/graphql")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-Request-ID",
                "Apollo-Require-Preflight",
                "X-Requested-With",
            ],
            expose_headers=["X-Request-ID", "Content-Disposition"],
        )
    app.add_middleware(RequestIdMiddleware)
    return app


def add_health_routes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """The database answers and its migrations are at head."""
        engine = services.engine
        try:
            with anyio.fail_after(5):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                reason = await migrate.pending_reason(engine)
        except Exception as exc:  # any failure to reach the database means "not ready"
            logger.warning("readiness check failed: %s", exc)
            return JSONResponse(
                {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"},
                status_code=503,
            )
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ok"})
