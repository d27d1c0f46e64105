"""The per-request context: settings, a session factory, the caller, and DataLoaders."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from auth.services import Services
from auth.sessions import Authenticator
from auth.tokens import bearer_token
from core.errors import Unauthenticated
from core.settings import Settings
from db.engine import SessionFactory
from db.models import User
from graph.loaders import Loaders


@dataclass
class Context(BaseContext):
    settings: Settings
    session_factory: SessionFactory
    authenticator: Authenticator
    loaders: Loaders
    token: str | None = None
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
        return self._user

    async def require_user(self) -> User:
        user = await self.current_user()
        if user is None:
            raise Unauthenticated(
                "Authentication required: send an access token as `Authorization: Bearer <token>`."
            )
        return user

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
