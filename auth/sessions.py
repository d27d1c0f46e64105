"""Register, log in, rotate refresh tokens, log out, and resolve an access token to a user."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth.passwords import PasswordHasher, PasswordPolicyError, password_problem
from auth.throttle import LoginThrottle
from auth.tokens import Claims, ClaimsCache, InvalidToken, TokenCodec, TokenType
from core import metrics
from core.errors import BadUserInput, TooManyRequests, Unauthenticated
from db import refresh_tokens, users
from db.engine import SessionFactory
from db.models import EMAIL_MAX, Role, User

BAD_CREDENTIALS = "Incorrect email or password."
BAD_REFRESH = "The refresh token is invalid, expired or already used."
REVOKED = "This token has been revoked (a password, role or account change): log in again."


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    user: User


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Everything token- and password-related, bound to one configuration."""

    codec: TokenCodec
    hasher: PasswordHasher
    session_factory: SessionFactory
    throttle: LoginThrottle = field(compare=False, repr=False)
    verified: ClaimsCache = field(default_factory=ClaimsCache, compare=False, repr=False)

    async def register(
        self, *, email: str, password: str, full_name: str, role: Role = Role.USER
    ) -> User:
        email = users.normalize_email(email)
        if (
            "@" not in email
            or email.startswith("@")
            or email.endswith("@")
            or len(email) > EMAIL_MAX
        ):
            raise BadUserInput("Enter a valid email address.", field="email")
        full_name = users.clean_full_name(full_name)
        problem = password_problem(password)
        if problem:
            raise BadUserInput(problem, field="password")
        hashed = await self.hasher.hash(password)
        async with self.session_factory() as session, session.begin():
            return await users.create_user(
                session=session,
                email=email,
                full_name=full_name,
                hashed_password=hashed,
                role=role,
            )

    async def login(self, *, email: str, password: str, address: str | None = None) -> TokenPair:
        """Same error and same bcrypt cost whether the email is unknown or the password wrong.

        Throttled (TOO_MANY_REQUESTS, before any bcrypt work) after too many failures for the
        email or for the client `address`; a success resets the email's count.
        """
        try:
            attempt = await self.throttle.admit(email=email, address=address)
        except TooManyRequests:
            _count_login("throttled")
            raise
        async with self.session_factory() as session:
            user = await users.get_user_by_email(session=session, email=email)
        ok = await self.hasher.verify(password, user.hashed_password if user else None)
        if user is None or not ok or not user.is_active:
            _count_login("failure")
            raise Unauthenticated(BAD_CREDENTIALS)  # the attempt stays counted as a failure
        assert user.id is not None
        async with self.session_factory() as session, session.begin():
            await self.throttle.forgive(session=session, attempt=attempt)
            pair = await self._issue_pair(session=session, user=user, family=uuid.uuid4().hex)
        _count_login("success")
        return pair

    async def refresh(self, *, refresh_token: str) -> TokenPair:
        """Rotate: the token works once; a reused one revokes its whole family."""
        claims = self._decode(refresh_token, "refresh")
        async with self.session_factory() as session:
            async with session.begin():
                row = await refresh_tokens.get_refresh_token_for_update(
                    session=session, jti=claims.jti
                )
                if row is None or row.user_id != claims.user_id:
                    raise Unauthenticated(BAD_REFRESH)
                spent = row.used_at is not None or row.revoked_at is not None
                if spent or not await refresh_tokens.mark_used(session=session, jti=row.jti):
                    await refresh_tokens.revoke_family(session=session, family_id=row.family_id)
                    reuse = True
                else:
                    reuse = False
            if reuse:
                raise Unauthenticated(BAD_REFRESH)
            async with session.begin():
                user = await users.get_user(session=session, user_id=claims.user_id)
                if user is None or not user.is_active or user.token_version != claims.version:
                    raise Unauthenticated(BAD_REFRESH)
                return await self._issue_pair(session=session, user=user, family=row.family_id)

    async def logout(self, *, user: User, refresh_token: str) -> None:
        """Revoke the refresh token's family: that login session cannot be refreshed again."""
        claims = self._decode(refresh_token, "refresh")
        if claims.user_id != user.id:
            raise Unauthenticated(BAD_REFRESH)
        async with self.session_factory() as session, session.begin():
            row = await refresh_tokens.get_refresh_token_for_update(session=session, jti=claims.jti)
            if row is None:
                raise Unauthenticated(BAD_REFRESH)
            await refresh_tokens.revoke_family(session=session, family_id=row.family_id)

    def access_claims(self, token: str) -> Claims:
        """The claims of a well-formed, unexpired access token (UNAUTHENTICATED otherwise).

        Says nothing of the account: `user_for_access_token` checks that it is still active and
        that the token's version is still the user's (the compiled path's statement does too).
        """
        claims = self.verified.get(token, datetime.now(UTC))
        if claims is None:
            claims = self._decode(token, "access")
            self.verified.put(token, claims)
        return claims

    async def user_for_access_token(self, token: str) -> User:
        """The active user an access token names, if the token's version is still theirs;
        anything else is UNAUTHENTICATED."""
        claims = self.access_claims(token)
        async with self.session_factory() as session:
            user = await users.get_user(session=session, user_id=claims.user_id)
        if user is None or not user.is_active:
            raise Unauthenticated("This account no longer exists or has been deactivated.")
        if user.token_version != claims.version:
            raise Unauthenticated(REVOKED)
        return user

    async def change_password(self, *, user: User, current: str, new: str) -> None:
        """Needs the current password; revokes every token the user holds, access and refresh,
        this request's too."""
        if not await self.hasher.verify(current, user.hashed_password):
            raise BadUserInput("The current password is incorrect.", field="current_password")
        try:
            hashed = await self.hasher.hash(new)
        except PasswordPolicyError as exc:
            raise BadUserInput(str(exc), field="new_password") from exc
        assert user.id is not None
        async with self.session_factory() as session, session.begin():
            fresh = await users.get_user_for_update(session=session, user_id=user.id)
            if fresh is None:
                raise Unauthenticated("This account no longer exists or has been deactivated.")
            await users.set_password(session=session, user=fresh, hashed_password=hashed)
            await refresh_tokens.revoke_user_tokens(session=session, user_id=user.id)

    def _decode(self, token: str, expected: TokenType) -> Claims:
        try:
            return self.codec.decode(token, expected)
        except InvalidToken as exc:
            raise Unauthenticated(f"Invalid or expired {expected} token.") from exc

    async def _issue_pair(self, *, session: AsyncSession, user: User, family: str) -> TokenPair:
        assert user.id is not None
        version = user.token_version
        access = self.codec.issue(user.id, "access", version=version)
        refresh = self.codec.issue(user.id, "refresh", version=version, family=family)
        await refresh_tokens.store_refresh_token(
            session=session,
            jti=refresh.jti,
            family_id=family,
            user_id=user.id,
            expires_at=refresh.expires_at,
        )
        return TokenPair(self.codec.encode(access), self.codec.encode(refresh), user)


def _count_login(outcome: str) -> None:
    if metrics.ON:
        metrics.login_attempts.labels(outcome).inc()
