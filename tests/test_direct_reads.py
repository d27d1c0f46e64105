"""Compiled reads on PostgreSQL go to the driver several to a round trip (db/direct.py).

Reads of one statement that wait at the same time share one checkout, one write and one
answer, in batches of at most BATCH_LIMIT, each with its own parameters and its own row; a
statement that fails fails only its own read; a cancelled read does not cost the others of its
batch their answers; and over HTTP, callers whose reads went out together each get exactly the
answer they get alone."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from core import metrics
from core.settings import Settings
from db.direct import BATCH_LIMIT, fetch_row
from db.engine import Timeouts, make_engine
from taskql.app import create_app
from tests.support.metrics import moved, parse_scrape
from tests.support.world import ROLES, World, pk

# `now()` is the start of the transaction: the statements of one round trip share an implicit
# one, while reads sent one by one each start their own.
ECHO = "SELECT $1::int, now()::text, pg_backend_pid()"
SLEEP = "SELECT pg_sleep($1::float8), $2::int"
PID = "SELECT pg_backend_pid()"


def pool_of(engine: AsyncEngine) -> QueuePool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool


@asynccontextmanager
async def engine_with(database_url: str, **settings: Any) -> AsyncIterator[AsyncEngine]:
    """An engine of one connection with the server's timeouts for these `settings`."""
    timeouts = Timeouts.of(Settings(database_url=database_url, **settings))
    one = make_engine(database_url, pool_size=1, timeouts=timeouts)
    try:
        yield one
    finally:
        await one.dispose()


async def holding(engine: AsyncEngine, seconds: float) -> "asyncio.Task[Any]":
    """A read that keeps the pool's only connection busy for `seconds`, once it has it."""
    taken = asyncio.Event()

    def on_checkout(*_: Any) -> None:
        taken.set()

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", on_checkout)
    try:
        task = asyncio.create_task(fetch_row(engine, "SELECT pg_sleep($1::float8)", [seconds]))
        async with asyncio.timeout(5):
            await taken.wait()
    finally:
        event.remove(pool, "checkout", on_checkout)
    return task


async def test_reads_that_wait_together_share_a_round_trip(small_engine: AsyncEngine) -> None:
    alone = [await fetch_row(small_engine, ECHO, [n]) for n in range(3)]
    assert [row[0] for row in alone] == [0, 1, 2]
    assert len({row[1] for row in alone}) == 3  # one transaction, one round trip, each

    hold = await holding(small_engine, 0.3)
    rows = await asyncio.gather(*(fetch_row(small_engine, ECHO, [n]) for n in range(10)))
    await hold
    assert [row[0] for row in rows] == list(range(10))  # each its own parameters and row
    assert len({row[1] for row in rows}) == 1  # all ten in one round trip
    assert {row[2] for row in rows} == {alone[0][2]}  # on the same, kept, connection


async def test_a_backlog_goes_out_in_batches_of_at_most_the_limit(
    small_engine: AsyncEngine,
) -> None:
    count = 2 * BATCH_LIMIT + 5
    hold = await holding(small_engine, 0.3)
    rows = await asyncio.gather(*(fetch_row(small_engine, ECHO, [n]) for n in range(count)))
    await hold
    assert [row[0] for row in rows] == list(range(count))
    # In arrival order: the first BATCH_LIMIT together, the next BATCH_LIMIT, then the rest.
    assert batch_sizes(rows) == [BATCH_LIMIT, BATCH_LIMIT, 5]


def batch_sizes(rows: list[tuple[Any, ...]]) -> list[int]:
    """The sizes of the runs of consecutive reads that shared a transaction, each of which
    must be a whole batch (its transaction seen in no other run)."""
    runs: list[tuple[str, int]] = []
    for row in rows:
        if runs and runs[-1][0] == row[1]:
            runs[-1] = (row[1], runs[-1][1] + 1)
        else:
            runs.append((row[1], 1))
    assert len(runs) == len({started for started, _ in runs}), runs
    return [size for _, size in runs]


async def test_a_statement_that_fails_fails_only_its_own_read(small_engine: AsyncEngine) -> None:
    pid = (await fetch_row(small_engine, PID, []))[0]
    hold = await holding(small_engine, 0.2)
    divisors = [1, 0, 3, 4]
    results = await asyncio.gather(
        *(fetch_row(small_engine, "SELECT 12 / $1::int", [d]) for d in divisors),
        return_exceptions=True,
    )
    await hold
    assert results[0] == (12,)
    assert isinstance(results[1], asyncpg.DivisionByZeroError)
    assert results[2:] == [(4,), (3,)]
    assert (await fetch_row(small_engine, PID, []))[0] == pid  # the connection is kept


async def test_a_cancelled_read_leaves_the_others_of_its_batch_their_answers(
    small_engine: AsyncEngine,
) -> None:
    pid = (await fetch_row(small_engine, PID, []))[0]
    hold = await holding(small_engine, 0.1)
    reads = [asyncio.create_task(fetch_row(small_engine, SLEEP, [0.2, n])) for n in range(3)]
    await asyncio.sleep(0.2)  # the batch is on its first statement
    reads[1].cancel()
    answers = await asyncio.gather(*reads, return_exceptions=True)
    await hold
    assert isinstance(answers[1], asyncio.CancelledError)
    assert [answers[0], answers[2]] == [(None, 0), (None, 2)]
    assert (await fetch_row(small_engine, PID, []))[0] == pid  # not interrupted


async def test_a_batch_whose_reads_are_all_cancelled_drops_its_connection(
    small_engine: AsyncEngine,
) -> None:
    pid = (await fetch_row(small_engine, PID, []))[0]
    hold = await holding(small_engine, 0.1)
    reads = [asyncio.create_task(fetch_row(small_engine, SLEEP, [5.0, n])) for n in range(2)]
    await asyncio.sleep(0.3)
    for read in reads:
        read.cancel()
    for read in reads:
        with pytest.raises(asyncio.CancelledError):
            await read
    await hold
    assert pool_of(small_engine).checkedout() == 0
    async with asyncio.timeout(3):  # a fresh connection, not one still sleeping
        assert (await fetch_row(small_engine, PID, []))[0] != pid


async def test_reads_go_to_the_pool_the_engine_has_now(small_engine: AsyncEngine) -> None:
    """Disposing of an engine replaces its pool: later reads must not open connections on the
    old one, which nobody would close."""
    await fetch_row(small_engine, PID, [])
    await small_engine.dispose()
    await fetch_row(small_engine, PID, [])
    assert pool_of(small_engine).checkedin() == 1


async def test_a_pool_timeout_fails_the_reads_that_waited_for_it(
    engine: AsyncEngine, database_url: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's driver")
    async with engine_with(database_url, database_pool_timeout_seconds=0.2) as short:
        hold = await holding(short, 1.0)
        results = await asyncio.gather(
            *(fetch_row(short, ECHO, [n]) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, Exception) for r in results), results
        await hold
        assert (await fetch_row(short, ECHO, [7]))[0] == 7  # and the pool goes on


async def test_reads_too_slow_to_share_the_client_timeout_go_one_by_one(
    engine: AsyncEngine, database_url: str
) -> None:
    """The driver gives a batch the time of one statement: with a 1 s statement timeout (the
    client's 1.5 s), reads of 0.2 s each are not batched, quick ones are."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's driver")
    slow = "SELECT pg_sleep($1::float8), $2::int, now()::text"
    async with engine_with(database_url, database_statement_timeout_seconds=1.0) as timed:
        await fetch_row(timed, slow, [0.2, 0])  # the statement's pace, once
        hold = await holding(timed, 0.1)
        rows = await asyncio.gather(*(fetch_row(timed, slow, [0.2, n]) for n in range(3)))
        await hold
        assert [row[1] for row in rows] == [0, 1, 2]
        assert len({row[2] for row in rows}) == 3  # three round trips

        await fetch_row(timed, ECHO, [0])
        hold = await holding(timed, 0.1)
        rows = await asyncio.gather(*(fetch_row(timed, ECHO, [n]) for n in range(5)))
        await hold
        assert len({row[1] for row in rows}) == 1  # one


# Over HTTP: every caller of the world, every task, at once through a pool of one connection.
TASK = (
    "query Task($id: Int!) { task(id: $id) { id title status"
    " project { name } assignee { email } } }"
)


@pytest.fixture
async def narrow_app(
    settings: Settings, engine: AsyncEngine, database_url: str
) -> AsyncIterator[FastAPI]:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's driver")
    one = make_engine(database_url, pool_size=1)
    yield create_app(settings.model_copy(update={"metrics": "public"}), one)
    metrics.enable(False)
    await one.dispose()


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.usefixtures("collect_dropped_coroutines")  # the executor's NOT_FOUND answers
async def test_callers_whose_reads_went_out_together_get_their_own_answers(
    narrow_app: FastAPI, world: World
) -> None:
    transport = httpx.ASGITransport(app=narrow_app)
    requests = [
        (role, pk(task))
        for role in ROLES
        if world.token(role) is not None
        for task in (world.spec, world.review, world.other)
    ]

    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def ask(role: str, task_id: int) -> tuple[str, Any]:
            response = await client.post(
                "/graphql",
                json={"query": TASK, "variables": {"id": task_id}},
                headers={"Authorization": f"Bearer {world.token(role)}"},
            )
            assert response.status_code == 200
            return response.headers["X-TaskQL-Read-Path"], response.json()

        alone = {request: await ask(*request) for request in requests}
        compiled = sum(1 for path, _ in alone.values() if path == "compiled")
        assert compiled >= len(ROLES) - 1  # each caller sees some task, compiled
        # (the others, NOT_FOUND, are reported by the executor after the compiled read)
        before = parse_scrape((await client.get("/metrics")).text)
        together = await asyncio.gather(*(ask(*request) for request in requests * 3))
        after = parse_scrape((await client.get("/metrics")).text)

    assert together == [alone[request] for request in requests * 3]
    reads = moved(before, after, "taskql_db_read_batch_size_sum")
    round_trips = moved(before, after, "taskql_db_read_batch_size_count")
    assert reads == 3 * len(requests)  # one compiled read each
    assert round_trips < reads  # some of them shared a round trip
