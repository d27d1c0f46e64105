"""Data functions for users."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from core.errors import Conflict
from db.models import NAME_MAX, Role, User, utcnow
from db.paging import BY_ID, Page, PageRequest, SortKey, fetch_page
from db.refresh_tokens import revoke_user_tokens
from db.text import clean_text, refuse_nul, search_condition

USER_SORTS: dict[str, SortKey] = {
    "id": BY_ID,
    "created_at": SortKey(col(User.created_at), lambda u: u.created_at, "datetime"),
    "email": SortKey(col(User.email), lambda u: u.email, "text"),
    "full_name": SortKey(col(User.full_name), lambda u: u.full_name, "text"),
}


@dataclass(frozen=True, slots=True)
class UserFilter:
    search: Any = None  # the caller's text, or a bound parameter holding its search_pattern
    role: Role | None = None
    is_active: bool | None = None


class UserChanges(TypedDict, total=False):
    full_name: str
    role: Role
    is_active: bool


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(*, session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_user_for_update(*, session: AsyncSession, user_id: int) -> User | None:
    """The user, freshly read and locked until the transaction ends (PostgreSQL)."""
    return await session.get(User, user_id, with_for_update=True, populate_existing=True)


async def get_user_by_email(*, session: AsyncSession, email: str) -> User | None:
    """The user with this email in any letter case, if any."""
    if "\x00" in email:  # no stored email holds one, and PostgreSQL would refuse the query
        return None
    result = await session.execute(sa.select(User).where(col(User.email) == normalize_email(email)))
    return result.scalar_one_or_none()


async def any_admin(*, session: AsyncSession) -> bool:
    """Whether at least one ADMIN account exists (active or not)."""
    found = await session.execute(
        sa.select(col(User.id)).where(col(User.role) == Role.ADMIN).limit(1)
    )
    return found.first() is not None


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
        email=refuse_nul(normalize_email(email), field="email"),
        full_name=refuse_nul(full_name.strip(), field="full_name"),
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
    """Store a new password hash and revoke every token issued before (`user`: locked)."""
    user.hashed_password = hashed_password
    user.token_version += 1
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()


def clean_full_name(full_name: str) -> str:
    """Trimmed, 1 to NAME_MAX characters, else BAD_USER_INPUT on `fullName`."""
    return clean_text(
        full_name, field="full_name", what="Full name", min_length=1, max_length=NAME_MAX, trim=True
    )


def user_conditions(user_filter: UserFilter) -> list[ColumnElement[bool]]:
    """The filter's conditions on `user` rows (values may be bound parameters)."""
    conditions: list[ColumnElement[bool]] = []
    if user_filter.search is not None:
        search = user_filter.search
        conditions.append(search_condition(search, col(User.email), col(User.full_name)))
    if user_filter.role is not None:
        conditions.append(col(User.role) == user_filter.role)
    if user_filter.is_active is not None:
        conditions.append(col(User.is_active).is_(user_filter.is_active))
    return conditions


async def list_users(
    *, session: AsyncSession, user_filter: UserFilter, request: PageRequest
) -> Page[User]:
    """Every user matching the filter (an admin's listing), one page of them."""
    return await fetch_page(
        session,
        entity=User,
        id_column=col(User.id),
        conditions=user_conditions(user_filter),
        sort=USER_SORTS[request.sort],
        request=request,
    )


async def update_user(*, session: AsyncSession, user_id: int, changes: UserChanges) -> User | None:
    """Apply `changes`; None when the user is gone. A change of role or active flag revokes
    every token they hold (their token version moves on, their refresh tokens are revoked).

    Leaving no active admin is a CONFLICT. Role and activity changes lock the active admins first,
    always in id order (PostgreSQL), so two admins demoting each other at once cannot both succeed
    and cannot deadlock.
    """
    admins = await _lock_active_admins(session) if changes.keys() - {"full_name"} else set()
    user = await get_user_for_update(session=session, user_id=user_id)
    if user is None:
        return None
    if "full_name" in changes:
        user.full_name = clean_full_name(changes["full_name"])
    role = changes.get("role", user.role)
    is_active = changes.get("is_active", user.is_active)
    was_active_admin = user.role == Role.ADMIN and user.is_active
    if was_active_admin and not (role == Role.ADMIN and is_active) and not admins - {user_id}:
        raise Conflict(
            "This is the last active admin: make another user an admin before demoting or "
            "deactivating this one.",
            field="role" if role != Role.ADMIN else "is_active",
        )
    if role != user.role or is_active != user.is_active:
        user.token_version += 1
        await revoke_user_tokens(session=session, user_id=user_id)
    user.role, user.is_active, user.updated_at = role, is_active, utcnow()
    session.add(user)
    await session.flush()
    return user


async def _lock_active_admins(session: AsyncSession) -> set[int]:
    query = (
        sa.select(col(User.id))
        .where(col(User.role) == Role.ADMIN, col(User.is_active).is_(True))
        .order_by(col(User.id))
        .with_for_update()
    )
    return {admin_id for admin_id in (await session.execute(query)).scalars() if admin_id}
