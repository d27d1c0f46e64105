"""Token revocation: a change of password, role or active flag kills every earlier access and
refresh token at once, on the executor and on the compiled read path (whose caller check stays
inside its one statement), and a new login works."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.accounts import DEFAULT_PASSWORD, TEST_SECRET, UserFactory
from tests.support.graphql import READ_PATH_HEADER, bearer
from tests.support.statements import counting_statements
from tests.support.world import World, pk

LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken user { id role } }
}
"""
REFRESH = """
mutation Refresh($input: RefreshTokenInput!) {
  refreshToken(input: $input) { accessToken refreshToken }
}
"""
CHANGE_PASSWORD = """
mutation Change($input: ChangePasswordInput!) { changePassword(input: $input) { user { id } } }
"""
UPDATE_USER = """
mutation Update($input: UpdateUserInput!) {
  updateUser(input: $input) { user { id role isActive } }
}
"""
ME = "{ me { id role } }"
TASKS = "{ tasks(first: 5) { totalCount edges { node { id title } } } }"
USERS = "{ users { totalCount } }"
NEW_PASSWORD = "a brand new password"


@dataclass
class Answer:
    body: dict[str, Any]
    path: str  # the X-TaskQL-Read-Path header

    @property
    def codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors") or []]

    def ok(self) -> Any:
        assert not self.body.get("errors"), self.body
        return self.body["data"]


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    get: bool = False,
) -> Answer:
    """A JSON POST (the compiled path's front door) or a GET (the schema's door)."""
    if get:
        response = await client.get("/graphql", params={"query": query}, headers=bearer(token))
    else:
        body = {"query": query, "variables": variables or {}}
        response = await client.post("/graphql", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    return Answer(response.json(), response.headers.get(READ_PATH_HEADER, ""))


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    answer = await post(client, LOGIN, {"input": {"email": email, "password": password}})
    tokens: dict[str, Any] = answer.ok()["login"]
    return tokens


async def assert_compiled(client: httpx.AsyncClient, token: str, *queries: str) -> None:
    """The token works, and the compiled path answers these reads."""
    for query in (ME, TASKS, *queries):
        for get in (False, True):
            answer = await post(client, query, token=token, get=get)
            answer.ok()
            assert answer.path == "compiled", (query, answer.path)


async def assert_revoked(
    client: httpx.AsyncClient, executor_client: httpx.AsyncClient, tokens: dict[str, Any]
) -> None:
    """The access token is refused on both paths and both doors, the refresh token too."""
    access = tokens["accessToken"]
    for query in (ME, TASKS):
        for get in (False, True):
            compiled = await post(client, query, token=access, get=get)
            assert compiled.codes == ["UNAUTHENTICATED"], (query, get, compiled.body)
            assert compiled.body["data"] is None
            assert compiled.path.startswith("executor"), compiled.path
        executor = await post(executor_client, query, token=access)
        assert executor.codes == ["UNAUTHENTICATED"], executor.body
    change = {"currentPassword": DEFAULT_PASSWORD, "newPassword": "mine again, surely"}
    mutation = await post(client, CHANGE_PASSWORD, {"input": change}, token=access)
    assert mutation.codes == ["UNAUTHENTICATED"], mutation.body
    refreshed = await post(client, REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refreshed.codes == ["UNAUTHENTICATED"], refreshed.body


async def test_password_change_revokes_every_token(
    client: httpx.AsyncClient, executor_client: httpx.AsyncClient, world: World
) -> None:
    old = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    other_session = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    await assert_compiled(client, old["accessToken"])  # its claims and its caller are cached

    change = {"currentPassword": DEFAULT_PASSWORD, "newPassword": NEW_PASSWORD}
    done = await post(client, CHANGE_PASSWORD, {"input": change}, token=old["accessToken"])
    assert done.ok()["changePassword"]["user"]["id"] == pk(world.assignee)

    # The caller note and the verified claims are still cached: the statement's own caller
    # check refuses the token, and the executor answers UNAUTHENTICATED.
    first = await post(client, TASKS, token=old["accessToken"])
    assert first.codes == ["UNAUTHENTICATED"]
    assert (
        first.path
        == "executor; the caller check refused the caller: revoked, deactivated or changed"
    )
    await assert_revoked(client, executor_client, old)
    await assert_revoked(client, executor_client, other_session)
    refused = await post(
        client, LOGIN, {"input": {"email": "assignee@example.com", "password": DEFAULT_PASSWORD}}
    )
    assert refused.codes == ["UNAUTHENTICATED"]
    new = await login(client, "assignee@example.com", NEW_PASSWORD)
    await assert_compiled(client, new["accessToken"])
    rotated = await post(client, REFRESH, {"input": {"refreshToken": new["refreshToken"]}})
    await assert_compiled(client, rotated.ok()["refreshToken"]["accessToken"])


async def test_role_change_revokes_every_token(
    client: httpx.AsyncClient, executor_client: httpx.AsyncClient, world: World
) -> None:
    old = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    await assert_compiled(client, old["accessToken"])
    assert (await post(client, USERS, token=old["accessToken"])).codes == ["FORBIDDEN"]

    promote = {"id": pk(world.assignee), "role": "ADMIN"}
    done = await post(client, UPDATE_USER, {"input": promote}, token=world.token("admin"))
    assert done.ok()["updateUser"]["user"]["role"] == "ADMIN"

    await assert_revoked(client, executor_client, old)
    new = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    assert new["user"]["role"] == "ADMIN"
    # Compiled at once: the caller note of the old role is for the old token version.
    await assert_compiled(client, new["accessToken"], USERS)

    demote = {"id": pk(world.assignee), "role": "USER"}
    await post(client, UPDATE_USER, {"input": demote}, token=world.token("admin"))
    await assert_revoked(client, executor_client, new)
    # The admin who changed the roles keeps their tokens.
    await assert_compiled(client, world.token("admin") or "", USERS)


async def test_deactivation_revokes_every_token_and_reactivation_needs_a_login(
    client: httpx.AsyncClient, executor_client: httpx.AsyncClient, world: World
) -> None:
    old = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    await assert_compiled(client, old["accessToken"])

    off = {"id": pk(world.assignee), "isActive": False}
    await post(client, UPDATE_USER, {"input": off}, token=world.token("admin"))
    await assert_revoked(client, executor_client, old)
    refused = await post(
        client, LOGIN, {"input": {"email": "assignee@example.com", "password": DEFAULT_PASSWORD}}
    )
    assert refused.codes == ["UNAUTHENTICATED"]

    on = {"id": pk(world.assignee), "isActive": True}
    await post(client, UPDATE_USER, {"input": on}, token=world.token("admin"))
    await assert_revoked(client, executor_client, old)  # reactivation revives no token
    new = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    await assert_compiled(client, new["accessToken"])


async def test_a_name_change_revokes_nothing(client: httpx.AsyncClient, world: World) -> None:
    tokens = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    rename = {"id": pk(world.assignee), "fullName": "Asa Renamed"}
    await post(client, UPDATE_USER, {"input": rename}, token=tokens["accessToken"])
    await assert_compiled(client, tokens["accessToken"])


async def test_the_compiled_read_still_takes_one_statement(
    client: httpx.AsyncClient, engine: AsyncEngine, world: World
) -> None:
    """The token version is checked inside the compiled statement, not by a query of its own."""
    old = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    change = {"currentPassword": DEFAULT_PASSWORD, "newPassword": NEW_PASSWORD}
    await post(client, CHANGE_PASSWORD, {"input": change}, token=old["accessToken"])
    new = await login(client, "assignee@example.com", NEW_PASSWORD)

    await post(client, TASKS, token=new["accessToken"])  # the caller is seen once
    for query in (TASKS, ME):
        with counting_statements(engine) as statements:
            answer = await post(client, query, token=new["accessToken"])
        assert answer.path == "compiled"
        assert answer.ok()
        assert len(statements) == 1, statements
        assert "token_version" in statements[0]
    # The old token is refused by that same statement's caller check, then by the executor.
    assert (await post(client, TASKS, token=old["accessToken"])).codes == ["UNAUTHENTICATED"]


async def test_tokens_carry_the_version(client: httpx.AsyncClient, world: World) -> None:
    tokens = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    for key in ("accessToken", "refreshToken"):
        assert jwt.decode(tokens[key], TEST_SECRET, algorithms=["HS256"])["ver"] == 0
    promote = {"id": pk(world.assignee), "role": "ADMIN"}
    await post(client, UPDATE_USER, {"input": promote}, token=world.token("admin"))
    tokens = await login(client, "assignee@example.com", DEFAULT_PASSWORD)
    for key in ("accessToken", "refreshToken"):
        assert jwt.decode(tokens[key], TEST_SECRET, algorithms=["HS256"])["ver"] == 1


def _access_token(user_id: int, **extra: object) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "type": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": "legacy",
        **extra,
    }
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


async def test_a_token_without_a_version_is_version_zero(
    client: httpx.AsyncClient, world: World, make_user: UserFactory
) -> None:
    """Tokens issued before versions existed work until the account's first revocation."""
    legacy = _access_token(pk(world.assignee))
    await assert_compiled(client, legacy)
    promote = {"id": pk(world.assignee), "role": "ADMIN"}
    await post(client, UPDATE_USER, {"input": promote}, token=world.token("admin"))
    for get in (False, True):
        assert (await post(client, ME, token=legacy, get=get)).codes == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("version", ["0", -1, True, 1.5, None])
async def test_a_malformed_version_is_refused(
    client: httpx.AsyncClient, world: World, version: object
) -> None:
    token = _access_token(pk(world.assignee), ver=version)
    assert (await post(client, ME, token=token)).codes == ["UNAUTHENTICATED"]
