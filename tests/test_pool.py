"""The connection pool serves waiting checkouts first come, first served (db/pool.py)."""

import asyncio
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, QueueCommon

from core.settings import Settings
from db.engine import Timeouts, make_engine
from db.pool import FairAsyncPool, FairQueue
from taskql.app import create_app


async def take(queue: QueueCommon[str], seconds: float = 5.0) -> str:
    """A blocking `get`, run the way the pool runs it: inside SQLAlchemy's greenlet."""
    got: str = await greenlet_spawn(queue.get, True, seconds)
    return got


async def waiting(queue: QueueCommon[str]) -> "asyncio.Task[str]":
    """A checkout that is already waiting when this returns."""
    task = asyncio.create_task(take(queue))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    return task


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the tasks under test signal nothing
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("queue_class", [FairQueue, AsyncAdaptedQueue], ids=["fair", "stock"])
async def test_a_returned_connection_goes_to_the_oldest_waiter(
    queue_class: type[QueueCommon[str]],
) -> None:
    """B waits; C is about to ask (its task is scheduled) when A returns the connection. The
    fair queue hands it to B and C waits its turn; SQLAlchemy's own queue lets C take it
    while B, woken, finds the queue empty and queues again (the unfairness db/pool.py fixes)."""
    queue = queue_class(1)
    first = await waiting(queue)
    newcomer = asyncio.create_task(take(queue, seconds=0.3))  # scheduled before the hand-back
    queue.put_nowait("connection")
    if queue_class is FairQueue:
        assert await first == "connection"
        with pytest.raises(Empty):
            await newcomer
    else:
        assert await newcomer == "connection"
        assert not first.done()
        first.cancel()


async def test_waiters_are_served_in_arrival_order() -> None:
    queue = FairQueue(2)
    waiters = [await waiting(queue) for _ in range(4)]
    for index in range(4):
        queue.put_nowait(f"c{index}")
    assert [await w for w in waiters] == ["c0", "c1", "c2", "c3"]
    assert queue.qsize() == 0


async def test_a_waiter_cancelled_after_the_hand_over_passes_the_connection_on() -> None:
    """A request that goes away just after its connection arrived must not lose it."""
    queue = FairQueue(1)
    first = await waiting(queue)
    second = await waiting(queue)
    queue.put_nowait("connection")  # handed to `first`, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "connection"


async def test_a_timed_out_waiter_is_skipped_and_the_connection_kept() -> None:
    queue = FairQueue(1)
    started = time.perf_counter()
    with pytest.raises(Empty):
        await take(queue, seconds=0.2)
    assert 0.15 < time.perf_counter() - started < 2
    queue.put_nowait("connection")  # nobody waits any more: it stays in the queue
    assert queue.qsize() == 1
    assert await take(queue) == "connection"


async def test_the_engine_serves_checkouts_in_order_and_times_out_cleanly(
    database_url: str, engine: AsyncEngine
) -> None:
    """On the real database: two pooled connections held, four more requests wait and get
    them in the order they asked; a request beyond the pool's timeout fails with the pool's
    TimeoutError (which the server answers as SERVICE_UNAVAILABLE), and nothing leaks."""
    small = make_engine(database_url, pool_size=2, timeouts=Timeouts(pool=0.5))
    pool = small.sync_engine.pool
    assert isinstance(pool, FairAsyncPool)
    served: list[int] = []

    async def checkout(number: int, hold: asyncio.Event) -> None:
        async with small.connect() as connection:
            served.append(number)  # the order of checkouts (statements may end in any order)
            assert await connection.scalar(sa.select(sa.literal(number))) == number
            await hold.wait()

    try:
        release = asyncio.Event()
        holders = [asyncio.create_task(checkout(n, release)) for n in (0, 1)]
        await until(lambda: len(served) == 2)
        done = asyncio.Event()
        done.set()
        waiters = []
        for number in range(2, 6):
            waiters.append(asyncio.create_task(checkout(number, done)))
            await asyncio.sleep(0.02)  # each one queued before the next asks
        release.set()
        await asyncio.gather(*holders, *waiters)
        assert sorted(served[:2]) == [0, 1]  # two new connections, opened in any order
        assert served[2:] == [2, 3, 4, 5]

        release = asyncio.Event()
        holders = [asyncio.create_task(checkout(n, release)) for n in (6, 7)]
        await until(lambda: len(served) == 8)
        started = time.perf_counter()
        with pytest.raises(sa_exc.TimeoutError):
            async with small.connect() as connection:
                await connection.scalar(sa.select(1))
        assert 0.4 < time.perf_counter() - started < 3
        release.set()
        await asyncio.gather(*holders)
        assert pool.checkedout() == 0
        async with small.connect() as connection:  # the pool still works
            assert await connection.scalar(sa.select(sa.literal(8))) == 8
    finally:
        await small.dispose()


async def test_a_server_pools_database_pool_size_connections(
    database_url: str, engine: AsyncEngine
) -> None:
    settings = Settings(database_url=database_url, database_pool_size=3)
    assert Settings(database_url=database_url).database_pool_size == 4  # the default
    app = create_app(settings)
    own = app.state.services.engine
    try:
        assert isinstance(own.sync_engine.pool, FairAsyncPool)
        assert own.sync_engine.pool.size() == 3
    finally:
        await own.dispose()
