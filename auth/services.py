"""The app's long-lived services, built once at start-up and handed to every request.

GraphQL's context and the REST routes both receive this one typed object (never `app.state`
attributes fished out by name).
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from auth.passwords import hasher_for
from auth.sessions import Authenticator
from auth.throttle import Limit, LoginThrottle
from auth.tokens import TokenCodec
from core.settings import Settings
from db.engine import SessionFactory, make_session_factory
from db.listener import EventHub, PostgresHub, asyncpg_dsn, local_hub


@dataclass(frozen=True, slots=True)
class Services:
    """Settings, the engine, its session factory, the authenticator bound to them, and the
    process's hub of live events."""

    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    authenticator: Authenticator
    events: EventHub


def event_hub(settings: Settings, engine: AsyncEngine) -> EventHub:
    """PostgreSQL: a LISTEN connection for this process; SQLite: the in-process hub."""
    if engine.dialect.name == "postgresql":
        return PostgresHub(
            asyncpg_dsn(engine.url),
            max_subscribers=settings.subscriptions_per_process,
            check_seconds=settings.events_check_seconds,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    return local_hub(engine.url, max_subscribers=settings.subscriptions_per_process)


def build_services(settings: Settings, engine: AsyncEngine) -> Services:
    """Wire the services for `settings` over `engine`."""
    session_factory = make_session_factory(engine)
    codec = TokenCodec(
        secret=settings.jwt_secret_key,
        algorithm=settings.jwt_algorithm,
        access_ttl=timedelta(minutes=settings.access_token_expire_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_expire_days),
    )
    throttle = LoginThrottle(
        session_factory=session_factory,
        account=Limit(
            settings.login_max_failures, timedelta(seconds=settings.login_window_seconds)
        ),
        address=Limit(
            settings.login_address_max_failures,
            timedelta(seconds=settings.login_address_window_seconds),
        ),
    )
    authenticator = Authenticator(
        codec=codec,
        hasher=hasher_for(settings.bcrypt_rounds),
        session_factory=session_factory,
        throttle=throttle,
    )
    return Services(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        authenticator=authenticator,
        events=event_hub(settings, engine),
    )
