"""Refresh-token bookkeeping: rotation within a family, reuse detection, revocation."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import RefreshToken, utcnow


async def store_refresh_token(
    *, session: AsyncSession, jti: str, family_id: str, user_id: int, expires_at: datetime
) -> None:
    session.add(RefreshToken(jti=jti, family_id=family_id, user_id=user_id, expires_at=expires_at))
    await session.flush()


async def get_refresh_token_for_update(*, session: AsyncSession, jti: str) -> RefreshToken | None:
    """Load and lock the row, so two concurrent refreshes cannot both spend it (PostgreSQL)."""
    query = sa.select(RefreshToken).where(col(RefreshToken.jti) == jti).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def mark_used(*, session: AsyncSession, jti: str) -> bool:
    """Spend a token. False when it was already spent or revoked (a lost race counts as reuse)."""
    result = await session.execute(
        sa.update(RefreshToken)
        .where(
            col(RefreshToken.jti) == jti,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_family(*, session: AsyncSession, family_id: str) -> None:
    await session.execute(
        sa.update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_user_tokens(*, session: AsyncSession, user_id: int) -> None:
    """Revoke every refresh token a user holds (password change, deactivation)."""
    await session.execute(
        sa.update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
