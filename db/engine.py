"""Async engine and session factory for SQLite (embedded default) and PostgreSQL."""

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from core.settings import Settings
from db.outage import connect_failure
from db.pool import FairAsyncPool

SessionFactory = async_sessionmaker[AsyncSession]


WRITE_OPTION = "taskql_write"
READ_OPTION = "taskql_read"

SQLITE_BUSY_SECONDS = 10.0  # SQLite's wait for the write lock when no statement timeout is set
# PostgreSQL cancels a slow statement itself, keeping the connection; the client gives up this
# much later, for a server that does not answer at all.
CLIENT_TIMEOUT_MARGIN = 0.5
CACHEABLE_STATEMENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long to wait on the database, in seconds, before calling it unavailable.

    None keeps the driver's default: asyncpg connects for up to 60 s and waits for a statement
    forever, SQLite waits SQLITE_BUSY_SECONDS for the write lock, the pool 30 s.
    """

    connect: float | None = None
    statement: float | None = None
    pool: float | None = None

    @classmethod
    def of(cls, settings: Settings) -> "Timeouts":
        """The `DATABASE_*_TIMEOUT_SECONDS` settings."""
        return cls(
            connect=settings.database_connect_timeout_seconds,
            statement=settings.database_statement_timeout_seconds,
            pool=settings.database_pool_timeout_seconds,
        )


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


def _sqlite_pragmas(busy_seconds: float) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # We emit BEGIN ourselves (see _sqlite_begin) instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite's statement timeout: how long a writer waits for another one's lock.
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.close()

    return on_connect


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


def _postgres_statement_timeout(seconds: float) -> Callable[[Any, ConnectionPoolEntry], None]:
    # SET rather than a startup parameter, which PgBouncer refuses; straight on the driver, so
    # the pool's rollback on check-in cannot undo it.
    command = f"SET statement_timeout = {max(1, round(seconds * 1000))}"

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.run_async(lambda driver: driver.execute(command))

    return on_connect


def _drop_interrupted(context: ExceptionContext) -> None:
    # A statement the client stopped waiting for (its own timeout, a cancelled request, a lost
    # socket) leaves the connection mid-protocol. SQLAlchemy discards it, but closing it
    # gracefully would wait on a stalled server again: abort the socket now instead.
    context.invalidate_pool_on_disconnect = False  # the others: `_drop_closed`, at checkout
    interrupted = (TimeoutError, asyncio.CancelledError, ConnectionError)
    connection = context.connection
    if not isinstance(context.original_exception, interrupted) or connection is None:
        return
    if connection.invalidated or connection.closed:
        return
    driver = connection.connection.driver_connection
    if driver is not None:
        driver.terminate()
    context.is_disconnect = True


def _connecting(timeout: float | None) -> Callable[[Dialect, Any, Any, Any], Any]:
    def connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            failure = connect_failure(exc, timeout)
            if failure is None:
                raise
            raise failure from exc

    return connect


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory that holds a file-based SQLite database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


# The client timeout of one statement on a PostgreSQL engine (its connections' `command_timeout`),
# for the batched reads of db/direct.py.
_client_timeouts: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()


def client_timeout(engine: AsyncEngine) -> float | None:
    """How long the driver waits for one statement's answer on this engine (None: no limit)."""
    return _client_timeouts.get(engine.sync_engine)


def make_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, timeouts: Timeouts | None = None
) -> AsyncEngine:
    """Build an engine with the per-backend settings TaskQL relies on; servers pass their
    `timeouts` (`Timeouts.of(settings)`), migrations and tools keep the drivers' defaults."""
    timeouts = timeouts or Timeouts()
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        busy = timeouts.statement if timeouts.statement is not None else SQLITE_BUSY_SECONDS
        if parsed.database not in (None, "", ":memory:"):  # a file: a pool of connections
            options.update(poolclass=FairAsyncPool, pool_size=pool_size, max_overflow=0)
            if timeouts.pool is not None:
                options["pool_timeout"] = timeouts.pool
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": busy}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # asyncpg keeps the 100 statements last prepared on each connection, but by default only
    # statements under 15 KiB; a compiled read (db/direct.py) can be longer, and is sent again
    # and again.
    connect_args: dict[str, Any] = {"max_cacheable_statement_size": CACHEABLE_STATEMENT_BYTES}
    if timeouts.connect is not None:
        connect_args["timeout"] = timeouts.connect
    if timeouts.statement is not None:
        connect_args["command_timeout"] = timeouts.statement + CLIENT_TIMEOUT_MARGIN
    if timeouts.pool is not None:
        options["pool_timeout"] = timeouts.pool
    # A fixed pool: under load, overflow connections were opened and closed again for every few
    # requests (a backend fork each). Sessions never nest, so waiting for a free one is safe.
    # Checkouts first come, first served (db/pool.py): SQLAlchemy's own queue lets a newcomer
    # take a returned connection ahead of the callers already waiting for one.
    engine = create_async_engine(
        url,
        echo=echo,
        poolclass=FairAsyncPool,
        pool_size=pool_size,
        max_overflow=0,
        connect_args=connect_args,
        **options,
    )
    sync = engine.sync_engine
    event.listen(sync, "do_connect", _connecting(timeouts.connect))
    if timeouts.statement is not None:
        event.listen(sync, "connect", _postgres_statement_timeout(timeouts.statement))
    event.listen(sync, "begin", _postgres_begin)
    event.listen(sync, "checkout", _drop_closed)
    event.listen(sync, "handle_error", _drop_interrupted)
    if timeouts.statement is not None:
        _client_timeouts[sync] = connect_args["command_timeout"]
    return engine


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, class_=TaskQLSession, expire_on_commit=False, autoflush=False)
