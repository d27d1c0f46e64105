"""Telling a database outage from a bug: down, refusing, stalled past a timeout, or busy.

Only this layer knows the drivers, so the API layers ask `is_outage(exc)` and answer
SERVICE_UNAVAILABLE (graph/errors.py, taskql/http_errors.py) instead of INTERNAL_SERVER_ERROR.
"""

import errno
import os
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

# SQLSTATE classes that say the server is unreachable or unwell rather than the statement wrong:
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57 operator intervention (57014 a statement timeout, 57P01 a shutdown, 57P03 starting up),
# 58 system error. 55P03: a lock was not granted in time.
OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})
OUTAGE_SQLSTATES = frozenset({"55P03"})
# SQLite: another writer holds the lock past the busy timeout; the file cannot be read or opened.
SQLITE_OUTAGES = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN")
UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT}
)

# The exception classes an outage arrives as (for exception handlers keyed by class); whether
# one of them is an outage is `is_outage`'s answer.
OUTAGE_BASES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    OSError,  # TimeoutError, ConnectionError, DatabaseUnreachable
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)


class DatabaseUnreachable(ConnectionError):
    """Connecting to the database failed: refused, unreachable, or no answer in time."""


def is_outage(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps, says the database is down, refusing, not answering
    within a timeout, or busy; not a mistake in a statement or in our code."""
    return any(_says_outage(error) for error in _wrapped(exc))


def describe(exc: BaseException) -> str:
    """A short reason for logs and readiness: what kind of outage `exc` is."""
    for error in _wrapped(exc):
        if isinstance(error, DatabaseUnreachable):
            return str(error)
        if isinstance(error, sa_exc.TimeoutError):
            return "no free connection in the pool in time (DATABASE_POOL_TIMEOUT_SECONDS)"
        if isinstance(error, TimeoutError):
            return "no answer in time (DATABASE_STATEMENT_TIMEOUT_SECONDS)"
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate == "57014":
            return "a statement ran past DATABASE_STATEMENT_TIMEOUT_SECONDS and was cancelled"
        if isinstance(error, sqlite3.Error) and _sqlite_outage(error):
            return f"{error} (waited DATABASE_STATEMENT_TIMEOUT_SECONDS)"
        if isinstance(error, ConnectionError | asyncpg.InterfaceError):
            return f"the connection failed: {error or type(error).__name__}"
        if isinstance(sqlstate, str) and _says_outage(error):
            return f"{error} (SQLSTATE {sqlstate})"
    return f"{type(exc).__name__}: {exc}"


def connect_failure(exc: BaseException, timeout: float | None) -> DatabaseUnreachable | None:
    """The outage a failed connection attempt means, or None when it is something else (a bad
    password, a missing database: mistakes to show as they are)."""
    if isinstance(exc, TimeoutError):
        limit = f" within {timeout:g} s" if timeout is not None else ""
        return DatabaseUnreachable(f"cannot connect: no answer{limit}")
    if isinstance(exc, OSError) and not isinstance(exc, DatabaseUnreachable):
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        return DatabaseUnreachable(f"cannot connect: {reason}")
    return None


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps: a driver's error under SQLAlchemy's, its cause, and so on."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__


def _says_outage(error: BaseException) -> bool:
    if isinstance(
        error, TimeoutError | ConnectionError | sa_exc.TimeoutError | sa_exc.DisconnectionError
    ):
        return True
    if isinstance(error, asyncpg.InterfaceError):
        # A closed or broken connection; not a client misconfiguration or a bad value.
        return not isinstance(error, ValueError | asyncpg.UnsupportedClientFeatureError)
    if isinstance(error, socket.gaierror):
        return True
    if isinstance(error, OSError) and error.errno in UNREACHABLE_ERRNOS:
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES or sqlstate in OUTAGE_SQLSTATES
    return isinstance(error, sqlite3.Error) and _sqlite_outage(error)


def _sqlite_outage(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", None)
    if isinstance(name, str):
        return name.startswith(SQLITE_OUTAGES)
    return "database is locked" in str(error)
