"""FastAPI dependencies of the REST routes: the typed services and who the caller is.

Permission rules stay in auth/policy.py; these only adapt them to HTTP, declared on the routes
with `Annotated` aliases, never written inline.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from auth import policy
from auth.services import Services
from auth.tokens import bearer_token
from core.errors import Unauthenticated
from db.models import User

NEED_BEARER = {"WWW-Authenticate": "Bearer"}


def get_services(request: Request) -> Services:
    """The services the app was built with (see taskql.app.create_app)."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def optional_caller(request: Request, services: ServicesDep) -> User | None:
    """The user of a bearer token, None without one; a bad token is 401."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    try:
        return await services.authenticator.user_for_access_token(token)
    except Unauthenticated as exc:
        raise HTTPException(401, exc.message, headers=NEED_BEARER) from exc


OptionalCaller = Annotated[User | None, Depends(optional_caller)]


def admin_only(user: User, message: str) -> User:
    """`user` when policy says they are an admin, else 403 with `message`."""
    if not policy.is_admin(user):
        raise HTTPException(403, message)
    return user
