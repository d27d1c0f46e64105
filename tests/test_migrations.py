"""Migrations go up and down on both databases, and match the models exactly."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url

from db import migrate
from db.engine import make_engine
from db.models import metadata
from tests.support.database import (
    postgres_url,
    recreate_postgres_database,
    scratch_postgres_url,
    sqlite_url,
)


@pytest.fixture
async def scratch_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of its own, so going down to base disturbs no other test."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "migrations.db")
        return
    admin_url = postgres_url()
    assert admin_url is not None
    url = scratch_postgres_url("mig")
    name = make_url(url).database or ""
    await recreate_postgres_database(admin_url, name, create=True)
    yield url
    await recreate_postgres_database(admin_url, name, create=False)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def test_up_down_up_and_no_drift(scratch_url: str) -> None:
    await anyio.to_thread.run_sync(migrate.upgrade, scratch_url)
    engine = make_engine(scratch_url)
    try:
        assert await migrate.pending_reason(engine) is None
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert {t.name for t in metadata.sorted_tables} <= await conn.run_sync(_tables)

        await anyio.to_thread.run_sync(migrate.downgrade, scratch_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        assert await migrate.pending_reason(engine) == "the database has no migrations applied"

        await anyio.to_thread.run_sync(migrate.upgrade, scratch_url)
        assert await migrate.pending_reason(engine) is None
    finally:
        await engine.dispose()


async def test_readyz_reports_an_unmigrated_database(scratch_url: str) -> None:
    import httpx

    from core.settings import Settings
    from taskql.app import create_app

    settings = Settings(
        environment="test", database_url=scratch_url, jwt_secret_key="k" * 40, bcrypt_rounds=4
    )
    engine = make_engine(scratch_url)
    try:
        app = create_app(settings, engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["reason"] == "the database has no migrations applied"
    finally:
        await engine.dispose()


async def test_production_refuses_an_unmigrated_database(scratch_url: str) -> None:
    engine = make_engine(scratch_url)
    try:
        with pytest.raises(migrate.DatabaseNotReady, match="taskql migrate"):
            await migrate.migrate_or_refuse(engine, scratch_url, may_migrate=False)
        # development migrates instead
        await migrate.migrate_or_refuse(engine, scratch_url, may_migrate=True)
        assert await migrate.pending_reason(engine) is None
    finally:
        await engine.dispose()


async def test_0005_down_and_up_keeps_users_and_what_refers_to_them(scratch_url: str) -> None:
    """Dropping `token_version` never copies `user` (on SQLite, dropping the old table would
    cascade to memberships, tasks and refresh tokens); going up again starts every user at 0."""
    await anyio.to_thread.run_sync(migrate.upgrade, scratch_url)
    engine = make_engine(scratch_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    'INSERT INTO "user" (email, full_name, hashed_password, role, is_active, '
                    "token_version, created_at, updated_at) "
                    "VALUES ('a@example.com', 'A', 'x', 'USER', true, 3, :now, :now)"
                ).bindparams(now=datetime.now(UTC))
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO project (name, description, created_by, created_at, updated_at) "
                    "VALUES ('P', '', 1, :now, :now)"
                ).bindparams(now=datetime.now(UTC))
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO project_member (project_id, user_id, added_at) VALUES (1, 1, :now)"
                ).bindparams(now=datetime.now(UTC))
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO task (project_id, title, description, status, assigned_to, "
                    "created_by, created_at, updated_at) "
                    "VALUES (1, 'T', '', 'PENDING', 1, 1, :now, :now)"
                ).bindparams(now=datetime.now(UTC))
            )
        await anyio.to_thread.run_sync(migrate.downgrade, scratch_url, "0004")
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("user")}
            )
            assert "token_version" not in columns
            assert "login_failure" not in await conn.run_sync(_tables)
            row = (await conn.execute(sa.text("SELECT assigned_to FROM task"))).one()
            assert row.assigned_to == 1
            members = await conn.execute(sa.text("SELECT count(*) FROM project_member"))
            assert members.scalar_one() == 1

        await anyio.to_thread.run_sync(migrate.upgrade, scratch_url)
        async with engine.connect() as conn:
            version = await conn.execute(sa.text('SELECT token_version FROM "user"'))
            assert version.scalar_one() == 0
    finally:
        await engine.dispose()
