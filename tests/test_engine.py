"""Engine behaviour: concurrent read-then-write transactions must not fail on either database."""

import asyncio

import sqlalchemy as sa
from sqlmodel import col

from db.engine import SessionFactory
from db.models import User
from tests.support.accounts import UserFactory


async def test_concurrent_read_then_write_transactions_all_succeed(
    session_factory: SessionFactory, make_user: UserFactory
) -> None:
    """On SQLite a deferred transaction that read first cannot upgrade to a writer once another
    writer committed ("database is locked"); write sessions must take the write lock up front."""
    user = await make_user(full_name="start")

    async def read_then_write(name: str) -> None:
        async with session_factory.begin() as session:
            await session.execute(sa.select(User).where(col(User.id) == user.id))
            await asyncio.sleep(0.05)
            await session.execute(
                sa.update(User).where(col(User.id) == user.id).values(full_name=name)
            )

    await asyncio.gather(*(read_then_write(f"name {i}") for i in range(4)))
    async with session_factory() as session:
        final = await session.scalar(sa.select(col(User.full_name)).where(col(User.id) == user.id))
    assert final in {f"name {i}" for i in range(4)}


async def test_reads_run_concurrently_beside_a_writer(
    session_factory: SessionFactory, make_user: UserFactory
) -> None:
    """Plain sessions stay deferred, so readers are not queued behind a long write."""
    user = await make_user(full_name="before")
    writer_holds_lock = asyncio.Event()
    release_writer = asyncio.Event()

    async def writer() -> None:
        async with session_factory.begin() as session:
            await session.execute(
                sa.update(User).where(col(User.id) == user.id).values(full_name="after")
            )
            writer_holds_lock.set()
            await release_writer.wait()

    task = asyncio.create_task(writer())
    await writer_holds_lock.wait()
    async with session_factory() as session:
        seen = await asyncio.wait_for(
            session.scalar(sa.select(col(User.full_name)).where(col(User.id) == user.id)), timeout=5
        )
    release_writer.set()
    await task
    assert seen == "before"
