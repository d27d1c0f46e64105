"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
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


class TaskQLSession(AsyncSession):
    """A session opened with `.begin()` is a unit of work that writes: say so to the engine."""

    def begin(self) -> AsyncSessionTransaction:
        sync = self.sync_session
        sync.execution_options = sync.execution_options.union({WRITE_OPTION: True})
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
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=TaskQLSession, expire_on_commit=False, autoflush=False)
