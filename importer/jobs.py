"""Submitting an import: store the upload, then queue its job. Nothing is parsed here."""

import asyncio
from collections.abc import AsyncIterator

from core.errors import NotFound
from core.settings import Settings
from db import imports
from db.engine import SessionFactory
from db.models import ImportJob, utcnow
from importer.storage import remove_quietly, sanitize_file_name, store_upload, stored_path


async def submit_import(
    *,
    session_factory: SessionFactory,
    settings: Settings,
    chunks: AsyncIterator[bytes],
    file_name: str | None,
    created_by: int,
    lease: str | None = None,
) -> ImportJob:
    """Stream the file to disk (size-limited) and create its job: QUEUED, or RUNNING under
    `lease` when the caller will process it itself."""
    stored = await store_upload(
        chunks, upload_dir=settings.upload_dir, max_bytes=settings.import_max_bytes
    )
    try:
        async with session_factory() as session, session.begin():
            return await imports.create_job(
                session=session,
                job_id=stored.job_id,
                file_name=sanitize_file_name(file_name),
                stored_name=stored.stored_name,
                size_bytes=stored.size_bytes,
                created_by=created_by,
                now=utcnow(),
                lease=lease,
            )
    except BaseException:
        await remove_quietly(stored_path(settings.upload_dir, stored.stored_name))
        raise


async def watch_job(
    session_factory: SessionFactory, job_id: str, *, interval: float
) -> AsyncIterator[ImportJob]:
    """The job now, then again whenever it advances, until it finishes. Polls the database, so
    it follows jobs run by any runner on any host."""
    seen: tuple[object, ...] | None = None
    while True:
        async with session_factory() as session:
            job = await imports.get_job(session=session, job_id=job_id)
        if job is None:
            raise NotFound("No import job has this id.", field="id")
        state = (job.status, job.rows_processed, job.rows_total, job.message)
        if state != seen:
            seen = state
            yield job
        if job.status in imports.FINISHED:
            return
        await asyncio.sleep(interval)
