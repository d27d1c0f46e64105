"""The read path: on PostgreSQL reads skip BEGIN/ROLLBACK, writes keep their transaction, closed
connections are replaced without a round trip, and the pool does not churn; on both databases a
page of tasks reads the projects and assignees it shows in its own statement."""

import asyncio
import functools
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool

from db.direct import fetch_row
from db.engine import SessionFactory, make_session_factory
from db.models import Project, Task
from tests.support.accounts import UserFactory
from tests.support.graphql import Gql, post_graphql
from tests.support.statements import counting_statements


@pytest.fixture
def gql(executor_client: httpx.AsyncClient) -> Gql:
    """The executor's read path, whose statements these tests look at (the compiled path has
    its own statement-count test)."""
    return functools.partial(post_graphql, executor_client)


def driver(connection: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy one."""
    pooled = connection.sync_connection.connection if connection.sync_connection else None
    assert pooled is not None
    assert pooled.driver_connection is not None
    return pooled.driver_connection


async def in_transaction(session: AsyncSession) -> bool:
    return bool(driver(await session.connection()).is_in_transaction())


async def backend_pid(session: AsyncSession) -> int:
    return int((await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def test_reads_run_without_a_transaction_and_writes_with_one(
    small_engine: AsyncEngine,
) -> None:
    sessions = make_session_factory(small_engine)
    async with sessions() as session:
        await session.execute(sa.select(1))
        assert not await in_transaction(session)

    async def write_then_fail() -> None:
        async with sessions.begin() as session:
            session.add(Project(name="rolled back"))
            await session.flush()
            assert await in_transaction(session)
            raise RuntimeError

    with pytest.raises(RuntimeError):  # the same pooled connection, now for a unit of work
        await write_then_fail()
    async with sessions() as session:
        assert (
            await session.execute(sa.select(sa.func.count()).select_from(Project))
        ).scalar() == 0
        assert not await in_transaction(session)
    async with small_engine.begin() as connection:  # Core keeps its transaction too
        await connection.execute(sa.select(1))
        assert driver(connection).is_in_transaction()


async def test_a_connection_the_server_closed_is_replaced(
    small_engine: AsyncEngine, engine: AsyncEngine
) -> None:
    sessions = make_session_factory(small_engine)
    async with sessions() as session:
        first = await backend_pid(session)
    async with engine.connect() as other:
        await other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    pool = small_engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    for _ in range(50):  # the event loop notices the closed socket
        await asyncio.sleep(0.02)
        if pool.checkedin() == 1:
            break
    async with sessions() as session:
        assert await backend_pid(session) != first


async def test_the_pool_does_not_open_connections_beyond_its_size(
    small_engine: AsyncEngine,
) -> None:
    sessions = make_session_factory(small_engine)
    connects = 0

    def count(*_: object) -> None:
        nonlocal connects
        connects += 1

    sa.event.listen(small_engine.sync_engine, "connect", count)

    async def read() -> int:
        async with sessions() as session:
            return await backend_pid(session)

    pids = await asyncio.gather(*(read() for _ in range(20)))
    assert len(set(pids)) == 1
    assert connects <= 1


TASKS_WITH_RELATIONS = """
query Page($first: Int!) {
  tasks(first: $first) { totalCount edges { node { ...Row } } }
}
fragment Row on Task { id title project { id name } ... on Task { assignee { id email } } }
"""
TASKS_ALONE = "{ tasks(first: 5) { edges { node { id title } } } }"


async def seed_tasks(session_factory: SessionFactory, make_user: UserFactory) -> list[int]:
    """Three projects, two members, seven tasks; the last one unassigned. Returns user ids."""
    people = [await make_user(), await make_user()]
    async with session_factory.begin() as session:
        projects = [Project(name=f"P{i}") for i in range(3)]
        session.add_all(projects)
        await session.flush()
        for i in range(7):
            project, person = projects[i % 3], people[i % 2]
            assert project.id is not None
            assert person.id is not None
            session.add(
                Task(
                    project_id=project.id, title=f"T{i}", assigned_to=None if i == 6 else person.id
                )
            )
    return [p.id for p in people if p.id is not None]


async def test_a_page_reads_its_projects_and_assignees_in_its_own_statement(
    gql: Gql,
    engine: AsyncEngine,
    session_factory: SessionFactory,
    make_user: UserFactory,
    admin_token: str,
) -> None:
    people = await seed_tasks(session_factory, make_user)
    with counting_statements(engine) as statements:
        data = (await gql(TASKS_WITH_RELATIONS, {"first": 10}, token=admin_token)).ok()
    assert len(statements) == 2, statements  # the caller; the page, its total and relations
    with counting_statements(engine) as statements:
        (await gql(TASKS_ALONE, token=admin_token)).ok()
    assert len(statements) == 2
    assert " JOIN " not in statements[1]  # nothing joined that the query did not ask for

    nodes = [edge["node"] for edge in data["tasks"]["edges"]]
    assert data["tasks"]["totalCount"] == 7
    assert [n["title"] for n in nodes] == [f"T{i}" for i in range(7)]
    assert [n["project"]["name"] for n in nodes] == [f"P{i % 3}" for i in range(7)]
    assert [n["assignee"] and n["assignee"]["id"] for n in nodes] == [
        *(people[i % 2] for i in range(6)),
        None,
    ]
    # The same task through its own loader agrees with the joined rows; that loader reads the
    # task's project and assignee in its own statement too.
    with counting_statements(engine) as statements:
        one = await gql(
            "query($id: Int!) { task(id: $id) { project { name } assignee { email } } }",
            {"id": nodes[4]["id"]},
            token=admin_token,
        )
    assert len(statements) == 2, statements
    assert one.ok()["task"] == {
        "project": {"name": nodes[4]["project"]["name"]},
        "assignee": {"email": nodes[4]["assignee"]["email"]},
    }


async def test_a_direct_read_interrupted_mid_statement_drops_its_connection(
    small_engine: AsyncEngine,
) -> None:
    """Compiled reads on PostgreSQL run on the driver (db/direct.py): a statement cancelled
    half-way leaves its connection mid-protocol, so it is aborted, not put back; a statement
    that merely fails keeps its connection. Either way the pool's one connection is free."""
    pid_sql = "SELECT pg_backend_pid()"
    first = (await fetch_row(small_engine, pid_sql, []))[0]
    with pytest.raises(asyncpg.PostgresError) as failed:
        await fetch_row(small_engine, "SELECT no_such_column", [])
    assert "no_such_column" in str(failed.value)
    assert (await fetch_row(small_engine, pid_sql, []))[0] == first  # kept

    sleeping = asyncio.create_task(fetch_row(small_engine, "SELECT pg_sleep($1)", [5.0]))
    await asyncio.sleep(0.3)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    pool = small_engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    async with asyncio.timeout(3):  # a fresh connection, not one waiting on the sleep
        assert (await fetch_row(small_engine, pid_sql, []))[0] != first
