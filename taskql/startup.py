"""What `taskql` commands do before their work: valid settings, and a database at head."""

import asyncio
import sys

from core.settings import Settings, SettingsError, get_settings


def settings_or_exit() -> Settings:
    """The settings, or exit with the reason they cannot be used."""
    try:
        return get_settings()
    except SettingsError as exc:
        sys.exit(f"taskql: {exc}")


async def _migrate_or_refuse(settings: Settings) -> None:
    from db import migrate
    from db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        await migrate.migrate_or_refuse(
            engine, settings.database_url, may_migrate=not settings.is_production
        )
    finally:
        await engine.dispose()


def ready_settings() -> Settings:
    """Settings with the database at head: development migrates it, production refuses to go on."""
    from db.migrate import DatabaseNotReady

    settings = settings_or_exit()
    try:
        asyncio.run(_migrate_or_refuse(settings))
    except DatabaseNotReady as exc:
        sys.exit(f"taskql: {exc}")
    return settings
