"""A database that stalls, refuses or is locked: SERVICE_UNAVAILABLE (HTTP 503, Retry-After) within
the timeouts, never INTERNAL_SERVER_ERROR, and the server recovers by itself.

PostgreSQL is reached through a TCP proxy the tests control (tests/support/proxy.py): stalled,
it keeps the sockets open and forwards nothing; cut, it closes them and refuses new ones.
"""

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from db.engine import Timeouts, make_engine, make_session_factory
from db.models import ImportStatus, User
from db.outage import DatabaseUnreachable, is_outage
from importer.runner import ImportRunner
from taskql.app import create_app
from tests.support.graphql import bearer
from tests.support.imports import SEED_CSV, job_row, upload_job
from tests.support.proxy import DatabaseProxy, database_proxy
from tests.support.world import ImportWorld

TIMEOUT = 1.0  # each database timeout in these tests
IN_TIME = TIMEOUT + 1.0  # a stalled database is reported within its timeout plus a second
RESPONSE_JSON = "application/graphql-response+json"

ME = "{ me { id } }"
TASKS_PAGE = "{ tasks(first: 5) { edges { node { id title } } } }"
RENAME = """
mutation Rename($id: Int!, $name: String!) {
  updateUser(input: {id: $id, fullName: $name}) { user { fullName } }
}
"""

Send = Callable[[], Awaitable[httpx.Response]]


@dataclass
class Proxied:
    """An app whose engine reaches PostgreSQL through `proxy`, and a client of it."""

    proxy: DatabaseProxy
    engine: AsyncEngine
    client: httpx.AsyncClient


@pytest.fixture
def quick_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "database_connect_timeout_seconds": TIMEOUT,
            "database_statement_timeout_seconds": TIMEOUT,
            "database_pool_timeout_seconds": TIMEOUT,
            "import_poll_seconds": 0.05,
        }
    )


def _client(settings: Settings, engine: AsyncEngine) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def proxied(
    backend: str, database_url: str, engine: AsyncEngine, quick_settings: Settings
) -> AsyncIterator[Proxied]:
    """The database (migrated and emptied through the real port) behind a proxy."""
    if backend != "postgresql":
        pytest.skip("the proxy stands between TaskQL and PostgreSQL")
    async with database_proxy(database_url) as proxy:
        timeouts = Timeouts.of(quick_settings)
        proxied_engine = make_engine(proxy.url_for(database_url), pool_size=4, timeouts=timeouts)
        try:
            async with _client(quick_settings, proxied_engine) as client:
                yield Proxied(proxy, proxied_engine, client)
        finally:
            if proxy.port:  # flowing again, so pooled connections close gracefully
                proxy.resume()
            await proxied_engine.dispose()


def _requests(client: httpx.AsyncClient, admin: User, token: str) -> dict[str, Send]:
    """One of each way into the server: the compiled reads' front door (both media types),
    the router's compiled path (GET), the executor (a mutation), and a REST download."""
    auth = bearer(token)

    def post(query: str, variables: dict[str, object] | None = None, accept: str = "") -> Send:
        headers = {**auth, "Accept": accept} if accept else auth
        body = {"query": query, "variables": variables or {}}
        return lambda: client.post("/graphql", json=body, headers=headers)

    return {
        "me (front door)": post(ME),
        "me (front door, graphql-response+json)": post(ME, accept=RESPONSE_JSON),
        "me (GET)": lambda: client.get("/graphql", params={"query": ME}, headers=auth),
        "a tasks page": post(TASKS_PAGE),
        "a mutation": post(RENAME, {"id": admin.id, "name": "Ada Renamed"}),
        "a mutation (graphql-response+json)": post(
            RENAME, {"id": admin.id, "name": "Ada Again"}, accept=RESPONSE_JSON
        ),
        "a report download": lambda: client.get("/upload/errors", headers=auth),
    }


async def _timed(send: Send) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await send()
    return response, time.monotonic() - started


def _assert_unavailable(name: str, response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, (name, response.status_code, response.text)
    assert response.headers["retry-after"] == "5", name
    errors = response.json()["errors"]
    assert {e["extensions"]["code"] for e in errors} == {"SERVICE_UNAVAILABLE"}, (name, errors)
    assert errors[0]["message"] == "The database is unavailable; retry shortly.", name
    assert elapsed < IN_TIME, (name, elapsed)


async def _assert_all_answer(requests: dict[str, Send]) -> None:
    for name, send in requests.items():
        response = await send()
        if name == "a report download":
            assert response.status_code == 404, (name, response.text)  # no import yet
            continue
        assert response.status_code == 200, (name, response.text)
        assert "errors" not in response.json(), (name, response.text)


async def test_a_stalled_database_is_unavailable_within_the_timeout_then_recovers(
    proxied: Proxied, admin: User, admin_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    requests = _requests(proxied.client, admin, admin_token)
    await _assert_all_answer(requests)

    proxied.proxy.stall()
    with caplog.at_level(logging.WARNING):
        for name, send in requests.items():
            _assert_unavailable(name, *await _timed(send))
        ready, elapsed = await _timed(lambda: proxied.client.get("/readyz"))
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("database unavailable: "), body
    assert "no answer" in body["reason"], body  # a statement or a connection timed out
    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert elapsed < IN_TIME
    # Warnings, without tracebacks; nothing logged as a bug.
    assert any("database unavailable" in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith("taskql"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    proxied.proxy.resume()
    await _assert_all_answer(requests)
    assert (await proxied.client.get("/readyz")).json() == {"status": "ok"}


async def test_stalled_connections_are_dropped_not_kept_in_the_pool(
    proxied: Proxied, admin: User, admin_token: str
) -> None:
    """More stalled requests than the pool holds, at once: each fails in time, and afterwards
    the pool hands out working connections, not the stalled ones."""
    requests = _requests(proxied.client, admin, admin_token)
    me = requests["me (front door)"]
    await asyncio.gather(*(me() for _ in range(4)))  # fill the pool (4) with live connections
    proxied.proxy.stall()
    answers = await asyncio.gather(*(_timed(me) for _ in range(8)))
    for response, elapsed in answers:
        # Those queued for a connection give up after the pool timeout.
        _assert_unavailable("me", response, elapsed)
    proxied.proxy.resume()
    for _ in range(6):
        response, elapsed = await _timed(me)
        assert response.status_code == 200, response.text
        assert elapsed < TIMEOUT


async def test_a_refusing_database_is_unavailable_at_once_then_recovers(
    proxied: Proxied, admin: User, admin_token: str
) -> None:
    requests = _requests(proxied.client, admin, admin_token)
    await _assert_all_answer(requests)

    await proxied.proxy.cut()  # open connections closed, new ones refused
    for name, send in requests.items():
        _assert_unavailable(name, *await _timed(send))
    ready = await proxied.client.get("/readyz")
    assert ready.status_code == 503
    assert "cannot connect" in ready.json()["reason"], ready.json()

    await proxied.proxy.restore()
    await _assert_all_answer(requests)


async def test_the_import_runner_waits_out_an_outage(
    proxied: Proxied,
    quick_settings: Settings,
    import_world: ImportWorld,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = ImportRunner(make_session_factory(proxied.engine), quick_settings)
    stop = asyncio.Event()
    await proxied.proxy.cut()
    with caplog.at_level(logging.WARNING, logger="taskql.importer"):
        task = asyncio.create_task(runner.run_forever(stop))
        try:
            await asyncio.sleep(0.3)  # several polls, each failing to claim
            assert not task.done()
            await proxied.proxy.restore()
            job_id = await upload_job(proxied.client, SEED_CSV.encode(), token=admin_token)
            sessions = make_session_factory(proxied.engine)
            for _ in range(100):
                if (await job_row(sessions, job_id)).status == ImportStatus.SUCCEEDED:
                    break
                await asyncio.sleep(0.05)
            assert (await job_row(sessions, job_id)).status == ImportStatus.SUCCEEDED
        finally:
            stop.set()
            await task
    failures = [r for r in caplog.records if "the database is unavailable" in r.getMessage()]
    assert failures
    assert all(r.exc_info is None for r in failures)


async def test_a_locked_sqlite_database_is_unavailable_within_the_busy_timeout(
    backend: str,
    database_url: str,
    engine: AsyncEngine,
    quick_settings: Settings,
    admin: User,
    admin_token: str,
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    quick_engine = make_engine(database_url, timeouts=Timeouts.of(quick_settings))
    locker = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        async with _client(quick_settings, quick_engine) as client:
            requests = _requests(client, admin, admin_token)
            locker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            for name in ("a mutation", "a mutation (graphql-response+json)"):
                _assert_unavailable(name, *await _timed(requests[name]))
            # Readers do not wait for writers (WAL).
            assert (await requests["me (front door)"]()).status_code == 200
            locker.execute("ROLLBACK")
            await _assert_all_answer(requests)
    finally:
        locker.close()
        await quick_engine.dispose()


async def test_postgres_cancels_a_slow_statement_and_the_connection_stays(
    backend: str, database_url: str, engine: AsyncEngine
) -> None:
    """A slow (not stalled) database: the server's statement_timeout answers first, so the
    request fails in time and the pooled connection survives."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    slow = make_engine(database_url, pool_size=1, timeouts=Timeouts(statement=TIMEOUT))
    try:
        async with slow.connect() as conn:
            backend_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        started = time.monotonic()
        with pytest.raises(sa_exc.DBAPIError) as raised:
            async with slow.connect() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < IN_TIME
        assert is_outage(raised.value)
        async with slow.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == backend_pid
    finally:
        await slow.dispose()


LOCKED = "database is locked"


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (TimeoutError(), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (DatabaseUnreachable("cannot connect: no answer within 5 s"), True),
        (sa_exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached"), True),
        (
            sa_exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")),
            True,
        ),
        (
            sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x")),
            False,
        ),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE failed")), False),
        (FileNotFoundError(2, "No such file"), False),
        (ValueError("a bug"), False),
        (KeyError("a bug"), False),
    ],
)
def test_outages_are_told_from_bugs(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage


def test_postgres_states_are_told_apart() -> None:
    import asyncpg  # type: ignore[import-untyped]

    def wrapped(error: Exception) -> Exception:
        try:
            raise sa_exc.DBAPIError("SELECT 1", {}, error)
        except sa_exc.DBAPIError as exc:
            return exc

    assert is_outage(wrapped(asyncpg.QueryCanceledError("statement timeout")))
    assert is_outage(wrapped(asyncpg.CannotConnectNowError("starting up")))
    assert is_outage(wrapped(asyncpg.TooManyConnectionsError("too many")))
    assert is_outage(asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"))
    assert not is_outage(wrapped(asyncpg.UniqueViolationError("duplicate key")))
    assert not is_outage(wrapped(asyncpg.UndefinedTableError("no such table")))
    assert not is_outage(wrapped(asyncpg.InvalidPasswordError("password")))
