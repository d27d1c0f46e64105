"""Submitting an import: store the upload, then queue its job. Nothing is parsed here."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from core.errors import Conflict, NotFound
from core.settings import Settings
from db import imports
from db.engine import SessionFactory
from db.listener import Inbox
from db.models import ImportJob, utcnow
from importer.runner import wake_runners
from importer.storage import remove_quietly, sanitize_file_name, store_upload, stored_path


class DuplicateUpload(Conflict):
    """The same bytes as an earlier import: CONFLICT, naming it (also `extensions.jobId`)."""

    def __init__(self, earlier: ImportJob) -> None:
        super().__init__(
            f"This file was already uploaded as import job {earlier.id} "
            f"({earlier.file_name}, {earlier.created_at:%Y-%m-%d %H:%M} UTC, "
            f"{earlier.status.value}). Pass allowDuplicate: true to import it again.",
            field="file",
        )
        self.job_id = earlier.id

    def details(self) -> dict[str, object]:
        return {"jobId": self.job_id}


async def submit_import(
    *,
    session_factory: SessionFactory,
    settings: Settings,
    chunks: AsyncIterator[bytes],
    file_name: str | None,
    created_by: int,
    lease: str | None = None,
    dry_run: bool = False,
    allow_duplicate: bool = False,
) -> ImportJob:
    """Stream the file to disk (size-limited) and create its job: QUEUED, or RUNNING under
    `lease` when the caller will process it itself.

    The same bytes as an earlier upload that imported (or may still import) tasks are CONFLICT,
    naming that job, unless `allow_duplicate`; a dry run is checked too, but never counts as an
    earlier upload itself.
    """
    stored = await store_upload(
        chunks, upload_dir=settings.upload_dir, max_bytes=settings.import_max_bytes
    )
    try:
        async with session_factory() as session, session.begin():
            if not allow_duplicate:
                earlier = await imports.earlier_upload(session=session, sha256=stored.sha256)
                if earlier is not None:
                    raise DuplicateUpload(earlier)
            job = await imports.create_job(
                session=session,
                job_id=stored.job_id,
                file_name=sanitize_file_name(file_name),
                stored_name=stored.stored_name,
                size_bytes=stored.size_bytes,
                created_by=created_by,
                now=utcnow(),
                lease=lease,
                sha256=stored.sha256,
                dry_run=dry_run,
            )
    except BaseException:
        await remove_quietly(stored_path(settings.upload_dir, stored.stored_name))
        raise
    if lease is None:
        wake_runners()  # committed: this process's idle runner takes it at once
    return job


async def watch_job(
    session_factory: SessionFactory,
    job_id: str,
    *,
    interval: float | None,
    inbox: Inbox | None = None,
) -> AsyncIterator[ImportJob]:
    """The job now, then again whenever it advances, until it finishes.

    With an `inbox` of the job's events (db/listener.py) it reads the job again when one arrives,
    from whichever runner on whichever host; `interval`, when set, also re-reads it that often
    (SQLite: a runner in another process publishes nothing to this one). Without an inbox it
    polls every `interval` seconds."""
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
        if inbox is None:
            await asyncio.sleep(interval or 0.5)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inbox.next(), interval)
        while inbox.next_nowait() is not None:  # one read answers every event so far
            pass
