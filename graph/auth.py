"""Authentication operations: register, login, refreshToken, logout and me."""

import strawberry

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

    @strawberry.mutation(description="Exchange an email and password for tokens.")
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        pair = await info.context.authenticator.login(email=input.email, password=input.password)
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
