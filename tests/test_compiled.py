"""The compiled read path answers exactly as the executor does, and compiles what it should.

Every operation goes to two apps on the same database: the one the server runs (compiled reads
on) and one with `compiled_reads=False`. Their status codes and bodies must be equal: data,
errors, messages, paths and codes. The `X-TaskQL-Read-Path` header says which path answered.
"""

import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.read import queries
from core.settings import Settings
from db.engine import SessionFactory
from db.models import Project, ProjectMember, Role, Task, TaskStatus, User
from graph.compiled.entry import HEADER
from graph.schema import build_schema
from taskql.app import create_app
from tests.support.accounts import UserFactory
from tests.support.corpus import Pools, generate
from tests.support.graphql import FAILED_STATEMENT, bearer
from tests.support.world import ROLES, World, pk

# When a failing field nulls its parent, graphql-core drops the sibling resolvers it had not
# awaited yet; their coroutines are then collected unawaited, at any later moment (so each test
# here collects its own). The corpus sends many such documents on purpose; the warning is
# graphql-core's, not a failure here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.usefixtures("collect_dropped_coroutines"),
]

CORPUS_SIZE = 520
SEED = 20261203
ORDERINGS = ("CREATED_AT", "UPDATED_AT", "TITLE", "STATUS")

README_TASKS = """
{ tasks(filter: {status: [PENDING, IN_PROGRESS], search: "spec"},
        orderBy: {field: UPDATED_AT, direction: DESC}, first: 50, after: "AFTER") {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id title status project { name } assignee { email } } } } }
"""


@dataclass
class Answer:
    status: int
    body: Any
    path: str


@dataclass
class Pair:
    """The same request sent to the compiled app and to the executor-only app."""

    compiled: httpx.AsyncClient
    executor: httpx.AsyncClient

    async def ask(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[Answer, Answer]:
        answers = []
        for client in (self.compiled, self.executor):
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers=bearer(token),
            )
            answers.append(
                Answer(response.status_code, response.json(), response.headers.get(HEADER, ""))
            )
        return answers[0], answers[1]

    async def same(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Answer:
        """The compiled app's answer, after checking the executor gives the same."""
        compiled, executor = await self.ask(query, variables, token)
        assert compiled.path != FAILED_STATEMENT, (query, variables, "see the log")
        if compiled.path.startswith("executor"):
            # Both apps ran the executor. Its root fields run concurrently, so when several
            # fail, which errors are reported can vary from run to run: compare what it fixes.
            assert compiled.status == executor.status, query
            assert compiled.body.get("data") == executor.body.get("data"), query
            assert bool(compiled.body.get("errors")) == bool(executor.body.get("errors")), query
            return compiled
        assert (compiled.status, compiled.body) == (executor.status, executor.body), (
            query,
            variables,
        )
        return compiled


@pytest.fixture
async def pair(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Pair]:
    compiled_app = create_app(settings, engine)
    executor_app = create_app(settings.model_copy(update={"compiled_reads": False}), engine)

    def client(app: FastAPI) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    async with client(compiled_app) as compiled, client(executor_app) as executor:
        yield Pair(compiled, executor)


@pytest.fixture
async def busy_world(
    world: World, session_factory: SessionFactory, make_user: UserFactory
) -> World:
    """The standard world plus a third project and forty tasks of every status, some with the
    same title or timestamp (ties broken by id), in a seeded random mix."""
    rng = random.Random(SEED)
    extra = await make_user(email="extra@example.com", full_name="Ezra Extra")
    async with session_factory.begin() as session:
        third = Project(name="Orion", description="Stars", created_by=None)
        session.add(third)
        await session.flush()
        session.add_all(
            [
                ProjectMember(project_id=pk(third), user_id=pk(world.assignee)),
                ProjectMember(project_id=pk(third), user_id=pk(extra)),
            ]
        )
        homes = {
            pk(world.apollo): [world.member, world.assignee, None],
            pk(world.zephyr): [world.outsider, None],
            pk(third): [world.assignee, extra, None],
        }
        for number in range(40):
            project_id = rng.choice(list(homes))
            assignee = rng.choice(homes[project_id])
            session.add(
                Task(
                    project_id=project_id,
                    title=rng.choice(["Plan", "Build spec", "Test", "Ship it", f"Item {number}"]),
                    description=rng.choice(["", "needs review", "50% done_now"]),
                    status=rng.choice(list(TaskStatus)),
                    assigned_to=None if assignee is None else pk(assignee),
                    created_by=rng.choice([pk(world.admin), None]),
                )
            )
    return world


async def _cursors(pair: Pair, token: str | None, query: str, path: tuple[str, ...]) -> list[str]:
    _, executor = await pair.ask(query, token=token)
    found: Any = executor.body["data"]
    for step in path:
        found = found[step]
    return [edge["cursor"] for edge in found["edges"]]


async def _pools(pair: Pair, world: World) -> Pools:
    """Real ids and cursors (from the executor) for each list, for the generator to draw on."""
    admin = world.token("admin")
    tasks = await _cursors(pair, admin, "{ tasks(first: 30) { edges { cursor } } }", ("tasks",))
    for field in ORDERINGS:
        for direction in ("ASC", "DESC"):
            order = f"orderBy: {{field: {field}, direction: {direction}}}"
            query = f"{{ tasks(first: 30, {order}) {{ edges {{ cursor }} }} }}"
            tasks += (await _cursors(pair, admin, query, ("tasks",)))[::5]
    users = await _cursors(pair, admin, "{ users { edges { cursor } } }", ("users",))
    projects = await _cursors(pair, admin, "{ projects { edges { cursor } } }", ("projects",))
    _, executor = await pair.ask("{ users { edges { node { id } } } }", token=admin)
    user_ids = [e["node"]["id"] for e in executor.body["data"]["users"]["edges"]]
    _, executor = await pair.ask("{ tasks(first: 100) { edges { node { id } } } }", token=admin)
    task_ids = [e["node"]["id"] for e in executor.body["data"]["tasks"]["edges"]]
    ids = {
        "any": [*task_ids[::5], *user_ids, pk(world.apollo), pk(world.zephyr)],
        "users": user_ids,
    }
    cursors = {"tasks": tasks, "users": users, "members": users, "projects": projects}
    return Pools(ids=ids, cursors=cursors, words=["spec", "Plan", "review", "Item 1", "%", "done_"])


async def test_generated_corpus_answers_the_same(pair: Pair, busy_world: World) -> None:
    graphql_schema = build_schema(Settings(introspection=True))._schema
    pools = await _pools(pair, busy_world)
    paths: Counter[str] = Counter()
    for number, operation in enumerate(
        generate(graphql_schema, pools, seed=SEED, count=CORPUS_SIZE)
    ):
        token = busy_world.token(ROLES[number % len(ROLES)])
        answer = await pair.same(operation.document, operation.variables, token)
        paths[answer.path] += 1
    # The corpus must exercise the compiler, not only its fall-backs.
    assert paths["compiled"] >= CORPUS_SIZE // 8, paths.most_common()


async def test_benchmark_and_readme_queries_are_compiled(pair: Pair, busy_world: World) -> None:
    """The documents bench/read sends (as the callers it sends them as), and the README's."""
    admin = busy_world.token("admin")
    member = busy_world.token("assignee")  # a member who has tasks assigned
    walk = await pair.same(queries.DEEP_WALK, {"after": None}, admin)
    cursor = walk.body["data"]["tasks"]["edges"][0]["cursor"]
    for query, variables, token in (
        (queries.TASKS_50, {}, admin),
        (queries.TASKS_50_TOTAL, {}, admin),
        (queries.MEMBER_PROJECTS, {}, member),
        (queries.TASK_BY_ID, {"id": pk(busy_world.spec)}, member),
        (queries.DEEP, {"after": cursor}, admin),
        (queries.MINE, {}, member),
        (queries.ME, {}, admin),
        ("{ me { id email role isActive createdAt } }", {}, member),
    ):
        answer = await pair.same(query, variables, token)
        assert answer.path == "compiled", (query, answer.path)
        assert "errors" not in answer.body
    first = await pair.same(README_TASKS.replace(', after: "AFTER"', ""), {}, admin)
    assert first.path == "compiled"
    readme = README_TASKS.replace(
        "AFTER", first.body["data"]["tasks"]["pageInfo"]["endCursor"] or ""
    )
    answer = await pair.same(readme, {}, admin)
    assert answer.path == "compiled", answer.path


async def test_errors_come_from_the_executor(pair: Pair, busy_world: World) -> None:
    admin = busy_world.token("admin")
    outsider = busy_world.token("non_member")
    for query, variables, token, code in (
        ("{ tasks(first: 101) { totalCount } }", {}, admin, "BAD_USER_INPUT"),
        ('{ tasks(after: "nope") { totalCount } }', {}, admin, "BAD_USER_INPUT"),
        ("query($id: Int!) { task(id: $id) { id } }", {"id": 99999}, admin, "NOT_FOUND"),
        (
            "query($id: Int!) { task(id: $id) { id } }",
            {"id": pk(busy_world.spec)},
            outsider,
            "NOT_FOUND",
        ),
        ("{ users { totalCount } }", {}, outsider, "FORBIDDEN"),
        ("{ me { id } }", {}, None, "UNAUTHENTICATED"),
    ):
        answer = await pair.same(query, variables, token)
        assert answer.path.startswith("executor"), (query, answer.path)
        assert [e["extensions"]["code"] for e in answer.body["errors"]] == [code]


async def test_the_statement_checks_the_caller_it_was_planned_for(
    pair: Pair, busy_world: World, session_factory: SessionFactory
) -> None:
    """A plan is made for a role; a demoted or deactivated caller is caught by the statement."""
    admin = busy_world.token("admin")
    query = "{ tasks(first: 100) { totalCount } }"
    every = await pair.same(query, {}, admin)
    assert every.path == "compiled"
    async with session_factory.begin() as session:
        user = await session.get(User, pk(busy_world.admin))
        assert user is not None
        user.role = Role.USER  # now sees only the tasks assigned to them: none
    demoted = await pair.same(query, {}, admin)
    assert (
        demoted.body["data"]["tasks"]["totalCount"] == 0 < every.body["data"]["tasks"]["totalCount"]
    )
    assert (await pair.same(query, {}, admin)).path == "compiled"  # planned again, as a USER
    async with session_factory.begin() as session:
        user = await session.get(User, pk(busy_world.admin))
        assert user is not None
        user.is_active = False
    gone = await pair.same(query, {}, admin)
    assert gone.path.startswith("executor")
    assert [e["extensions"]["code"] for e in gone.body["errors"]] == ["UNAUTHENTICATED"]
