"""Text inputs PostgreSQL cannot store or search (NUL characters) are BAD_USER_INPUT, not a 500;
required names and titles must show a visible character."""

from typing import Any

import pytest

from db.text import has_visible
from tests.support.accounts import DEFAULT_PASSWORD
from tests.support.graphql import Gql
from tests.support.world import World, pk

NUL = "a\x00b"
SEARCHES = [
    "query($s: String) { tasks(filter: {search: $s}) { totalCount } }",
    "query($s: String) { projects(filter: {search: $s}) { totalCount } }",
    "query($s: String) { users(filter: {search: $s}) { totalCount } }",
]
WRITES: list[tuple[str, Any, str]] = [
    (
        "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }",
        lambda w: {"projectId": pk(w.apollo), "title": NUL},
        "title",
    ),
    (
        "mutation($i: UpdateTaskInput!) { updateTask(input: $i) { task { id } } }",
        lambda w: {"id": pk(w.spec), "description": NUL},
        "description",
    ),
    (
        "mutation($i: CreateProjectInput!) { createProject(input: $i) { project { id } } }",
        lambda w: {"name": NUL},
        "name",
    ),
    (
        "mutation($i: UpdateUserInput!) { updateUser(input: $i) { user { id } } }",
        lambda w: {"id": pk(w.admin), "fullName": NUL},
        "fullName",
    ),
    (
        "mutation($i: RegisterInput!) { register(input: $i) { id } }",
        lambda w: {"email": "nul@example.com", "password": DEFAULT_PASSWORD, "fullName": NUL},
        "fullName",
    ),
]


@pytest.mark.parametrize("query", SEARCHES)
async def test_search_refuses_nul(gql: Gql, world: World, query: str) -> None:
    result = await gql(query, {"s": NUL}, token=world.token("admin"))
    assert result.codes == ["BAD_USER_INPUT"], result.body
    assert result.errors[0]["extensions"]["field"] == "search"
    # Backslashes are ordinary characters.
    assert (await gql(query, {"s": "\\"}, token=world.token("admin"))).ok()


@pytest.mark.parametrize(("mutation", "build", "field"), WRITES)
async def test_writes_refuse_nul(
    gql: Gql, world: World, mutation: str, build: Any, field: str
) -> None:
    result = await gql(mutation, {"i": build(world)}, token=world.token("admin"))
    assert result.codes == ["BAD_USER_INPUT"], result.body
    assert result.errors[0]["extensions"]["field"] == field


async def test_login_with_nul_is_just_wrong(gql: Gql, world: World) -> None:
    login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
    result = await gql(login, {"i": {"email": NUL, "password": DEFAULT_PASSWORD}})
    assert result.codes == ["UNAUTHENTICATED"]


# Spaces of several kinds, zero-width and other format characters, a lone combining mark.
INVISIBLE = [
    "\u200b\u200b",  # ZERO WIDTH SPACE (Cf)
    " \u3000\u00a0 ",  # IDEOGRAPHIC SPACE, NO-BREAK SPACE (Zs)
    "\u2028\u2029",  # LINE and PARAGRAPH SEPARATOR (Zl, Zp)
    "\u200d\u2060\ufeff",  # ZERO WIDTH JOINER, WORD JOINER, BOM (Cf)
    "\u0301",  # COMBINING ACUTE ACCENT alone (Mn)
    "\u202e\u200f",  # RIGHT-TO-LEFT OVERRIDE, RIGHT-TO-LEFT MARK (Cf)
]


REQUIRED_TEXT = [write for write in WRITES if write[2] != "description"]  # may be empty


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize(("mutation", "build", "field"), REQUIRED_TEXT)
async def test_required_text_needs_a_visible_character(
    gql: Gql, world: World, mutation: str, build: Any, field: str, text: str
) -> None:
    variables = {key: text if value == NUL else value for key, value in build(world).items()}
    result = await gql(mutation, {"i": variables}, token=world.token("admin"))
    assert result.codes == ["BAD_USER_INPUT"], result.body
    assert result.errors[0]["extensions"]["field"] == field
    assert "visible character" in result.errors[0]["message"]


@pytest.mark.parametrize("text", ["\u200bA", "日本", "١٢٣", "😀", "-", "e\u0301"])
def test_text_with_something_to_see_is_visible(text: str) -> None:
    assert has_visible(text)
