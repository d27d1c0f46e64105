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


@dataclass(frozen=True, slots=True)
class Services:
    """Settings, the engine, its session factory, and the authenticator bound to them."""

    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    authenticator: Authenticator


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
    )
