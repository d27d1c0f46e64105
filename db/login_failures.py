"""Data functions for failed logins, counted per account and per client address (the policy
that reads them is auth/throttle.py)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import LoginFailure

KEYS = {"account": col(LoginFailure.account_key), "address": col(LoginFailure.address)}


async def record_attempt(
    *, session: AsyncSession, account_key: str | None, address: str | None, at: datetime
) -> int:
    """Insert an attempt, counted as a failure until it is forgiven; its id orders it."""
    row = LoginFailure(account_key=account_key, address=address, failed_at=at)
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def failures_before(
    *, session: AsyncSession, scope: str, key: str, attempt_id: int, since: datetime, limit: int
) -> list[datetime]:
    """When the `limit` newest failures of `key` after `since` happened, newest first, counting
    only attempts that started before `attempt_id`."""
    column = KEYS[scope]
    query = (
        sa.select(col(LoginFailure.failed_at))
        .where(
            column == key,
            col(LoginFailure.failed_at) > since,
            col(LoginFailure.id) < attempt_id,
        )
        .order_by(col(LoginFailure.failed_at).desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def forget_attempt(*, session: AsyncSession, attempt_id: int) -> None:
    """Delete an attempt that turned out not to be a failure (it succeeded, or was refused
    before any password was checked)."""
    await session.execute(sa.delete(LoginFailure).where(col(LoginFailure.id) == attempt_id))


async def reset_account(*, session: AsyncSession, account_key: str) -> None:
    """Stop counting an account's failures; they still count for their addresses."""
    await session.execute(
        sa.update(LoginFailure)
        .where(col(LoginFailure.account_key) == account_key)
        .values(account_key=None)
    )


async def delete_expired(*, session: AsyncSession, before: datetime) -> int:
    """Delete the failures older than `before`; how many went."""
    result = await session.execute(
        sa.delete(LoginFailure).where(col(LoginFailure.failed_at) < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
