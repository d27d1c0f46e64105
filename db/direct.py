"""One read statement straight on the driver: a pooled asyncpg connection's `fetchrow`.

The compiled read path sends one statement per request, already compiled to PostgreSQL's
`$n` placeholders, and wants one row of text back. Through SQLAlchemy's execution layer (a
`Connection`, its transaction bookkeeping, the cursor adapter, the result) such a read cost
about 490 µs of CPU per statement in a loop, against about 180 µs for the same checkout from
the same pool with the driver's own `fetchrow` (its prepared-statement cache included).

What the layer did for the server is kept: the connection comes from, and goes back to, the
engine's pool (its size, fair waiting, timeouts, checkout checks and metrics); the statement
and client timeouts are the connection's; a statement inside a recorded trace gets its
`db.query` span; and a connection interrupted mid-statement (a timeout, a cancelled request,
a lost socket) is aborted and dropped from the pool rather than reused (db/engine.py).
"""

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from sqlalchemy.util import await_, greenlet_spawn

from db.observe import statement_span

INTERRUPTED = (TimeoutError, asyncio.CancelledError, ConnectionError)

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


async def fetch_row(engine: AsyncEngine, sql: str, parameters: Sequence[Any]) -> tuple[Any, ...]:
    """The one row `sql` returns, in autocommit (a read: no BEGIN, no ROLLBACK)."""
    for watcher in _watchers.get(engine.sync_engine, ()):
        watcher(sql)
    span = statement_span(engine.dialect.name, sql)
    try:
        return await greenlet_spawn(_fetch, engine.sync_engine.pool, sql, parameters)
    except BaseException as exc:
        if span is not None:
            span.record_exception(exc)
            span.set_attribute("error", True)
        raise
    finally:
        if span is not None:
            span.end()


def _fetch(pool: Pool, sql: str, parameters: Sequence[Any]) -> tuple[Any, ...]:
    # Runs in SQLAlchemy's greenlet, where the pool may wait for a connection.
    pooled = pool.connect()
    try:
        driver = pooled.driver_connection
        assert driver is not None
        try:
            row = await_(driver.fetchrow(sql, *parameters))
        except BaseException as exc:
            if isinstance(exc, INTERRUPTED) or driver.is_closed():
                driver.terminate()  # mid-protocol, or gone: never wait on it again
                pooled.invalidate(exc if isinstance(exc, Exception) else None)
            raise
    finally:
        pooled.close()
    if row is None:
        raise LookupError("the statement returned no row")
    return tuple(row)
