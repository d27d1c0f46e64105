"""JWT access and refresh tokens with typed claims.

Every token carries its user's token version (`ver`): the user's row holds the current one, and
a token with an older one is refused where the user is loaded (auth/sessions.py) and in the
compiled read path's caller guard. A token without `ver` (issued before versions existed) is
read as version 0, the version every account started at.
"""

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["sub", "type", "iat", "exp", "jti"]


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired or of the wrong type."""


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    type: TokenType
    jti: str
    issued_at: datetime
    expires_at: datetime
    version: int  # the user's token version when it was issued
    family: str | None = None


@dataclass(frozen=True, slots=True)
class TokenCodec:
    secret: str
    algorithm: str
    access_ttl: timedelta
    refresh_ttl: timedelta

    def issue(
        self, user_id: int, token_type: TokenType, *, version: int, family: str | None = None
    ) -> Claims:
        now = datetime.now(UTC).replace(microsecond=0)
        ttl = self.refresh_ttl if token_type == "refresh" else self.access_ttl  # noqa: S105
        return Claims(
            user_id=user_id,
            type=token_type,
            jti=uuid.uuid4().hex,
            issued_at=now,
            expires_at=now + ttl,
            version=version,
            family=family,
        )

    def encode(self, claims: Claims) -> str:
        payload: dict[str, object] = {
            "sub": str(claims.user_id),
            "type": claims.type,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": claims.jti,
            "ver": claims.version,
        }
        if claims.family is not None:
            payload["fam"] = claims.family
        return jwt.encode(payload, self.secret, algorithm=self.algorithm)

    def decode(self, token: str, expected: TokenType) -> Claims:
        """Verify signature, expiry and type. Only the configured algorithm is accepted."""
        try:
            payload = jwt.decode(
                token,
                self.secret,
                algorithms=[self.algorithm],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if payload.get("type") != expected:
            raise InvalidToken(f"expected a {expected} token")
        try:
            user_id = int(payload["sub"])
        except (TypeError, ValueError) as exc:
            raise InvalidToken("malformed subject") from exc
        version = payload.get("ver", 0)
        if type(version) is not int or version < 0:
            raise InvalidToken("malformed token version")
        family = payload.get("fam")
        return Claims(
            user_id=user_id,
            type=expected,
            jti=str(payload["jti"]),
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            version=version,
            family=str(family) if family is not None else None,
        )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class ClaimsCache:
    """Recently verified access tokens and their claims, so a client that sends the same token
    again is not verified again until the token expires. Keyed by the whole token text: the same
    text always verifies the same way under one secret.

    It remembers signatures, never verdicts on the account: whether the token's version is still
    the user's is checked against the database on every request (see the module docstring)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._claims: OrderedDict[str, Claims] = OrderedDict()

    def get(self, token: str, now: datetime) -> Claims | None:
        """The claims of a token seen before and not yet expired."""
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims.expires_at <= now:
            del self._claims[token]
            return None
        self._claims.move_to_end(token)
        return claims

    def put(self, token: str, claims: Claims) -> None:
        self._claims[token] = claims
        while len(self._claims) > self.size:
            self._claims.popitem(last=False)
