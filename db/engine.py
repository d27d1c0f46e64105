"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

SessionFactory = async_sessionmaker[AsyncSession]


WRITE_OPTION = "taskql_write"
READ_OPTION = "taskql_read"


class TaskQLSession(AsyncSession):
    """A session opened with `.begin()` is a unit of work that writes; any other only reads.

    Both say so to the engine: see `_sqlite_begin` and `_postgres_begin`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sync = self.sync_session
        sync.execution_options = sync.execution_options.union({READ_OPTION: True})

    def begin(self) -> AsyncSessionTransaction:
        sync = self.sync_session
        sync.execution_options = sync.execution_options.union(
            {WRITE_OPTION: True, READ_OPTION: False}
        )
        return super().begin()


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # We emit BEGIN ourselves (see _sqlite_begin) instead of the driver's implicit one.
    dbapi_connection.isolation_level = None
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A writing unit of work takes SQLite's write lock at BEGIN (waiting up to busy_timeout), so
    # its reads and writes are serialised with other writers: a check-then-update cannot race,
    # and a read snapshot can never go stale before the write. Reads stay deferred and concurrent.
    writes = connection.get_execution_options().get(WRITE_OPTION, False)
    # Straight on the DBAPI cursor: transaction control is not a query, so statement counters
    # (tests, bench) keep counting the same statements on SQLite as on PostgreSQL.
    cursor = connection.connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
    finally:
        cursor.close()


def _postgres_begin(connection: Connection) -> None:
    # A reading session runs in autocommit: no BEGIN before its statement and no ROLLBACK after,
    # one round trip per statement instead of three. Under READ COMMITTED each statement sees
    # its own snapshot inside a transaction too, so reads see exactly what they saw before.
    # Everything else (units of work, Core `engine.begin()`) keeps its transaction. The flag is
    # set at every begin, because pooled connections pass from readers to writers.
    reads = connection.get_execution_options().get(READ_OPTION, False)
    connection.connection.dbapi_connection.autocommit = reads  # type: ignore[union-attr]


def _drop_closed(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    # Instead of pool_pre_ping's round trip on every checkout (three with asyncpg outside
    # autocommit): a connection the server has closed (restart, idle timeout) was noticed by the
    # event loop, so the pool may be told to replace it for free.
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory that holds a file-based SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Build an engine with the per-backend settings TaskQL relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # A fixed pool: under load, overflow connections were opened and closed again for every few
    # requests (a backend fork each). Sessions never nest, so waiting for a free one is safe.
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0)
    event.listen(engine.sync_engine, "begin", _postgres_begin)
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=TaskQLSession, expire_on_commit=False, autoflush=False)
