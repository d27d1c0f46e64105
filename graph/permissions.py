"""Permission classes: thin adapters from the GraphQL field to the caller's identity and policy."""

from typing import Any

from strawberry.permission import BasePermission

from db.models import Role
from graph.context import Info


class IsAuthenticated(BasePermission):
    """Any active user with a valid access token."""

    message = "Authentication required: send an access token as `Authorization: Bearer <token>`."
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return await info.context.current_user() is not None


class IsAdmin(BasePermission):
    """An ADMIN. Anonymous callers are told to authenticate, users that they may not."""

    message = "Only an admin may do this."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        return user.role == Role.ADMIN
