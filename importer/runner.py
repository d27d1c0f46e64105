"""The job runner: claims queued jobs, checks the file, loads it batch by batch, heartbeats.

Each batch (its valid tasks, its error rows, the job's checkpoint) commits in one transaction
fenced by the runner's lease, so a job resumed after a crash continues exactly where the last
commit left it: no row twice, none lost.
"""

import asyncio
import functools
import gc
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import aiofiles.os
import anyio

from core import metrics, tracing
from core.settings import Settings
from db import imports
from db.engine import SessionFactory
from db.imports import LeaseLost
from db.models import ImportJob, ImportStatus, utcnow
from db.outage import describe, is_outage
from importer import batches
from importer.reader import CsvSource, FileProblem, Header, Scan, parse_header, scan_file
from importer.storage import remove_quietly, stored_path

logger = logging.getLogger("taskql.importer")

GIVE_UP_MESSAGE = "The import stopped after {n} attempts; the server log has the errors."


class JobCancelled(Exception):
    """An admin cancelled the job: stop here, keeping what was committed (`job` counts it)."""

    def __init__(self, job: ImportJob) -> None:
        super().__init__(job.id)
        self.job = job


def cancel_message(job: ImportJob) -> str:
    """How far a cancelled job got."""
    total = "?" if job.rows_total is None else f"{job.rows_total:,}"
    done = "checked" if job.dry_run else "imported"
    return (
        f"Cancelled after {job.rows_processed:,} of {total} rows "
        f"({job.rows_imported:,} {done}, {job.rows_failed:,} rejected)."
    )


@dataclass(frozen=True, slots=True)
class Progress:
    job_id: str
    processed: int
    imported: int
    failed: int
    total: int | None


ProgressCallback = Callable[[Progress], None]


# A job's message is read with every importJob query: its parts and its whole are bounded.
MESSAGE_MAX = 2000
LISTED_MAX = 300
NAME_SHOWN_MAX = 40


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def listing(names: list[str], noun: str) -> str:
    """`names`, as many as fit in LISTED_MAX characters, and how many more there are."""
    shown: list[str] = []
    used = 0
    for name in names:
        name = _shorten(name, NAME_SHOWN_MAX)
        if shown and used + len(name) > LISTED_MAX:
            break
        shown.append(name)
        used += len(name) + 2
    rest = len(names) - len(shown)
    text = ", ".join(shown)
    return f"{text} … and {rest:,} more {noun}" if rest else text


def bounded_message(message: str | None) -> str | None:
    """At most MESSAGE_MAX characters, saying how many were left out."""
    if message is None or len(message) <= MESSAGE_MAX:
        return message
    kept = message[: MESSAGE_MAX - 40]
    return f"{kept}… ({len(message) - len(kept):,} more characters)"


def scan_message(scan: Scan) -> str | None:
    """What a successful job should still say about its file."""
    notes = []
    if scan.header.extra:
        notes.append(f"Ignored the extra columns: {listing(scan.header.extra, 'columns')}.")
    if scan.rows == 0:
        notes.append("The file has a header row but no data rows.")
    return " ".join(notes) or None


# The idle waits of this process's runners (run_forever), each created in its runner's loop.
_WAKERS: set[asyncio.Event] = set()


def wake_runners() -> None:
    """A job was just queued in this process: its idle runners claim it now, not at their next
    poll (runners elsewhere still poll)."""
    for wake in list(_WAKERS):
        wake.set()


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class ImportRunner:
    """Works the queue of import jobs; several may run, in one process or many."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.sessions = session_factory
        self.settings = settings
        self.on_progress = on_progress

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim and process jobs until `stop` is set; idle polls wait `import_poll_seconds`,
        or less when a job is queued in this process (wake_runners)."""
        wake = asyncio.Event()
        _WAKERS.add(wake)
        try:
            while not stop.is_set():
                wake.clear()  # before claiming: a job queued from here on wakes the wait below
                try:
                    worked = await self.run_once()
                except Exception as exc:
                    _log_failure("import runner: claiming a job failed", exc)
                    worked = False
                if not worked:
                    await _first_of(stop, wake, seconds=self.settings.import_poll_seconds)
        finally:
            _WAKERS.discard(wake)

    async def run_until_idle(self) -> int:
        """Process jobs until none is claimable; the number processed."""
        count = 0
        while await self.run_once():
            count += 1
        return count

    async def run_once(self) -> bool:
        """Claim one job and process it; False when there was nothing to claim."""
        lease = str(uuid.uuid4())
        now = utcnow()
        stale_before = now - timedelta(seconds=self.settings.import_stale_seconds)
        async with self.sessions() as session, session.begin():
            job = await imports.claim_next_job(
                session=session, lease=lease, now=now, stale_before=stale_before
            )
        if job is None:
            return False
        if job.cancel_requested_at is not None:  # cancelled while its runner was gone
            await self._finish(job, lease, ImportStatus.CANCELLED, cancel_message(job))
            return True
        if job.attempts > self.settings.import_max_attempts:
            message = GIVE_UP_MESSAGE.format(n=job.attempts - 1)
            await self._finish(job, lease, ImportStatus.FAILED, message)
            return True
        with tracing.span("import.job", job_id=job.id, attempt=job.attempts):
            await self.process(job, lease)
        return True

    async def process(self, job: ImportJob, lease: str) -> None:
        """Run a claimed job to its end (or until its lease is lost)."""
        logger.info("import job %s: started (attempt %d)", job.id, job.attempts)
        heartbeat = asyncio.create_task(self._heartbeat(job.id, lease))
        try:
            await self._work(job, lease)
        except FileProblem as problem:
            await self._finish(job, lease, ImportStatus.FAILED, str(problem))
        except JobCancelled as cancelled:
            message = cancel_message(cancelled.job)
            await self._finish(cancelled.job, lease, ImportStatus.CANCELLED, message)
        except LeaseLost:
            logger.warning("import job %s: taken over by another runner; stopping", job.id)
        except asyncio.CancelledError:
            # Shutting down: hand the job back now rather than after the stale timeout.
            with suppress(Exception):
                await asyncio.shield(asyncio.ensure_future(self._release(job, lease)))
            raise
        except Exception as exc:
            _log_failure(f"import job {job.id}: unexpected error", exc)
            await self._retry_or_fail(job, lease)
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat

    async def _work(self, job: ImportJob, lease: str) -> None:
        path = stored_path(self.settings.upload_dir, job.stored_name)
        if not await aiofiles.os.path.exists(path):
            raise FileProblem("The uploaded file is no longer available to this runner.")
        if job.rows_total is None:
            scan = await anyio.to_thread.run_sync(scan_file, path)
            job = await self._record_scan(job, lease, scan)
            if job.cancel_requested_at is not None:
                raise JobCancelled(job)
        header = parse_header(json.loads(job.header or "[]"))
        with CsvSource(path, offset=job.checkpoint_offset, line=job.checkpoint_line) as source:
            await self._load_all(job, lease, source, header)
        await self._finish(job, lease, ImportStatus.SUCCEEDED, None)

    async def _record_scan(self, job: ImportJob, lease: str, scan: Scan) -> ImportJob:
        async with self.sessions() as session, session.begin():
            await imports.record_scan(
                session=session,
                job_id=job.id,
                lease=lease,
                header=json.dumps(list(scan.header.names), ensure_ascii=False),
                rows_total=scan.rows,
                offset=scan.data_offset,
                line=scan.data_line,
                message=scan_message(scan),
            )
            fresh = await imports.get_job(session=session, job_id=job.id)
        assert fresh is not None
        self._report(fresh)
        return fresh

    async def _load_all(
        self, job: ImportJob, lease: str, source: CsvSource, header: Header
    ) -> None:
        """A two-stage pipeline: while one batch commits, the next is read, checked, looked up
        and split (in a thread), so the database and the parsing work at the same time."""
        pending = asyncio.ensure_future(self._prepare(job, source, header))
        try:
            while True:
                load = await pending
                if load is None:
                    return
                pending = asyncio.ensure_future(self._prepare(job, source, header))
                rows = len(load.tasks) + len(load.errors)
                with tracing.span("import.batch", job_id=job.id, rows=rows):
                    cancelled = await batches.commit_batch(self.sessions, job.id, lease, load)
                _count_rows(len(load.tasks), len(load.errors))
                job.rows_processed += len(load.tasks) + len(load.errors)
                job.rows_imported += len(load.tasks)
                job.rows_failed += len(load.errors)
                self._report(job)
                if cancelled:
                    raise JobCancelled(job)
        finally:
            if not pending.done():
                pending.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await pending

    async def _prepare(
        self, job: ImportJob, source: CsvSource, header: Header
    ) -> batches.LoadBatch | None:
        size = self.settings.import_batch_size
        parsed = await anyio.to_thread.run_sync(batches.read_batch, source, header, size)
        if not parsed.rows:
            return None
        refs = await batches.lookup(self.sessions, parsed)
        split = functools.partial(
            batches.split_batch,
            parsed,
            refs,
            job.id,
            job.created_by,
            utcnow(),
            job.dry_run,
        )
        return await anyio.to_thread.run_sync(split)

    def _report(self, job: ImportJob) -> None:
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    job.id, job.rows_processed, job.rows_imported, job.rows_failed, job.rows_total
                )
            )

    async def _finish(
        self, job: ImportJob, lease: str, status: ImportStatus, message: str | None
    ) -> None:
        async with self.sessions() as session, session.begin():
            await imports.finish_job(
                session=session,
                job_id=job.id,
                lease=lease,
                status=status,
                now=utcnow(),
                message=bounded_message(message),
            )
        await remove_quietly(stored_path(self.settings.upload_dir, job.stored_name))
        if metrics.ON:
            metrics.import_jobs_finished.labels(status.value).inc()
        logger.info(
            "import job %s: %s (%d imported, %d failed)%s",
            job.id,
            status.value,
            job.rows_imported,
            job.rows_failed,
            f": {message}" if message else "",
        )

    async def _release(self, job: ImportJob, lease: str) -> None:
        async with self.sessions() as session, session.begin():
            await imports.release_job(session=session, job_id=job.id, lease=lease)
        logger.info("import job %s: released back to the queue", job.id)

    async def _retry_or_fail(self, job: ImportJob, lease: str) -> None:
        try:
            if job.attempts >= self.settings.import_max_attempts:
                message = GIVE_UP_MESSAGE.format(n=job.attempts)
                await self._finish(job, lease, ImportStatus.FAILED, message)
            else:
                await self._release(job, lease)
        except Exception as exc:
            # The job stays RUNNING; once its heartbeat is stale another runner takes it.
            _log_failure(f"import job {job.id}: could not record the failure", exc)

    async def _heartbeat(self, job_id: str, lease: str) -> None:
        while True:
            await asyncio.sleep(self.settings.import_heartbeat_seconds)
            try:
                async with self.sessions() as session, session.begin():
                    await imports.heartbeat(
                        session=session, job_id=job_id, lease=lease, now=utcnow()
                    )
                if metrics.ON:
                    metrics.import_heartbeats.inc()
            except LeaseLost:
                return
            except Exception as exc:
                outage = is_outage(exc)
                logger.warning("import job %s: heartbeat failed", job_id, exc_info=not outage)


def _count_rows(imported: int, failed: int) -> None:
    if metrics.ON:
        metrics.import_rows.labels("imported").inc(imported)
        metrics.import_rows.labels("failed").inc(failed)


def _log_failure(message: str, exc: Exception) -> None:
    """A traceback for a bug; one line for a database outage, which a runner waits out."""
    if is_outage(exc):
        logger.warning("%s: the database is unavailable (%s)", message, describe(exc))
    else:
        logger.exception(message)


def settle_heap() -> None:
    """Collect, then freeze what survived start-up (the app, the schema, the models), so the
    collections that a batch's many short-lived objects trigger need not walk all of it again."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def background_runner(
    session_factory: SessionFactory, settings: Settings
) -> AsyncIterator[None]:
    """Run one runner in this process while the block runs (when RUN_IMPORT_WORKER is on)."""
    if not settings.run_import_worker:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(ImportRunner(session_factory, settings).run_forever(stop))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
