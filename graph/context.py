"""The per-request context: settings, a session factory, the caller, and DataLoaders."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from auth.services import Services
from auth.sessions import Authenticator
from auth.tokens import bearer_token
from core.errors import TooManySubscriptions, Unauthenticated
from core.settings import Settings
from db.engine import SessionFactory
from db.events import Topic
from db.listener import EventHub, Inbox, Wants
from db.models import User
from graph.loaders import Loaders
from graph.observe import remember_user


@dataclass
class Context(BaseContext):
    settings: Settings
    session_factory: SessionFactory
    authenticator: Authenticator
    loaders: Loaders
    events: EventHub
    token: str | None = None
    open_subscriptions: int = 0  # on this WebSocket connection
    _user: User | None = field(default=None, repr=False)
    _resolved: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__()

    async def current_user(self) -> User | None:
        """The caller, or None without a token. A bad token is UNAUTHENTICATED."""
        if not self._resolved:
            self._user = (
                await self.authenticator.user_for_access_token(self.token) if self.token else None
            )
            self._resolved = True
            if self._user is not None:
                remember_user(self._user.id)
        return self._user

    async def require_user(self) -> User:
        user = await self.current_user()
        if user is None:
            raise Unauthenticated(
                "Authentication required: send an access token as `Authorization: Bearer <token>`."
            )
        return user

    @asynccontextmanager
    async def inbox(self, topics: Iterable[Topic], wants: Wants) -> AsyncIterator[Inbox]:
        """A subscription's inbox of live events, within the per-connection and per-process
        limits (TOO_MANY_SUBSCRIPTIONS beyond them)."""
        limit = self.settings.subscriptions_per_connection
        if self.open_subscriptions >= limit:
            raise TooManySubscriptions(
                f"A connection may hold at most {limit} subscriptions: complete one first."
            )
        self.open_subscriptions += 1
        try:
            queue_size = self.settings.event_queue_size
            async with self.events.subscribe(topics, wants, queue_size=queue_size) as inbox:
                yield inbox
        finally:
            self.open_subscriptions -= 1

    def set_token(self, token: str | None) -> None:
        """Use a token that arrived outside the HTTP headers (WebSocket connection_init)."""
        self.token = token
        self._user = None
        self._resolved = False


Info = StrawberryInfo[Context, Any]


ContextGetter = Callable[[HTTPConnection], Awaitable[Context]]


def context_getter(services: Services) -> ContextGetter:
    """The router's context getter: a Context over `services` for every request (and every
    WebSocket connection)."""

    async def get_context(connection: HTTPConnection) -> Context:
        return Context(
            settings=services.settings,
            session_factory=services.session_factory,
            authenticator=services.authenticator,
            loaders=Loaders(services.session_factory),
            events=services.events,
            token=bearer_token(connection.headers.get("authorization")),
        )

    return get_context


def connection_init_token(params: object) -> str | None:
    """The access token in a graphql-transport-ws `connection_init` payload: `token`, or an
    `Authorization: Bearer` entry, as browser clients cannot set WebSocket headers."""
    if not isinstance(params, dict):
        return None
    token = params.get("token") or params.get("accessToken")
    if isinstance(token, str) and token.strip():
        return token.strip()
    header = params.get("Authorization") or params.get("authorization")
    if isinstance(header, str):
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
