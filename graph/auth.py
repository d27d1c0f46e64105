"""Authentication operations: register, login, refreshToken, logout and me."""

import strawberry

from core.errors import TooManyRequests
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.users import UserType


@strawberry.input
class RegisterInput:
    email: str
    password: str = strawberry.field(description="8 characters minimum, 72 bytes maximum.")
    full_name: str


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class RefreshTokenInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    refresh_token: str


@strawberry.type
class AuthPayload:
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    user: UserType


@strawberry.type
class LogoutPayload:
    ok: bool


def client_address(info: Info) -> str | None:
    """The client's address as the ASGI server reports it (behind a proxy, uvicorn's
    --proxy-headers and --forwarded-allow-ips decide whether that is the proxy or the client)."""
    client = info.context.request.client if info.context.request is not None else None
    return client.host if client is not None else None


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAuthenticated], description="The caller.")
    async def me(self, info: Info) -> UserType:
        return UserType.from_model(await info.context.require_user())


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a USER account.")
    async def register(self, info: Info, input: RegisterInput) -> UserType:
        user = await info.context.authenticator.register(
            email=input.email, password=input.password, full_name=input.full_name
        )
        return UserType.for_owner(user)

    @strawberry.mutation(
        description="Exchange an email and password for tokens. After too many failures for the "
        "email or from the client's address: TOO_MANY_REQUESTS with extensions.retryAfter."
    )
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        try:
            pair = await info.context.authenticator.login(
                email=input.email, password=input.password, address=client_address(info)
            )
        except TooManyRequests as exc:
            if info.context.response is not None:
                info.context.response.headers["Retry-After"] = str(exc.retry_after)
            raise
        return AuthPayload(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            user=UserType.for_owner(pair.user),
        )

    @strawberry.mutation(description="Spend a refresh token for a new pair (each works once).")
    async def refresh_token(self, info: Info, input: RefreshTokenInput) -> AuthPayload:
        pair = await info.context.authenticator.refresh(refresh_token=input.refresh_token)
        return AuthPayload(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            user=UserType.for_owner(pair.user),
        )

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Revoke a refresh token's session."
    )
    async def logout(self, info: Info, input: LogoutInput) -> LogoutPayload:
        user = await info.context.require_user()
        await info.context.authenticator.logout(user=user, refresh_token=input.refresh_token)
        return LogoutPayload(ok=True)
