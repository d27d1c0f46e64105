"""Read statements straight on the driver, several to a round trip.

The compiled read path sends one statement per request, already compiled to PostgreSQL's `$n`
placeholders, and wants one row of text back. Two costs dominated such a read:

- SQLAlchemy's execution layer (a `Connection`, its transaction bookkeeping, the cursor adapter,
  the result): about 490 µs of CPU per statement in a loop, against about 180 µs for the same
  checkout from the same pool with the driver's own `fetchrow`.
- The round trip itself. For `task(id)` under load, a third of the server's CPU went to `write`
  calls, the one that hands the statement to PostgreSQL (and wakes its backend) the dearest;
  the backend spent as much again receiving, answering and going back to sleep.

So reads of the same statement text that wait at the same time go out together: one checkout,
one write of all their Bind/Execute messages and a single Sync (asyncpg's `fetchmany`), one
answer. Each read is still its own statement with its own parameters and its own snapshot
(READ COMMITTED takes one per statement), exactly as when sent alone. Nothing is held back to
fill a batch: a read that finds a free connection goes at once, alone; the batches form while
connections are busy, from the reads that would otherwise have queued one by one for them.
On the read benchmark's `task(id)` (2 workers, 32 clients) the server's CPU per request fell
from 270-330 to 180-190 µs, PostgreSQL's from 104-135 to 64-66 µs (bench/README.md).

What SQLAlchemy's layer did for the server is kept: the connection comes from, and goes back
to, the engine's pool (its size, fair waiting, timeouts, checkout checks and metrics); the
statement and client timeouts are the connection's (PostgreSQL times each statement of a batch
on its own, the driver the whole batch as one, so a statement that is slow for its own sake is
not batched: see `Pipeline._limit`); a read inside a recorded trace gets its `db.query` span;
and a connection interrupted mid-statement (a timeout, a lost socket, or every read of its
batch cancelled) is aborted and dropped from the pool rather than reused.
A statement that fails in a batch makes the others run again one by one on the same
connection, so only the read that fails sees its error.
"""

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_, greenlet_spawn

from core import metrics
from db.engine import client_timeout
from db.observe import statement_span

INTERRUPTED = (TimeoutError, asyncio.CancelledError, ConnectionError)
# At most this many reads to a round trip: enough for the whole backlog of a busy server
# process, few enough that one batch does not keep the others' answers long.
BATCH_LIMIT = 16
BATCH_SHARE = 0.25  # of the client timeout, that a batch is expected to take at most
TIMED_STATEMENTS = 1024

Row = tuple[Any, ...]
StatementWatcher = Callable[[str], None]
# What `before_cursor_execute` listeners are to SQLAlchemy's execution layer, for the statements
# sent here: each watcher of the engine is called with the statement (statement counts in tests).
_watchers: "weakref.WeakKeyDictionary[Any, list[StatementWatcher]]" = weakref.WeakKeyDictionary()


def watch_statements(engine: AsyncEngine, watcher: StatementWatcher) -> None:
    _watchers.setdefault(engine.sync_engine, []).append(watcher)


def unwatch_statements(engine: AsyncEngine, watcher: StatementWatcher) -> None:
    _watchers.get(engine.sync_engine, []).remove(watcher)


def supports_direct_reads(engine: AsyncEngine) -> bool:
    """Whether `fetch_row` can run on this engine's driver (asyncpg)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


async def fetch_row(engine: AsyncEngine, sql: str, parameters: Sequence[Any]) -> Row:
    """The one row `sql` returns, in autocommit (a read: no BEGIN, no ROLLBACK), sent together
    with the other reads of the same `sql` waiting at the time."""
    sync = engine.sync_engine
    for watcher in _watchers.get(sync, ()):
        watcher(sql)
    span = statement_span(engine.dialect.name, sql)
    try:
        return await _pipeline(engine).read(sync.pool, sql, parameters)
    except BaseException as exc:
        if span is not None:
            span.record_exception(exc)
            span.set_attribute("error", True)
        raise
    finally:
        if span is not None:
            span.end()


_pipelines: "weakref.WeakKeyDictionary[Any, Pipeline]" = weakref.WeakKeyDictionary()


def _pipeline(engine: AsyncEngine) -> "Pipeline":
    loop = asyncio.get_running_loop()
    pipeline = _pipelines.get(engine.sync_engine)
    if pipeline is None or pipeline.loop is not loop:  # one per event loop (tests run several)
        pipeline = Pipeline(loop, client_timeout(engine))
        _pipelines[engine.sync_engine] = pipeline
    return pipeline


class _Read:
    __slots__ = ("batch", "future", "parameters")

    def __init__(self, parameters: Sequence[Any], future: "asyncio.Future[Row]") -> None:
        self.parameters = parameters
        self.future = future
        self.batch: _Batch | None = None  # once a connection has taken it


class _Batch:
    __slots__ = ("reads", "task")

    def __init__(self) -> None:
        self.reads: list[_Read] | None = None  # None until it has a connection and takes them
        self.task: asyncio.Task[None] | None = None

    def abandoned(self) -> bool:
        return all(read.future.done() for read in self.reads or ())


class Pipeline:
    """The reads of one engine on one event loop: for each statement text, the reads waiting
    to go, and at most one batch waiting for a connection to take them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self.loop = loop
        self.timeout = timeout  # the driver's wait for one answer, a whole batch's included
        self.seconds: dict[str, float] = {}  # per statement text: its recent time per read
        self.waiting: dict[str, list[_Read]] = {}
        self.collecting: set[str] = set()  # statements with a batch waiting for a connection
        self.running: set[asyncio.Task[None]] = set()

    async def read(self, pool: Pool, sql: str, parameters: Sequence[Any]) -> Row:
        """`sql`'s row for `parameters`, from a connection of `pool` (the engine's pool of the
        moment: disposing of an engine replaces it)."""
        read = _Read(parameters, self.loop.create_future())
        self.waiting.setdefault(sql, []).append(read)
        if sql not in self.collecting:
            self._collect(pool, sql)
        try:
            return await read.future
        except asyncio.CancelledError:
            batch = read.batch
            if batch is not None and batch.task is not None and batch.abandoned():
                # Nobody waits for this batch's answers any more: stop its statement, and let
                # the connection be dropped before going on, as a lone read would.
                batch.task.cancel()
                await asyncio.wait([batch.task])
            raise

    def _collect(self, pool: Pool, sql: str) -> None:
        self.collecting.add(sql)
        batch = _Batch()
        batch.task = self.loop.create_task(self._run(pool, sql, batch))
        batch.task.add_done_callback(self.running.discard)
        self.running.add(batch.task)

    async def _run(self, pool: Pool, sql: str, batch: _Batch) -> None:
        try:
            await greenlet_spawn(self._send, pool, sql, batch)
        except BaseException as exc:
            # Without a connection (the pool timed out, the database is down), the reads this
            # batch was to take fail with it, as each would have on its own; so do the ones
            # it took if it was stopped.
            if batch.reads is None:  # still the statement's collecting batch
                self.collecting.discard(sql)
                batch.reads = self.waiting.pop(sql, [])
            for read in batch.reads:
                _fail(read, exc)
            if not isinstance(exc, Exception):
                raise

    def _take(self, pool: Pool, sql: str) -> list[_Read]:
        """The reads now waiting for `sql` (up to the limit; a new batch for the rest)."""
        self.collecting.discard(sql)
        waiting = [read for read in self.waiting.pop(sql, []) if not read.future.done()]
        limit = self._limit(sql)
        reads, rest = waiting[:limit], waiting[limit:]
        if rest:
            self.waiting[sql] = rest
            self._collect(pool, sql)
        return reads

    def _limit(self, sql: str) -> int:
        """How many reads of `sql` may share a round trip: BATCH_LIMIT, unless at their recent
        pace a batch would take more than BATCH_SHARE of the client timeout (the driver gives a
        batch no longer than one statement: a stalled server is noticed as soon as with one).
        One until the statement has been timed once."""
        if self.timeout is None:
            return BATCH_LIMIT
        seconds = self.seconds.get(sql)
        if seconds is None:
            return 1
        fits = int(self.timeout * BATCH_SHARE / max(seconds, 1e-6))
        return max(1, min(BATCH_LIMIT, fits))

    def _timed(self, sql: str, started: float, reads: int) -> None:
        each = (time.perf_counter() - started) / reads
        before = self.seconds.get(sql)
        if before is None and len(self.seconds) >= TIMED_STATEMENTS:
            self.seconds.clear()  # bounded: statements come and go with the plan cache
        self.seconds[sql] = each if before is None else before + (each - before) / 4

    def _send(self, pool: Pool, sql: str, batch: _Batch) -> None:
        # Runs in SQLAlchemy's greenlet, where the pool may wait for a connection.
        pooled = pool.connect()
        try:
            batch.reads = self._take(pool, sql)
            for read in batch.reads:
                read.batch = batch
            if batch.reads:
                if metrics.ON:
                    metrics.read_batch_size.observe(len(batch.reads))
                self._answer(pooled, sql, batch.reads)
        finally:
            pooled.close()

    def _answer(self, pooled: Any, sql: str, reads: list[_Read]) -> None:
        """Answer `reads` in one round trip."""
        driver = pooled.driver_connection
        assert driver is not None
        started = time.perf_counter()
        try:
            rows = self._execute(driver, sql, reads)
        except BaseException as exc:
            if isinstance(exc, INTERRUPTED) or driver.is_closed():
                driver.terminate()  # mid-protocol, or gone: never wait on it again
                pooled.invalidate(exc if isinstance(exc, Exception) else None)
                raise
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, asyncpg.PostgresError) and len(reads) > 1:
                # After a failed batch: each read alone, so only the one that fails sees it.
                for read in reads:
                    if not read.future.done():
                        self._answer(pooled, sql, [read])
                return
            for read in reads:
                _fail(read, exc)
            return
        self._timed(sql, started, len(reads))
        for read, row in zip(reads, rows, strict=True):
            if not read.future.done():
                read.future.set_result(tuple(row))

    def _execute(self, driver: Any, sql: str, reads: list[_Read]) -> list[Any]:
        if len(reads) == 1:
            row = await_(driver.fetchrow(sql, *reads[0].parameters))
            if row is None:
                raise LookupError("the statement returned no row")
            return [row]
        rows = await_(driver.fetchmany(sql, [r.parameters for r in reads]))
        if len(rows) != len(reads):
            raise LookupError(f"{len(reads)} statements returned {len(rows)} rows")
        return list(rows)


def _fail(read: _Read, exc: BaseException) -> None:
    if read.future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        read.future.cancel()
    else:
        read.future.set_exception(exc)
