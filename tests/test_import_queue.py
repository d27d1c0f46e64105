"""The job queue: claims, leases that fence a taken-over runner, retries, and pure reader rules."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from core.settings import Settings
from db import imports
from db.engine import SessionFactory
from db.imports import LeaseLost
from db.models import ImportStatus, TaskStatus, utcnow
from importer.reader import column_key
from importer.runner import GIVE_UP_MESSAGE, ImportRunner, background_runner
from importer.storage import sanitize_file_name
from importer.validation import parse_id, parse_status
from tests.support.imports import SEED_CSV, job_row, task_rows, upload_job
from tests.support.world import ImportWorld


async def _claim(session_factory: SessionFactory, lease: str, *, stale: float = 60) -> Any:
    now = utcnow()
    async with session_factory() as session, session.begin():
        return await imports.claim_next_job(
            session=session, lease=lease, now=now, stale_before=now - timedelta(seconds=stale)
        )


async def test_a_job_is_claimed_once_and_a_stale_one_is_taken_over(
    client: httpx.AsyncClient, session_factory: SessionFactory, admin_token: str
) -> None:
    job_id = await upload_job(client, SEED_CSV.encode(), token=admin_token)
    first = await _claim(session_factory, "lease-a")
    assert (first.id, first.status, first.attempts) == (job_id, ImportStatus.RUNNING, 1)
    assert await _claim(session_factory, "lease-b") is None  # running, heartbeat fresh

    await asyncio.sleep(0.05)
    second = await _claim(session_factory, "lease-b", stale=0.01)
    assert (second.id, second.lease, second.attempts) == (job_id, "lease-b", 2)
    # The first runner may still be alive: its next commit must fail, not double the rows.
    async with session_factory() as session, session.begin():
        with pytest.raises(LeaseLost):
            await imports.advance(
                session=session, job_id=job_id, lease="lease-a", imported=1, failed=0,
                offset=10, line=2, now=utcnow(),
            )  # fmt: skip
        await imports.heartbeat(session=session, job_id=job_id, lease="lease-b", now=utcnow())


async def test_a_job_whose_runners_keep_dying_is_given_up(
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    job_id = await upload_job(client, SEED_CSV.encode(), token=admin_token)
    for n in range(settings.import_max_attempts):
        await asyncio.sleep(0.02)
        assert await _claim(session_factory, f"dead-{n}", stale=0.01) is not None
    await asyncio.sleep(0.02)
    patient = settings.model_copy(update={"import_stale_seconds": 0.01})
    assert await ImportRunner(session_factory, patient).run_until_idle() == 1
    job = await job_row(session_factory, job_id)
    assert job.status == ImportStatus.FAILED
    assert job.message == GIVE_UP_MESSAGE.format(n=settings.import_max_attempts)


async def test_an_unexpected_error_puts_the_job_back_for_another_attempt(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = await upload_job(client, SEED_CSV.encode(), token=admin_token)
    real = imports.lookup_references

    async def flaky(**kwargs: Any) -> imports.References:
        monkeypatch.setattr(imports, "lookup_references", real)
        raise ConnectionError("database went away")

    monkeypatch.setattr(imports, "lookup_references", flaky)
    runner = ImportRunner(session_factory, settings)
    assert await runner.run_once() is True
    job = await job_row(session_factory, job_id)
    assert (job.status, job.lease, job.rows_processed) == (ImportStatus.QUEUED, None, 0)
    assert await runner.run_until_idle() == 1
    job = await job_row(session_factory, job_id)
    assert (job.status, job.attempts, job.rows_imported) == (ImportStatus.SUCCEEDED, 2, 1)
    assert len(await task_rows(session_factory)) == 1


async def test_the_in_process_runner_works_the_queue(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    on = settings.model_copy(update={"run_import_worker": True, "import_poll_seconds": 0.05})
    async with background_runner(session_factory, on):
        job_id = await upload_job(client, SEED_CSV.encode(), token=admin_token)
        for _ in range(200):
            if (await job_row(session_factory, job_id)).status == ImportStatus.SUCCEEDED:
                break
            await asyncio.sleep(0.05)
    assert (await job_row(session_factory, job_id)).status == ImportStatus.SUCCEEDED


def test_reader_rules() -> None:
    assert {column_key(n) for n in ("Project ID", " project_id ", "PROJECT-ID")} == {"projectid"}
    for text in ("Pending", "PENDING", " pending "):
        assert parse_status(text) == TaskStatus.PENDING
    for text in ("In Progress", "in progress", "IN_PROGRESS", "in_progress"):
        assert parse_status(text) == TaskStatus.IN_PROGRESS
    assert parse_status("done") == TaskStatus.DONE
    assert parse_status("InProgress") is None
    assert parse_status("") is None
    assert [parse_id(v) for v in (" 7 ", "0", "-1", "1.0", "2147483648", "٣")] == [
        7, None, None, None, None, None,
    ]  # fmt: skip
    assert sanitize_file_name("a\x00b\x1f\u202ec.csv") == "abc.csv"
    assert sanitize_file_name("   ") == "upload.csv"
    assert sanitize_file_name("x" * 300 + ".csv").endswith("x.csv")
    assert len(sanitize_file_name("x" * 300 + ".csv")) == 255
