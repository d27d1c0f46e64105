"""Projects over GraphQL: create/update/delete, members, nested connections, counts, filters."""

from typing import Any

from db.engine import SessionFactory
from db.models import Project, ProjectMember, Task, TaskStatus
from tests.support.accounts import UserFactory
from tests.support.graphql import Gql
from tests.support.world import World, pk

PROJECT = """
query Project($id: Int!, $first: Int! = 20, $after: String) {
  project(id: $id) {
    name description createdAt updatedAt createdBy { email }
    members(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { email } }
    }
    tasks { totalCount edges { node { title } } }
    taskCounts { total pending inProgress done }
  }
}
"""
PROJECTS = """
query Projects($filter: ProjectFilter, $orderBy: ProjectOrder, $first: Int! = 20) {
  projects(filter: $filter, orderBy: $orderBy, first: $first) {
    totalCount edges { node { name } }
  }
}
"""
CREATE = """
mutation Create($input: CreateProjectInput!) {
  createProject(input: $input) {
    project { id name description createdBy { email } members { totalCount } }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateProjectInput!) {
  updateProject(input: $input) { project { name description updatedAt } }
}
"""
DELETE = "mutation($input: DeleteProjectInput!) { deleteProject(input: $input) { deletedId } }"
ADD = """
mutation Add($input: ProjectMemberInput!) {
  addProjectMember(input: $input) { project { members { totalCount } } user { email } }
}
"""
REMOVE = """
mutation Remove($input: ProjectMemberInput!) {
  removeProjectMember(input: $input) {
    unassignedTaskCount user { email } project { members { edges { node { email } } } }
  }
}
"""


def field_of(result: Any, code: str = "BAD_USER_INPUT") -> str:
    assert result.codes == [code], result.body
    field: str = result.errors[0]["extensions"]["field"]
    return field


async def test_create_update_delete(gql: Gql, world: World) -> None:
    admin = world.token("admin")
    created = await gql(
        CREATE, {"input": {"name": "  Borealis ", "description": "Lights"}}, token=admin
    )
    project = created.ok()["createProject"]["project"]
    assert project["name"] == "Borealis"
    assert project["createdBy"] == {"email": "admin@example.com"}
    assert project["members"]["totalCount"] == 0

    assert field_of(await gql(CREATE, {"input": {"name": " "}}, token=admin)) == "name"
    assert field_of(await gql(CREATE, {"input": {"name": "n" * 201}}, token=admin)) == "name"
    too_long = {"name": "n", "description": "d" * 5001}
    assert field_of(await gql(CREATE, {"input": too_long}, token=admin)) == "description"

    changes = {"id": project["id"], "description": "Northern lights"}
    updated = (await gql(UPDATE, {"input": changes}, token=admin)).ok()["updateProject"]
    assert updated["project"]["name"] == "Borealis"
    assert updated["project"]["description"] == "Northern lights"
    blank = {"id": project["id"], "name": ""}
    assert field_of(await gql(UPDATE, {"input": blank}, token=admin)) == "name"
    unknown = await gql(UPDATE, {"input": {"id": 999, "name": "x"}}, token=admin)
    assert field_of(unknown, "NOT_FOUND") == "id"


async def test_deleting_a_project_deletes_its_tasks(gql: Gql, world: World) -> None:
    admin = world.token("admin")
    result = await gql(DELETE, {"input": {"id": pk(world.apollo)}}, token=admin)
    assert result.ok() == {"deleteProject": {"deletedId": pk(world.apollo)}}
    tasks = (await gql("{ tasks { edges { node { title } } } }", token=admin)).ok()
    assert [e["node"]["title"] for e in tasks["tasks"]["edges"]] == ["Other work"]
    gone = await gql(PROJECT, {"id": pk(world.apollo)}, token=admin)
    assert gone.codes == ["NOT_FOUND"]


async def test_adding_members(gql: Gql, world: World, make_user: UserFactory) -> None:
    admin = world.token("admin")

    async def add(user_id: int, project_id: int | None = None) -> Any:
        project_id = project_id or pk(world.apollo)
        variables = {"input": {"projectId": project_id, "userId": user_id}}
        return await gql(ADD, variables, token=admin)

    added = (await add(pk(world.outsider))).ok()["addProjectMember"]
    assert added["user"] == {"email": "outsider@example.com"}
    assert added["project"]["members"]["totalCount"] == 3
    twice = await add(pk(world.outsider))
    assert field_of(twice, "CONFLICT") == "userId"
    assert field_of(await add(999)) == "userId"
    inactive = await make_user(is_active=False)
    assert field_of(await add(pk(inactive))) == "userId"
    assert field_of(await add(pk(world.outsider), 999), "NOT_FOUND") == "projectId"


async def test_removing_a_member_unassigns_their_tasks_there(
    gql: Gql, world: World, session_factory: SessionFactory
) -> None:
    async with session_factory.begin() as session:
        # The assignee also works in Zephyr, where their task must stay assigned.
        session.add(ProjectMember(project_id=pk(world.zephyr), user_id=pk(world.assignee)))
        session.add(
            Task(project_id=pk(world.zephyr), title="Elsewhere", assigned_to=pk(world.assignee))
        )
        session.add(
            Task(project_id=pk(world.apollo), title="Second", assigned_to=pk(world.assignee))
        )
    variables = {"input": {"projectId": pk(world.apollo), "userId": pk(world.assignee)}}
    result = (await gql(REMOVE, variables, token=world.token("admin"))).ok()
    removed = result["removeProjectMember"]
    assert removed["unassignedTaskCount"] == 2
    assert removed["user"] == {"email": "assignee@example.com"}
    assert [e["node"]["email"] for e in removed["project"]["members"]["edges"]] == [
        "member@example.com"
    ]
    mine = await gql("{ tasks { edges { node { title } } } }", token=world.token("assignee"))
    assert [e["node"]["title"] for e in mine.ok()["tasks"]["edges"]] == ["Elsewhere"]
    again = await gql(REMOVE, variables, token=world.token("admin"))
    assert field_of(again) == "userId"


async def test_nested_lists_and_counts_follow_the_caller(
    gql: Gql, world: World, session_factory: SessionFactory
) -> None:
    async with session_factory.begin() as session:
        session.add(
            Task(
                project_id=pk(world.apollo),
                title="Ship",
                status=TaskStatus.DONE,
                assigned_to=pk(world.assignee),
            )
        )
    variables = {"id": pk(world.apollo)}
    as_admin = (await gql(PROJECT, variables, token=world.token("admin"))).ok()["project"]
    assert as_admin["taskCounts"] == {"total": 3, "pending": 1, "inProgress": 1, "done": 1}
    assert as_admin["tasks"]["totalCount"] == 3
    assert as_admin["members"]["totalCount"] == 2
    assert as_admin["createdBy"] == {"email": "admin@example.com"}

    as_assignee = (await gql(PROJECT, variables, token=world.token("assignee"))).ok()["project"]
    assert as_assignee["taskCounts"] == {"total": 2, "pending": 0, "inProgress": 1, "done": 1}
    assert [e["node"]["title"] for e in as_assignee["tasks"]["edges"]] == ["Write spec", "Ship"]
    assert as_assignee["members"]["totalCount"] == 2
    assert as_assignee["createdBy"] is None  # the admin shares no project with them

    as_member = (await gql(PROJECT, variables, token=world.token("member"))).ok()["project"]
    assert as_member["taskCounts"]["total"] == 0
    assert as_member["tasks"] == {"totalCount": 0, "edges": []}


async def test_member_pages_across_several_projects(
    gql: Gql, world: World, session_factory: SessionFactory, make_user: UserFactory
) -> None:
    extra = [await make_user() for _ in range(3)]
    async with session_factory.begin() as session:
        for user in extra:
            session.add(ProjectMember(project_id=pk(world.zephyr), user_id=pk(user)))
    query = """
    query($after: String) {
      projects {
        edges { node { name members(first: 2, after: $after) {
          totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }
      }
    }
    """
    admin = world.token("admin")
    pages = (await gql(query, token=admin)).ok()["projects"]["edges"]
    members = {p["node"]["name"]: p["node"]["members"] for p in pages}
    assert [e["node"]["id"] for e in members["Apollo"]["edges"]] == [
        pk(world.member),
        pk(world.assignee),
    ]
    assert members["Apollo"]["pageInfo"]["hasNextPage"] is False
    zephyr = members["Zephyr"]
    assert zephyr["totalCount"] == 4
    assert [e["node"]["id"] for e in zephyr["edges"]] == [pk(world.outsider), pk(extra[0])]
    assert zephyr["pageInfo"]["hasNextPage"] is True

    after = zephyr["pageInfo"]["endCursor"]
    pages = (await gql(query, {"after": after}, token=admin)).ok()["projects"]["edges"]
    members = {p["node"]["name"]: p["node"]["members"] for p in pages}
    assert [e["node"]["id"] for e in members["Zephyr"]["edges"]] == [pk(u) for u in extra[1:]]
    assert members["Zephyr"]["totalCount"] == 4  # still the whole list, counted apart
    assert members["Zephyr"]["pageInfo"]["hasNextPage"] is False
    assert members["Apollo"]["edges"] == []  # everyone in Apollo has a lower id than the cursor
    assert members["Apollo"]["totalCount"] == 2


async def test_filters_and_orderings(
    gql: Gql, world: World, session_factory: SessionFactory
) -> None:
    async with session_factory.begin() as session:
        session.add(Project(name="Mercury", description="The FIRST flight"))
    admin = world.token("admin")

    async def names(**variables: Any) -> list[str]:
        data = (await gql(PROJECTS, variables, token=admin)).ok()["projects"]
        return [e["node"]["name"] for e in data["edges"]]

    assert await names() == ["Apollo", "Zephyr", "Mercury"]
    assert await names(filter={"search": "first"}) == ["Mercury"]
    assert await names(filter={"search": "MOON"}) == ["Apollo"]
    assert await names(filter={"memberId": pk(world.outsider)}) == ["Zephyr"]
    assert await names(orderBy={"field": "NAME", "direction": "DESC"}) == [
        "Zephyr",
        "Mercury",
        "Apollo",
    ]
    assert await names(orderBy={"field": "CREATED_AT", "direction": "DESC"}, first=1) == ["Mercury"]
    # A USER's filters narrow their own projects only.
    mine = await gql(
        PROJECTS, {"filter": {"memberId": pk(world.outsider)}}, token=world.token("member")
    )
    assert mine.ok()["projects"] == {"totalCount": 0, "edges": []}


async def test_project_tasks_take_an_ordering_and_pages(
    gql: Gql, world: World, session_factory: SessionFactory
) -> None:
    async with session_factory.begin() as session:
        session.add(Task(project_id=pk(world.apollo), title="Ship", status=TaskStatus.DONE))
        session.add(Task(project_id=pk(world.zephyr), title="Wrap", status=TaskStatus.DONE))
    query = """
    query($after: String) {
      projects { edges { node { name
        tasks(first: 2, after: $after, orderBy: {field: STATUS, direction: DESC}) {
          totalCount pageInfo { hasNextPage endCursor } edges { node { title status } } }
      } } }
    }
    """
    admin = world.token("admin")
    first = (await gql(query, token=admin)).ok()["projects"]["edges"]
    apollo = first[0]["node"]["tasks"]
    assert [e["node"]["title"] for e in apollo["edges"]] == ["Ship", "Write spec"]
    assert apollo["totalCount"] == 3
    assert apollo["pageInfo"]["hasNextPage"] is True
    zephyr = first[1]["node"]["tasks"]
    assert [e["node"]["title"] for e in zephyr["edges"]] == ["Wrap", "Other work"]
    assert zephyr["pageInfo"]["hasNextPage"] is False

    after = apollo["pageInfo"]["endCursor"]
    rest = (await gql(query, {"after": after}, token=admin)).ok()["projects"]["edges"]
    apollo = rest[0]["node"]["tasks"]
    assert [e["node"]["title"] for e in apollo["edges"]] == ["Review spec"]
    assert apollo["totalCount"] == 3
    assert apollo["pageInfo"]["hasNextPage"] is False
