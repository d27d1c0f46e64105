"""Cursors computed by the database (compiled reads) equal the ones Python encodes, for every
fraction of a second, including those SQLite's date functions would round up."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from db.cursors import EPOCH, MICROSECOND, epoch_microseconds
from db.engine import SessionFactory
from db.models import Task
from tests.support.world import World, pk

INSTANTS = [
    datetime(2026, 12, 3, 16, 29, 52, 999_520, tzinfo=UTC),  # SQLite's %s says :53
    datetime(2026, 12, 3, 16, 29, 52, 999_999, tzinfo=UTC),
    datetime(2026, 12, 3, 16, 29, 52, 500_000, tzinfo=UTC),
    datetime(2026, 12, 3, 16, 29, 52, 1, tzinfo=UTC),
    datetime(2026, 12, 3, 16, 29, 52, tzinfo=UTC),
]


@pytest.mark.parametrize("instant", INSTANTS, ids=lambda i: f"{i.microsecond:06d}")
async def test_database_epoch_microseconds_are_exact(
    world: World, session_factory: SessionFactory, engine: AsyncEngine, instant: datetime
) -> None:
    task_id = pk(world.spec)
    async with session_factory() as session, session.begin():
        await session.execute(
            sa.update(Task).where(col(Task.id) == task_id).values(created_at=instant)
        )
    async with session_factory() as session:
        micros = await session.scalar(
            sa.select(epoch_microseconds(engine.dialect.name, col(Task.created_at))).where(
                col(Task.id) == task_id
            )
        )
    assert micros == (instant - EPOCH) // MICROSECOND
