"""Fixture chain: backend -> engine -> settings -> app -> client -> gql(), plus factories.

Every test that asks for `engine` (directly or through `app`, `client`, `gql`, ...) runs once on
SQLite and once on PostgreSQL when TEST_DATABASE_URL is set. Under CI=true a missing or
unreachable PostgreSQL is an error, never a skip.
"""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from passlib.hash import bcrypt
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from auth.services import build_services
from core.settings import Settings
from db import migrate
from db.engine import SessionFactory, make_engine, make_session_factory
from db.models import Role, User, metadata
from taskql.app import create_app
from tests.importing import World, build_world

BACKENDS = ("sqlite", "postgresql")
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
TEST_BCRYPT_ROUNDS = 4  # the production cost (12) is checked in test_auth; tests need speed
DEFAULT_PASSWORD = "correct horse battery"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return Settings(database_url=url).database_url
    return None


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not postgres_url():
        raise pytest.UsageError("CI=true but TEST_DATABASE_URL is not set: PostgreSQL must run")


async def recreate_postgres_database(admin_url: str, name: str, *, create: bool) -> None:
    """Drop (and create) a scratch database through a connection to TEST_DATABASE_URL's."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql" and not postgres_url():
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'taskql.db'}"
    # Each run gets its own database, so parallel runs on one server cannot disturb each other.
    url = postgres_url()
    assert url is not None
    parsed = make_url(url)
    name = f"{parsed.database}_run_{os.getpid()}"
    return parsed.set(database=name).render_as_string(hide_password=False)


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


async def truncate_all(engine: AsyncEngine) -> None:
    tables = list(reversed(metadata.sorted_tables))
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{table.name}"' for table in tables)
            # Names come from our own metadata, not from input.
            await conn.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            # Without AUTOINCREMENT, SQLite's next rowid is max+1: empty tables restart at 1.
            for table in tables:
                await conn.execute(table.delete())


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    """The session's engine, on empty tables with ids starting at 1."""
    await truncate_all(migrated_engine)
    return migrated_engine


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


@dataclass
class GqlResult:
    status_code: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        """The data, after asserting there were no errors."""
        assert self.status_code == 200, self.body
        assert not self.errors, self.errors
        return self.data


Gql = Callable[..., Awaitable[GqlResult]]


@pytest.fixture
def gql(client: httpx.AsyncClient) -> Gql:
    async def run(
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GqlResult:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
        )
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {"raw": response.text}
        )
        return GqlResult(response.status_code, body)

    return run


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One hash of DEFAULT_PASSWORD at the test cost, shared by every factory-made user."""
    hashed: str = bcrypt.using(rounds=TEST_BCRYPT_ROUNDS).hash(DEFAULT_PASSWORD)
    return hashed


UserFactory = Callable[..., Awaitable[User]]


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


TokenFor = Callable[[User], str]


@pytest.fixture
def token_for(settings: Settings, engine: AsyncEngine) -> TokenFor:
    """A valid access token for a user, minted directly (no bcrypt, no HTTP)."""
    codec = build_services(settings, engine).authenticator.codec

    def mint(user: User) -> str:
        assert user.id is not None
        return codec.encode(codec.issue(user.id, "access"))

    return mint


@pytest.fixture
async def admin(make_user: UserFactory) -> User:
    return await make_user(email="admin@example.com", full_name="Ada Admin", role=Role.ADMIN)


@pytest.fixture
def admin_token(admin: User, token_for: TokenFor) -> str:
    return token_for(admin)


@pytest.fixture
async def import_world(
    session_factory: SessionFactory, admin: User, make_user: UserFactory
) -> World:
    """The members, deactivated user, outsider and project that import tests' rows refer to."""
    return await build_world(session_factory, admin, make_user)


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
