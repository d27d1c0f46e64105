"""The databases the suite runs on: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import recreate_postgres
from core.settings import Settings
from db.models import metadata

BACKENDS = ("sqlite", "postgresql")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_url() -> str | None:
    """TEST_DATABASE_URL on the async driver, or None when PostgreSQL tests are off."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return Settings(database_url=url).database_url
    return None


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def scratch_postgres_url(tag: str) -> str:
    """A database beside TEST_DATABASE_URL's, named for this run so parallel runs cannot collide."""
    url = postgres_url()
    assert url is not None
    parsed = make_url(url)
    name = f"{parsed.database}_{tag}_{os.getpid()}"
    return parsed.set(database=name).render_as_string(hide_password=False)


async def recreate_postgres_database(admin_url: str, name: str, *, create: bool) -> None:
    """Drop (and create) a scratch database through a connection to TEST_DATABASE_URL's."""
    admin = make_url(admin_url)
    scratch = admin.set(database=name).render_as_string(hide_password=False)
    await recreate_postgres(scratch, create=create, via=admin.database or "postgres")


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table, so the next test's ids start at 1 again."""
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
