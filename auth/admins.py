"""The first admin: from `taskql create-admin`, or from TASKQL_ADMIN_* on start."""

import logging

from auth.sessions import Authenticator
from core.errors import Conflict
from db import users
from db.models import Role, User

logger = logging.getLogger("taskql.admins")


async def create_admin(
    authenticator: Authenticator, *, email: str, password: str, full_name: str = "Administrator"
) -> User:
    """Create an ADMIN account; the same rules as `register` apply."""
    return await authenticator.register(
        email=email, password=password, full_name=full_name, role=Role.ADMIN
    )


async def ensure_first_admin(
    authenticator: Authenticator, email: str | None, password: str | None
) -> None:
    """Create the admin named by TASKQL_ADMIN_EMAIL/PASSWORD when no admin exists yet."""
    if not email or not password:
        return
    async with authenticator.session_factory() as session:
        if await users.any_admin(session=session):
            return
    try:
        await create_admin(authenticator, email=email, password=password)
    except Conflict:
        logger.warning("TASKQL_ADMIN_EMAIL %s belongs to an existing non-admin user", email)
        return
    logger.info("created the first admin, %s, from TASKQL_ADMIN_EMAIL", email)
