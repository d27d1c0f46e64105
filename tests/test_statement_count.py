"""A page costs a constant number of statements, whatever its size: one on the compiled read
path (which checks the caller too); the caller and one per list with DataLoaders on the executor."""

import functools

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from db.engine import SessionFactory
from db.models import Project, ProjectMember, Role, Task
from tests.support.accounts import TokenFor, UserFactory
from tests.support.graphql import Gql, post_graphql
from tests.support.statements import counting_statements
from tests.support.world import pk

TASKS_PAGE = """
query Page($first: Int!) {
  tasks(first: $first) {
    edges { node { id title status project { name } assignee { email } } }
    totalCount
  }
}
"""
MAX_STATEMENTS = 4
COMPILED_MARK = "AS caller_role"  # the compiled statement checks its caller in its first column


@pytest.fixture(params=["compiled", "executor"])
def read_path(request: pytest.FixtureRequest) -> str:
    path: str = request.param
    return path


@pytest.fixture
def gql(client: httpx.AsyncClient) -> Gql:
    """Without the differential check: its second request would count too."""
    return functools.partial(post_graphql, client)


@pytest.fixture
def settings(settings: Settings, read_path: str) -> Settings:
    """Each test runs on both read paths."""
    return settings.model_copy(update={"compiled_reads": read_path == "compiled"})


async def seed(session_factory: SessionFactory, make_user: UserFactory, tasks: int) -> None:
    """Tasks spread over 10 projects, each assigned to one of 20 members."""
    people = [await make_user() for _ in range(20)]
    async with session_factory.begin() as session:
        projects = [Project(name=f"Project {i}") for i in range(10)]
        session.add_all(projects)
        await session.flush()
        for i, person in enumerate(people):
            session.add(ProjectMember(project_id=pk(projects[i % 10]), user_id=pk(person)))
        session.add_all(
            Task(
                project_id=pk(projects[i % 20 % 10]),
                title=f"Task {i}",
                assigned_to=people[i % 20].id,
            )
            for i in range(tasks)
        )


async def test_task_page_costs_a_constant_number_of_statements(
    read_path: str,
    gql: Gql,
    engine: AsyncEngine,
    session_factory: SessionFactory,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    await seed(session_factory, make_user, tasks=150)
    token = token_for(await make_user(role=Role.ADMIN))

    await gql(TASKS_PAGE, {"first": 1}, token=token)  # the caller is seen once
    counts: dict[int, int] = {}
    for first in (1, 100):
        with counting_statements(engine) as statements:
            data = (await gql(TASKS_PAGE, {"first": first}, token=token)).ok()
        edges = data["tasks"]["edges"]
        assert len(edges) == first
        assert data["tasks"]["totalCount"] == 150
        assert all(e["node"]["project"]["name"] and e["node"]["assignee"]["email"] for e in edges)
        counts[first] = len(statements)
        assert len(statements) <= MAX_STATEMENTS, "\n".join(statements)

    # The 100-task page really spans every project and assignee, and costs no more.
    assert len({e["node"]["project"]["name"] for e in edges}) == 10
    assert len({e["node"]["assignee"]["email"] for e in edges}) == 20
    if read_path == "compiled":  # one statement: the caller's check and the whole response
        assert counts == {1: 1, 100: 1}, counts
        assert COMPILED_MARK in statements[-1]
    else:  # the caller, then the page with its total, projects and assignees joined in
        assert counts == {1: 2, 100: 2}, counts


PROJECTS_PAGE = """
query Page($first: Int!) {
  projects(first: $first) {
    edges { node {
      name
      members { totalCount edges { node { email } } }
      tasks(first: 5) { totalCount edges { node { title assignee { fullName } } } }
      taskCounts { total pending inProgress done }
    } }
  }
}
"""


async def test_nested_lists_are_batched_per_page(
    read_path: str,
    gql: Gql,
    engine: AsyncEngine,
    session_factory: SessionFactory,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    """A member's projects with members, tasks and counts: one statement per list, not per row."""
    await seed(session_factory, make_user, tasks=150)
    member = await make_user()
    async with session_factory.begin() as session:
        for project_id in range(1, 11):
            session.add(ProjectMember(project_id=project_id, user_id=pk(member)))
            session.add(Task(project_id=project_id, title="Mine", assigned_to=pk(member)))
    token = token_for(member)

    await gql(PROJECTS_PAGE, {"first": 1}, token=token)  # the caller is seen once
    counts: dict[int, int] = {}
    for first in (1, 10):
        with counting_statements(engine) as statements:
            data = (await gql(PROJECTS_PAGE, {"first": first}, token=token)).ok()
        projects = [edge["node"] for edge in data["projects"]["edges"]]
        assert len(projects) == first
        for project in projects:
            assert project["members"]["totalCount"] == 3
            assert project["taskCounts"]["total"] == project["tasks"]["totalCount"] == 1
        counts[first] = len(statements)
    if read_path == "compiled":  # one statement for the caller's check and the whole response
        assert counts == {1: 1, 10: 1}, counts
        assert COMPILED_MARK in statements[-1]
    else:  # the caller, projects, members, tasks (with totals), assignees, counts
        assert counts == {1: 6, 10: 6}, counts
