"""Users over GraphQL: who sees whom and which fields, listing, updateUser, changePassword."""

import asyncio
from typing import Any

import pytest

from core.errors import Conflict
from db import users
from db.engine import SessionFactory
from db.models import Role
from tests.support.accounts import DEFAULT_PASSWORD, TokenFor, UserFactory
from tests.support.graphql import Gql
from tests.support.world import World, pk

USER = """
query User($id: Int!) { user(id: $id) { id email fullName } }
"""
USER_DETAILS = """
query User($id: Int!) {
  user(id: $id) { email role isActive createdAt projects { totalCount edges { node { name } } } }
}
"""
USERS = """
query Users($filter: UserFilter, $orderBy: UserOrder, $first: Int! = 20, $after: String) {
  users(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { email } }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateUserInput!) {
  updateUser(input: $input) { user { id fullName role isActive } }
}
"""
CHANGE_PASSWORD = """
mutation Change($input: ChangePasswordInput!) { changePassword(input: $input) { user { email } } }
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken user { role isActive } }
}
"""
REFRESH = """
mutation Refresh($input: RefreshTokenInput!) { refreshToken(input: $input) { accessToken } }
"""
ME = "{ me { email role isActive createdAt projects { edges { node { name } } } } }"


def field_of(result: Any, code: str = "BAD_USER_INPUT") -> str:
    assert result.codes == [code], result.body
    field: str = result.errors[0]["extensions"]["field"]
    return field


async def login(gql: Gql, email: str, password: str = DEFAULT_PASSWORD) -> Any:
    return await gql(LOGIN, {"input": {"email": email, "password": password}})


async def test_users_see_themselves_and_who_shares_a_project(gql: Gql, world: World) -> None:
    seen = await gql(USER, {"id": pk(world.assignee)}, token=world.token("member"))
    assert seen.ok()["user"] == {
        "id": pk(world.assignee),
        "email": "assignee@example.com",
        "fullName": "Asa Assignee",
    }
    # The rest of another user's record is for admins.
    details = await gql(USER_DETAILS, {"id": pk(world.assignee)}, token=world.token("member"))
    assert details.codes == ["FORBIDDEN"] * 4
    assert {tuple(e["path"]) for e in details.errors} == {
        ("user", "role"),
        ("user", "isActive"),
        ("user", "createdAt"),
        ("user", "projects"),
    }
    assert details.data["user"]["email"] == "assignee@example.com"
    # The admin is no member of anything: invisible to USERs.
    hidden = await gql(USER, {"id": pk(world.admin)}, token=world.token("member"))
    assert field_of(hidden, "NOT_FOUND") == "id"
    assert (await gql(USER, {"id": 999}, token=world.token("admin"))).codes == ["NOT_FOUND"]

    me = (await gql(ME, token=world.token("assignee"))).ok()["me"]
    assert (me["role"], me["isActive"]) == ("USER", True)
    assert [e["node"]["name"] for e in me["projects"]["edges"]] == ["Apollo"]
    as_admin = await gql(USER_DETAILS, {"id": pk(world.assignee)}, token=world.token("admin"))
    assert as_admin.ok()["user"]["projects"]["totalCount"] == 1


async def test_login_shows_the_user_their_own_record(gql: Gql, world: World) -> None:
    user = (await login(gql, "member@example.com")).ok()["login"]["user"]
    assert user == {"role": "USER", "isActive": True}


async def test_admins_list_and_filter_users(gql: Gql, world: World, make_user: UserFactory) -> None:
    await make_user(email="zoe@example.com", full_name="Zoë Quiet", is_active=False)
    admin = world.token("admin")

    async def emails(**variables: Any) -> list[str]:
        data = (await gql(USERS, variables, token=admin)).ok()["users"]
        return [e["node"]["email"] for e in data["edges"]]

    assert len(await emails()) == 5
    assert await emails(filter={"search": "OUTSIDER"}) == ["outsider@example.com"]
    assert await emails(filter={"search": "quiet"}) == ["zoe@example.com"]
    assert await emails(filter={"role": "ADMIN"}) == ["admin@example.com"]
    assert await emails(filter={"isActive": False}) == ["zoe@example.com"]
    by_email = {"field": "EMAIL", "direction": "DESC"}
    assert await emails(orderBy=by_email, first=2) == ["zoe@example.com", "outsider@example.com"]
    page = (await gql(USERS, {"orderBy": by_email, "first": 2}, token=admin)).ok()["users"]
    rest = await emails(orderBy=by_email, after=page["pageInfo"]["endCursor"])
    assert rest == ["member@example.com", "assignee@example.com", "admin@example.com"]


async def test_users_change_their_own_name_only(gql: Gql, world: World) -> None:
    mine = {"id": pk(world.assignee), "fullName": "  Asa Renamed "}
    result = await gql(UPDATE, {"input": mine}, token=world.token("assignee"))
    assert result.ok()["updateUser"]["user"]["fullName"] == "Asa Renamed"
    blank = {"id": pk(world.assignee), "fullName": " "}
    assert field_of(await gql(UPDATE, {"input": blank}, token=world.token("assignee"))) == (
        "fullName"
    )
    nulled = {"id": pk(world.assignee), "role": None}
    assert field_of(await gql(UPDATE, {"input": nulled}, token=world.token("admin"))) == "role"


async def test_promotion_gives_admin_powers(gql: Gql, world: World) -> None:
    promote = {"id": pk(world.assignee), "role": "ADMIN"}
    user = (await gql(UPDATE, {"input": promote}, token=world.token("admin"))).ok()
    assert user["updateUser"]["user"]["role"] == "ADMIN"
    # A role change revokes the tokens of the old role; a new login carries the new one.
    assert (await gql(USERS, token=world.token("assignee"))).codes == ["UNAUTHENTICATED"]
    token = (await login(gql, "assignee@example.com")).ok()["login"]["accessToken"]
    listing = await gql(USERS, token=token)
    assert listing.ok()["users"]["totalCount"] == 4


async def test_deactivation_revokes_tokens(gql: Gql, world: World) -> None:
    tokens = (await login(gql, "assignee@example.com")).ok()["login"]
    off = {"id": pk(world.assignee), "isActive": False}
    result = (await gql(UPDATE, {"input": off}, token=world.token("admin"))).ok()
    assert result["updateUser"]["user"]["isActive"] is False

    assert (await gql(ME, token=tokens["accessToken"])).codes == ["UNAUTHENTICATED"]
    refresh = await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refresh.codes == ["UNAUTHENTICATED"]
    assert (await login(gql, "assignee@example.com")).codes == ["UNAUTHENTICATED"]

    on = {"id": pk(world.assignee), "isActive": True}
    (await gql(UPDATE, {"input": on}, token=world.token("admin"))).ok()
    again = (await login(gql, "assignee@example.com")).ok()["login"]
    # Reactivation does not bring back the revoked refresh token.
    refresh = await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refresh.codes == ["UNAUTHENTICATED"]
    assert (await gql(ME, token=again["accessToken"])).ok()["me"]["isActive"] is True


async def test_the_last_active_admin_stays(
    gql: Gql, world: World, make_user: UserFactory, token_for: TokenFor
) -> None:
    admin = world.token("admin")
    demote = {"id": pk(world.admin), "role": "USER"}
    assert field_of(await gql(UPDATE, {"input": demote}, token=admin), "CONFLICT") == "role"
    deactivate = {"id": pk(world.admin), "isActive": False}
    assert field_of(await gql(UPDATE, {"input": deactivate}, token=admin), "CONFLICT") == (
        "isActive"
    )
    # An inactive admin does not count.
    await make_user(role=Role.ADMIN, is_active=False)
    assert (await gql(UPDATE, {"input": demote}, token=admin)).codes == ["CONFLICT"]
    # With another active admin, stepping down is fine.
    second = await make_user(role=Role.ADMIN)
    result = await gql(UPDATE, {"input": demote}, token=admin)
    assert result.ok()["updateUser"]["user"]["role"] == "USER"
    # ...and now the second is the last one.
    last = {"id": pk(second), "isActive": False}
    assert (await gql(UPDATE, {"input": last}, token=token_for(second))).codes == ["CONFLICT"]


async def test_change_password(gql: Gql, world: World) -> None:
    tokens = (await login(gql, "member@example.com")).ok()["login"]
    access = tokens["accessToken"]

    async def change(current: str, new: str) -> Any:
        variables = {"input": {"currentPassword": current, "newPassword": new}}
        return await gql(CHANGE_PASSWORD, variables, token=access)

    assert field_of(await change("wrong password", "a new long secret")) == "currentPassword"
    assert field_of(await change(DEFAULT_PASSWORD, "short")) == "newPassword"
    result = await change(DEFAULT_PASSWORD, "a new long secret")
    assert result.ok() == {"changePassword": {"user": {"email": "member@example.com"}}}

    refresh = await gql(REFRESH, {"input": {"refreshToken": tokens["refreshToken"]}})
    assert refresh.codes == ["UNAUTHENTICATED"]
    assert (await login(gql, "member@example.com")).codes == ["UNAUTHENTICATED"]
    (await login(gql, "member@example.com", "a new long secret")).ok()


async def test_two_admins_stepping_down_at_once_leave_one(
    world: World, make_user: UserFactory, session_factory: SessionFactory
) -> None:
    """The second demotion waits for the first one's locks (row locks on PostgreSQL, the write
    lock taken at BEGIN IMMEDIATE on SQLite), then sees it and refuses."""
    second = await make_user(role=Role.ADMIN)
    demote: users.UserChanges = {"role": Role.USER}

    async def demote_second() -> None:
        async with session_factory.begin() as session:
            await users.update_user(session=session, user_id=pk(second), changes=demote)

    async with session_factory.begin() as session:
        await users.update_user(session=session, user_id=pk(world.admin), changes=demote)
        waiting = asyncio.create_task(demote_second())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the admins' row locks
    with pytest.raises(Conflict):
        await waiting
    async with session_factory() as session:
        assert await users.count_active_admins(session=session) == 1
