"""Data functions for users."""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import Role, User, utcnow
from taskql.errors import Conflict


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    result = await session.execute(sa.select(User).where(col(User.email) == normalize_email(email)))
    return result.scalar_one_or_none()


async def get_users(*, session: AsyncSession, user_ids: Sequence[int]) -> list[User]:
    result = await session.execute(sa.select(User).where(User.id.in_(user_ids)))  # type: ignore[union-attr]
    return list(result.scalars())


async def create_user(
    *,
    session: AsyncSession,
    email: str,
    full_name: str,
    hashed_password: str,
    role: Role = Role.USER,
) -> User:
    """Insert a user; a taken email (in any letter case) is a CONFLICT."""
    user = User(
        email=normalize_email(email),
        full_name=full_name.strip(),
        hashed_password=hashed_password,
        role=role,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict("A user with this email already exists.", field="email") from exc
    return user


async def count_active_admins(*, session: AsyncSession) -> int:
    query = sa.select(sa.func.count()).where(
        col(User.role) == Role.ADMIN, col(User.is_active).is_(True)
    )
    return int((await session.execute(query)).scalar_one())


async def set_password(*, session: AsyncSession, user: User, hashed_password: str) -> None:
    user.hashed_password = hashed_password
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
