"""Fixture chain: backend -> engine -> settings -> app -> client -> gql(), plus factories.

Every test that asks for `engine` (directly or through `app`, `client`, `gql`, ...) runs once on
SQLite and once on PostgreSQL when TEST_DATABASE_URL is set. Under CI=true a missing or
unreachable PostgreSQL is an error, never a skip.

This file holds fixtures and hooks only; test modules import helpers from tests/support.
"""

import functools
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from passlib.hash import bcrypt
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.services import build_services
from core.settings import Settings
from db import migrate
from db.engine import SessionFactory, make_engine, make_session_factory
from db.models import Role, User
from taskql.app import create_app
from tests.support.accounts import (
    DEFAULT_PASSWORD,
    TEST_BCRYPT_ROUNDS,
    TEST_SECRET,
    TokenFor,
    UserFactory,
)
from tests.support.database import (
    BACKENDS,
    IN_CI,
    postgres_url,
    recreate_postgres_database,
    scratch_postgres_url,
    sqlite_url,
    truncate_all,
)
from tests.support.graphql import Gql, post_graphql
from tests.support.logscan import SecretScan
from tests.support.world import ImportWorld, World, build_import_world, build_world


@pytest.fixture(scope="session", autouse=True)
def no_secrets_in_logs() -> Iterator[SecretScan]:
    """Every log record of the run, at INFO and above, formatted as the server would write it:
    none may show a password, a token or an Authorization value (README: Operating)."""
    scan, root = SecretScan(), logging.getLogger()
    level = root.level
    root.addHandler(scan)
    root.setLevel(min(level, logging.INFO) or logging.INFO)
    yield scan
    root.removeHandler(scan)
    root.setLevel(level)
    assert not scan.leaks, "secrets in log lines:\n" + "\n".join(scan.leaks[:20])


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not postgres_url():
        raise pytest.UsageError("CI=true but TEST_DATABASE_URL is not set: PostgreSQL must run")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and not postgres_url():
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return sqlite_url(tmp_path_factory.mktemp("db") / "taskql.db")
    # Each run gets its own database, so parallel runs on one server cannot disturb each other.
    return scratch_postgres_url("run")


@pytest.fixture(scope="session")
async def migrated_engine(database_url: str, backend: str) -> AsyncIterator[AsyncEngine]:
    """One migrated database per backend for the whole session."""
    scratch = make_url(database_url).database or ""
    admin_url = postgres_url() or ""
    if backend == "postgresql":
        try:
            with anyio.fail_after(10):
                await recreate_postgres_database(admin_url, scratch, create=True)
        except Exception as exc:
            message = f"PostgreSQL at {make_url(database_url).host} is unreachable: {exc!r}"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
    await anyio.to_thread.run_sync(migrate.upgrade, database_url)
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()
    if backend == "postgresql":
        await recreate_postgres_database(admin_url, scratch, create=False)


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    """The session's engine, on empty tables with ids starting at 1."""
    await truncate_all(migrated_engine)
    return migrated_engine


@pytest.fixture
def collect_dropped_coroutines() -> Iterator[None]:
    """For tests that send documents in which a failing field nulls its parent: graphql-core
    then drops the sibling resolvers it had not awaited, and their coroutines are collected,
    with a warning, whenever the collector next runs. Collect them at the end of the test that
    made them (whose marks expect the warning), not in whichever test comes next."""
    yield
    gc.collect()


@pytest.fixture
async def small_engine(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second engine on the PostgreSQL test database with a single pooled connection (tests
    of PostgreSQL's transaction handling and of its driver; skipped on SQLite)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's connections")
    one = make_engine(database_url, pool_size=1)
    yield one
    await one.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> SessionFactory:
    return make_session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        jwt_secret_key=TEST_SECRET,
        bcrypt_rounds=TEST_BCRYPT_ROUNDS,
        upload_dir=tmp_path / "uploads",
        run_import_worker=False,
    )


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def executor_client(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app without compiled reads: every read goes to the executor."""
    app = create_app(settings.model_copy(update={"compiled_reads": False}), engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def gql(client: httpx.AsyncClient, executor_client: httpx.AsyncClient) -> Gql:
    """Post a GraphQL document through the test client: `await gql(query, variables, token=)`.

    Each read is also answered by the executor alone, and the answers must agree.
    """
    return functools.partial(post_graphql, client, reference=executor_client)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One hash of DEFAULT_PASSWORD at the test cost, shared by every factory-made user."""
    hashed: str = bcrypt.using(rounds=TEST_BCRYPT_ROUNDS).hash(DEFAULT_PASSWORD)
    return hashed


@pytest.fixture
def make_user(session_factory: SessionFactory, password_hash: str) -> UserFactory:
    counter = 0

    async def make(
        *,
        email: str | None = None,
        full_name: str | None = None,
        role: Role = Role.USER,
        is_active: bool = True,
    ) -> User:
        nonlocal counter
        counter += 1
        user = User(
            email=(email or f"user{counter}@example.com").lower(),
            full_name=full_name or f"User {counter}",
            hashed_password=password_hash,
            role=role,
            is_active=is_active,
        )
        async with session_factory() as session, session.begin():
            session.add(user)
        return user

    return make


@pytest.fixture
def token_for(settings: Settings, engine: AsyncEngine) -> TokenFor:
    """A valid access token for a user, minted directly (no bcrypt, no HTTP)."""
    codec = build_services(settings, engine).authenticator.codec

    def mint(user: User) -> str:
        assert user.id is not None
        return codec.encode(codec.issue(user.id, "access", version=user.token_version))

    return mint


@pytest.fixture
async def admin(make_user: UserFactory) -> User:
    return await make_user(email="admin@example.com", full_name="Ada Admin", role=Role.ADMIN)


@pytest.fixture
def admin_token(admin: User, token_for: TokenFor) -> str:
    return token_for(admin)


@pytest.fixture
async def world(
    session_factory: SessionFactory, admin: User, make_user: UserFactory, token_for: TokenFor
) -> World:
    """Apollo and Zephyr, their members and tasks, and a token per access level (see World)."""
    return await build_world(session_factory, admin, make_user, token_for)


@pytest.fixture
async def import_world(
    session_factory: SessionFactory, admin: User, make_user: UserFactory
) -> ImportWorld:
    """The members, deactivated user, outsider and project that import tests' rows refer to."""
    return await build_import_world(session_factory, admin, make_user)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tag every test with the database it runs on, for the per-database summary."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("backend") if callspec is not None else None
        if name in BACKENDS:
            item.user_properties.append(("backend", name))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Show how many tests ran on each database, so CI's log proves both were exercised."""
    counts = {name: {"passed": 0, "failed": 0, "skipped": 0} for name in BACKENDS}
    for outcome, key in (
        ("passed", "passed"),
        ("failed", "failed"),
        ("error", "failed"),
        ("skipped", "skipped"),
    ):
        for report in terminalreporter.stats.get(outcome, []):
            props = dict(getattr(report, "user_properties", []))
            name = props.get("backend")
            if name not in counts:
                continue
            if outcome == "passed" and getattr(report, "when", "call") != "call":
                continue
            counts[name][key] += 1
    terminalreporter.section("tests per database")
    for name, c in counts.items():
        terminalreporter.write_line(
            f"{name}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        )
