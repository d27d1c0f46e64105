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


async def _pending(settings: Settings) -> str | None:
    from db import migrate
    from db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        return await migrate.pending_reason(engine)
    finally:
        await engine.dispose()


def ready_settings() -> Settings:
    """Settings with the database at head: development migrates it, production refuses to go on."""
    from db import migrate

    settings = settings_or_exit()
    if not settings.is_production:
        migrate.upgrade(settings.database_url)
    elif (reason := asyncio.run(_pending(settings))) is not None:
        sys.exit(f"taskql: refusing to start: {reason}. Run `taskql migrate` first.")
    return settings
