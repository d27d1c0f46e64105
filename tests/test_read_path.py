"""The read path's engine settings on PostgreSQL: reads skip BEGIN/ROLLBACK, writes keep their
transaction, closed connections are replaced without a round trip, and the pool does not churn."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool

from db.engine import make_engine, make_session_factory
from db.models import Project


@pytest.fixture
async def small_engine(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second engine on the test database with a single pooled connection."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's transaction handling")
    one = make_engine(database_url, pool_size=1)
    yield one
    await one.dispose()


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
