"""Run and inspect Alembic migrations from code (the CLI, the server's start-up, the tests)."""

import asyncio
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("taskql.migrate")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config that needs no alembic.ini, so it works from any directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Blocking: call it from a thread inside an event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision`. Blocking, like `upgrade`."""
    command.downgrade(alembic_config(url), revision)


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return set(script.get_heads())


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def pending_reason(engine: AsyncEngine) -> str | None:
    """Why the database is not at the migration head, or None when it is."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    heads = head_revisions()
    if current == heads:
        return None
    if not current:
        return "the database has no migrations applied"
    return f"the database is at {sorted(current)}, the code expects {sorted(heads)}"


class DatabaseNotReady(RuntimeError):
    """The database is behind the code and may not be migrated here (production)."""


async def migrate_or_refuse(engine: AsyncEngine, url: str, *, may_migrate: bool) -> None:
    """Bring the database to head when allowed (development, tests); otherwise refuse with the
    reason and the command that fixes it. The one rule every start-up path follows."""
    reason = await pending_reason(engine)
    if reason is None:
        return
    if not may_migrate:
        raise DatabaseNotReady(
            f"Refusing to start: {reason}. Run `taskql migrate` (or `make migrate`) first."
        )
    logger.info("applying migrations (%s)", reason)
    await asyncio.to_thread(upgrade, url)
