"""The import queue at a glance, for the metrics scrape: jobs per status, the oldest waiting."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ImportJob, ImportStatus


@dataclass(frozen=True, slots=True)
class QueueFigures:
    jobs_by_status: dict[str, int]
    oldest_queued_at: datetime | None


async def queue_figures(*, session: AsyncSession) -> QueueFigures:
    """Counts per status (every status, zero included) and the oldest queued job's creation."""
    table = ImportJob.__table__  # type: ignore[attr-defined]
    counts = await session.execute(
        sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
    )
    by_status = {status.value: 0 for status in ImportStatus}
    for status, count in counts:
        by_status[ImportStatus(status).value] = count
    oldest = await session.scalar(
        sa.select(sa.func.min(table.c.created_at)).where(table.c.status == ImportStatus.QUEUED)
    )
    return QueueFigures(by_status, oldest)
