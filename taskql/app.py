"""The ASGI application factory: `uvicorn --factory taskql.app:create_app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.passwords import hasher_for
from auth.sessions import Authenticator
from auth.tokens import TokenCodec
from core.settings import Settings, SettingsError, get_settings
from db import migrate
from db.engine import make_engine, make_session_factory
from graph.context import TaskQLRouter, get_context
from graph.schema import build_schema
from importer.runner import background_runner, settle_heap
from taskql import reports
from taskql.bootstrap import ensure_admin_from_env
from taskql.csrf import MultipartCsrfGuard
from taskql.limits import BodySizeLimitMiddleware
from taskql.request_id import RequestIdMiddleware

logger = logging.getLogger("taskql.app")

MULTIPART_OVERHEAD = 1024 * 1024


def make_authenticator(settings: Settings, engine: AsyncEngine) -> Authenticator:
    codec = TokenCodec(
        secret=settings.jwt_secret_key,
        algorithm=settings.jwt_algorithm,
        access_ttl=timedelta(minutes=settings.access_token_expire_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_expire_days),
    )
    return Authenticator(
        codec=codec,
        hasher=hasher_for(settings.bcrypt_rounds),
        session_factory=make_session_factory(engine),
    )


async def prepare_database(settings: Settings, engine: AsyncEngine) -> None:
    """Development migrates on start; production refuses an unmigrated database."""
    reason = await migrate.pending_reason(engine)
    if reason is None:
        return
    if settings.is_production:
        raise SettingsError(
            f"Refusing to start: {reason}. Run `taskql migrate` (or `make migrate`) first."
        )
    logger.info("applying migrations (%s)", reason)
    await anyio.to_thread.run_sync(migrate.upgrade, settings.database_url)


def create_app(settings: Settings | None = None, engine: AsyncEngine | None = None) -> FastAPI:
    """Build the app. Tests pass their own settings and engine and skip the lifespan."""
    settings = (settings or get_settings()).checked()
    engine = engine or make_engine(settings.database_url)
    authenticator = make_authenticator(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await prepare_database(settings, engine)
        await ensure_admin_from_env(authenticator, settings.admin_email, settings.admin_password)
        # Each request leaves many short-lived objects; frozen, the start-up heap (schema,
        # models, modules) is no longer walked by the collections they trigger.
        settle_heap()
        try:
            async with background_runner(authenticator.session_factory, settings):
                yield
        finally:
            await engine.dispose()

    app = FastAPI(title="TaskQL", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = authenticator.session_factory
    app.state.authenticator = authenticator

    graphql = TaskQLRouter(
        build_schema(settings),
        context_getter=get_context,
        graphql_ide="graphiql",
        allowed_origins=settings.ws_allowed_origins,
        multipart_uploads_enabled=True,
    )
    app.include_router(graphql, prefix="/graphql")
    app.include_router(reports.router)
    add_health_routes(app)

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


def add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """The database answers and its migrations are at head."""
        engine: AsyncEngine = app.state.engine
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
