"""Tasks over GraphQL: filters, orderings and keyset pages, validation, updates and relations."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from db.engine import SessionFactory
from db.models import Task, TaskStatus, User
from db.tasks import STATUS_ORDER
from tests.support.accounts import UserFactory
from tests.support.graphql import Gql
from tests.support.world import World, pk

TASKS = """
query Tasks($filter: TaskFilter, $orderBy: TaskOrder, $first: Int! = 20, $after: String) {
  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id title status } }
  }
}
"""
TASK = """
query Task($id: Int!) {
  task(id: $id) {
    id title description status createdAt updatedAt
    project { name } assignee { email } createdBy { email }
  }
}
"""
CREATE = """
mutation Create($input: CreateTaskInput!) {
  createTask(input: $input) {
    task { id title description status project { name } assignee { email } createdBy { email } }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateTaskInput!) {
  updateTask(input: $input) {
    task { id title description status updatedAt project { name } assignee { email } }
  }
}
"""
DELETE = "mutation Delete($input: DeleteTaskInput!) { deleteTask(input: $input) { deletedId } }"


async def titles(gql: Gql, world: World, role: str = "admin", **variables: Any) -> list[str]:
    data = (await gql(TASKS, variables, token=world.token(role))).ok()
    return [edge["node"]["title"] for edge in data["tasks"]["edges"]]


async def test_filters_narrow_the_list(gql: Gql, world: World) -> None:
    assert await titles(gql, world, filter={"projectId": pk(world.apollo)}) == [
        "Write spec",
        "Review spec",
    ]
    assert await titles(gql, world, filter={"status": ["PENDING"]}) == ["Review spec", "Other work"]
    assert await titles(gql, world, filter={"status": ["IN_PROGRESS", "DONE"]}) == ["Write spec"]
    assert await titles(gql, world, filter={"assigneeId": pk(world.outsider)}) == ["Other work"]
    assert await titles(gql, world, filter={"unassigned": True}) == ["Review spec"]
    assert await titles(gql, world, filter={"unassigned": False}) == ["Write spec", "Other work"]
    # Search is case-insensitive, over the title and the description.
    assert await titles(gql, world, filter={"search": "SPEC"}) == ["Write spec", "Review spec"]
    assert await titles(gql, world, filter={"search": "first DRAFT"}) == ["Write spec"]
    both = {"projectId": pk(world.apollo), "status": ["PENDING"], "search": "review"}
    assert await titles(gql, world, filter=both) == ["Review spec"]
    # A USER's filters apply within the tasks they see.
    assert await titles(gql, world, "assignee", filter={"projectId": pk(world.apollo)}) == [
        "Write spec"
    ]


async def test_search_takes_wildcards_literally(
    gql: Gql, world: World, session_factory: SessionFactory
) -> None:
    async with session_factory.begin() as session:
        for title in ("100% done", "1000 done", "snake_case", "snakeXcase"):
            session.add(Task(project_id=pk(world.zephyr), title=title))
    assert await titles(gql, world, filter={"search": "0%"}) == ["100% done"]
    assert await titles(gql, world, filter={"search": "e_c"}) == ["snake_case"]


async def seed_for_ordering(session_factory: SessionFactory, world: World) -> list[Task]:
    """Tasks with ties on every sort key, so the id tie-breaker matters."""
    same_time = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    rows = [
        ("Beta", TaskStatus.DONE, same_time),
        ("Alpha", TaskStatus.PENDING, same_time),
        ("Beta", TaskStatus.IN_PROGRESS, datetime(2025, 6, 1, tzinfo=UTC)),
        ("Gamma", TaskStatus.PENDING, datetime(2027, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)),
        ("Delta", TaskStatus.DONE, same_time),
    ]
    async with session_factory.begin() as session:
        for title, status, at in rows:
            session.add(
                Task(
                    project_id=pk(world.zephyr),
                    title=title,
                    status=status,
                    created_at=at,
                    updated_at=at,
                )
            )
    async with session_factory() as session:
        return list((await session.execute(sa.select(Task))).scalars())


SORT_VALUES: dict[str, Callable[[Task], Any]] = {
    "CREATED_AT": lambda t: t.created_at,
    "UPDATED_AT": lambda t: t.updated_at,
    "TITLE": lambda t: t.title,
    "STATUS": lambda t: STATUS_ORDER[TaskStatus(t.status)],
}


@pytest.mark.parametrize("field", list(SORT_VALUES))
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
async def test_pages_walk_every_ordering_without_gaps_or_repeats(
    gql: Gql, world: World, session_factory: SessionFactory, field: str, direction: str
) -> None:
    rows = await seed_for_ordering(session_factory, world)
    key = SORT_VALUES[field]
    # Capitalised titles sort alike under every collation.
    expected = sorted(rows, key=lambda t: (key(t), t.id), reverse=direction == "DESC")
    walked = await _walk(gql, world, {"field": field, "direction": direction}, first=2)
    assert walked == [t.id for t in expected]
    assert len(set(walked)) == len(rows) == 8


async def _walk(gql: Gql, world: World, order: dict[str, str], *, first: int) -> list[int]:
    ids: list[int] = []
    after: str | None = None
    while True:
        variables = {"orderBy": order, "first": first, "after": after}
        page = (await gql(TASKS, variables, token=world.token("admin"))).ok()["tasks"]
        assert page["totalCount"] == 8
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if page["edges"]:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]


async def test_page_arguments_are_checked(gql: Gql, world: World) -> None:
    admin = world.token("admin")
    for first in (101, -1, 1_000_000):
        result = await gql(TASKS, {"first": first}, token=admin)
        assert result.codes == ["BAD_USER_INPUT"]
        assert result.errors[0]["extensions"]["field"] == "first"
    for after in ("not-a-cursor", "e30", "WyJpZCIsImEiLCJ4IiwieSJd", "!!!"):
        result = await gql(TASKS, {"after": after}, token=admin)
        assert result.codes == ["BAD_USER_INPUT"], after
        assert result.errors[0]["extensions"]["field"] == "after"
    # A cursor only continues the ordering it came from.
    by_title = {"field": "TITLE", "direction": "ASC"}
    first_page = (await gql(TASKS, {"orderBy": by_title, "first": 1}, token=admin)).ok()
    cursor = first_page["tasks"]["pageInfo"]["endCursor"]
    result = await gql(TASKS, {"after": cursor}, token=admin)
    assert result.codes == ["BAD_USER_INPUT"]
    assert "ordering" in result.errors[0]["message"]
    # first: 0 still counts.
    empty = (await gql(TASKS, {"first": 0}, token=admin)).ok()["tasks"]
    assert empty["edges"] == []
    assert empty["totalCount"] == 3
    assert empty["pageInfo"]["hasNextPage"]


async def test_total_count_after_the_last_page(gql: Gql, world: World) -> None:
    admin = world.token("admin")
    page = (await gql(TASKS, {"first": 3}, token=admin)).ok()["tasks"]
    after = page["pageInfo"]["endCursor"]
    beyond = (await gql(TASKS, {"first": 3, "after": after}, token=admin)).ok()["tasks"]
    assert beyond["edges"] == []
    assert beyond["totalCount"] == 3
    assert beyond["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


async def create(gql: Gql, world: World, **fields: Any) -> Any:
    fields.setdefault("projectId", pk(world.apollo))
    return await gql(CREATE, {"input": fields}, token=world.token("admin"))


def bad_input_field(result: Any) -> str:
    assert result.codes == ["BAD_USER_INPUT"], result.body
    field: str = result.errors[0]["extensions"]["field"]
    return field


async def test_create_task_validates_its_input(
    gql: Gql, world: World, make_user: UserFactory, session_factory: SessionFactory
) -> None:
    task = (await create(gql, world, title="  Launch  ", assigneeId=pk(world.member))).ok()
    task = task["createTask"]["task"]
    assert task["title"] == "Launch"
    assert task["status"] == "PENDING"
    assert task["project"] == {"name": "Apollo"}
    assert task["assignee"] == {"email": "member@example.com"}
    assert task["createdBy"] == {"email": "admin@example.com"}
    (await create(gql, world, title="x" * 255, description="d" * 5000)).ok()

    assert bad_input_field(await create(gql, world, title="   ")) == "title"
    assert bad_input_field(await create(gql, world, title="x" * 256)) == "title"
    assert bad_input_field(await create(gql, world, title="t", description="d" * 5001)) == (
        "description"
    )
    assert bad_input_field(await create(gql, world, title="t", projectId=999)) == "projectId"
    assert bad_input_field(await create(gql, world, title="t", assigneeId=999)) == "assigneeId"
    # Not a member of Apollo.
    outsider = await create(gql, world, title="t", assigneeId=pk(world.outsider))
    assert bad_input_field(outsider) == "assigneeId"
    assert "member" in outsider.errors[0]["message"]
    # A member, but deactivated.
    async with session_factory.begin() as session:
        member = await session.get(User, pk(world.member))
        assert member is not None
        member.is_active = False
    assert bad_input_field(await create(gql, world, title="t", assigneeId=pk(world.member))) == (
        "assigneeId"
    )


async def test_assignee_updates_their_task(gql: Gql, world: World) -> None:
    before = (await gql(TASK, {"id": pk(world.spec)}, token=world.token("assignee"))).ok()["task"]
    changes = {"id": pk(world.spec), "title": " Spec v2 ", "description": "", "status": "DONE"}
    result = await gql(UPDATE, {"input": changes}, token=world.token("assignee"))
    task = result.ok()["updateTask"]["task"]
    assert (task["title"], task["description"], task["status"]) == ("Spec v2", "", "DONE")
    assert task["updatedAt"] > before["updatedAt"]
    assert task["assignee"] == {"email": "assignee@example.com"}
    # Null is not a title.
    nulled = await gql(
        UPDATE, {"input": {"id": pk(world.spec), "title": None}}, token=world.token("assignee")
    )
    assert bad_input_field(nulled) == "title"


async def test_admin_reassigns_unassigns_and_moves(gql: Gql, world: World) -> None:
    admin, spec = world.token("admin"), pk(world.spec)

    async def update(**fields: Any) -> Any:
        return await gql(UPDATE, {"input": {"id": spec, **fields}}, token=admin)

    moved = (await update(assigneeId=pk(world.member))).ok()["updateTask"]["task"]
    assert moved["assignee"] == {"email": "member@example.com"}
    # The former assignee no longer sees it.
    gone = await gql(TASK, {"id": spec}, token=world.token("assignee"))
    assert gone.codes == ["NOT_FOUND"]

    assert bad_input_field(await update(assigneeId=pk(world.outsider))) == "assigneeId"
    # The assignee is not a member of Zephyr: moving needs a new assignee or none.
    assert bad_input_field(await update(projectId=pk(world.zephyr))) == "projectId"
    assert bad_input_field(await update(projectId=999)) == "projectId"
    task = (await update(projectId=pk(world.zephyr), assigneeId=pk(world.outsider))).ok()
    task = task["updateTask"]["task"]
    assert task["project"] == {"name": "Zephyr"}
    assert task["assignee"] == {"email": "outsider@example.com"}
    unassigned = (await update(assigneeId=None)).ok()["updateTask"]["task"]
    assert unassigned["assignee"] is None


async def test_delete_task(gql: Gql, world: World) -> None:
    admin = world.token("admin")
    deleted = await gql(DELETE, {"input": {"id": pk(world.spec)}}, token=admin)
    assert deleted.ok() == {"deleteTask": {"deletedId": pk(world.spec)}}
    assert (await gql(TASK, {"id": pk(world.spec)}, token=admin)).codes == ["NOT_FOUND"]
    again = await gql(DELETE, {"input": {"id": pk(world.spec)}}, token=admin)
    assert again.codes == ["NOT_FOUND"]


async def test_task_relations_respect_who_asks(gql: Gql, world: World) -> None:
    as_admin = (await gql(TASK, {"id": pk(world.spec)}, token=world.token("admin"))).ok()["task"]
    assert as_admin["project"] == {"name": "Apollo"}
    assert as_admin["assignee"] == {"email": "assignee@example.com"}
    assert as_admin["createdBy"] == {"email": "admin@example.com"}
    # The admin who created it shares no project with the assignee: hidden, without an error.
    mine = await gql(TASK, {"id": pk(world.spec)}, token=world.token("assignee"))
    assert mine.ok()["task"]["createdBy"] is None
    assert mine.ok()["task"]["description"] == "The first draft"
