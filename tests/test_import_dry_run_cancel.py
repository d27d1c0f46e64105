"""Dry runs, the duplicate guard and cancelling: what each inserts, reports and answers."""

from typing import Any

import httpx
import pytest

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportStatus
from importer import batches
from importer.runner import ImportRunner
from tests.support.graphql import Gql
from tests.support.imports import (
    HEADER,
    IMPORT_JOB,
    download_report,
    generate_csv,
    job_row,
    run_queue,
    task_rows,
    upload,
    upload_job,
)
from tests.support.world import ImportWorld

CANCEL = "mutation($id: ID!) { cancelImportJob(id: $id) { id status message dryRun } }"


async def _job(gql: Gql, job_id: str, token: str) -> dict[str, Any]:
    job: dict[str, Any] = (await gql(IMPORT_JOB, {"id": job_id}, token=token)).ok()["importJob"]
    return job


def _counts(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["status"], job["rowsTotal"], job["rowsImported"], job["rowsFailed"])


async def test_a_dry_run_inserts_nothing_and_reports_what_a_real_run_does(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    file = generate_csv(60, world=import_world, every=7)
    small = settings.model_copy(update={"import_batch_size": 16})  # several batches
    dry_response = await upload(client, file.content, token=admin_token, dry_run=True)
    dry_id = dry_response.json()["data"]["importTasks"]["id"]
    assert dry_response.json()["data"]["importTasks"]["dryRun"] is True
    assert await ImportRunner(session_factory, small).run_until_idle() == 1
    assert await task_rows(session_factory) == []
    dry = await _job(gql, dry_id, admin_token)
    dry_report = (await download_report(client, dry_id, token=admin_token)).text

    # A dry run is not an earlier upload: the real run of the same bytes is accepted.
    real_id = await upload_job(client, file.content, token=admin_token)
    assert await ImportRunner(session_factory, small).run_until_idle() == 1
    real = await _job(gql, real_id, admin_token)
    real_report = (await download_report(client, real_id, token=admin_token)).text

    assert _counts(dry) == _counts(real) == ("SUCCEEDED", 60, len(file.valid_titles), 8)
    assert dry_report == real_report
    assert len(real_report.splitlines()) == 1 + len(file.invalid_lines)
    assert {t.title for t in await task_rows(session_factory)} == file.valid_titles
    assert (await job_row(session_factory, dry_id)).dry_run is True
    assert (await job_row(session_factory, real_id)).dry_run is False


async def test_the_same_bytes_again_are_a_conflict_naming_the_earlier_job(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    content = generate_csv(5, world=import_world).content
    first = await upload_job(client, content, token=admin_token)
    for dry_run in (False, True):  # a dry run of imported bytes is told so too
        body = (await upload(client, content, token=admin_token, dry_run=dry_run)).json()
        [error] = body["errors"]
        assert error["extensions"] == {"code": "CONFLICT", "field": "file", "jobId": first}
        assert first in error["message"]
        assert "allowDuplicate" in error["message"]
    assert [p.name for p in settings.upload_dir.iterdir()] == [f"{first}.csv"]

    second = await upload_job(client, content, token=admin_token, allow_duplicate=True)
    assert second != first
    await run_queue(session_factory, settings)
    assert len(await task_rows(session_factory)) == 10  # both imported, as asked

    # Other bytes are not a duplicate.
    await upload_job(client, content + b"\n", token=admin_token)


async def test_jobs_that_imported_nothing_are_no_earlier_upload(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    broken = b'project_id,title\n1,"never closed\n'
    await upload_job(client, broken, token=admin_token)
    await run_queue(session_factory, settings)  # FAILED: a whole-file failure imports nothing
    await upload_job(client, broken, token=admin_token)

    content = generate_csv(3, world=import_world).content
    queued = await upload_job(client, content, token=admin_token)
    (await gql(CANCEL, {"id": queued}, token=admin_token)).ok()  # cancelled before it started
    await upload_job(client, content, token=admin_token)


async def test_a_queued_job_cancelled_never_starts(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    job_id = await upload_job(
        client, generate_csv(10, world=import_world).content, token=admin_token
    )
    cancelled = (await gql(CANCEL, {"id": job_id}, token=admin_token)).ok()["cancelImportJob"]
    assert cancelled["status"] == "CANCELLED"
    assert await run_queue(session_factory, settings) == 0  # nothing to claim
    assert await task_rows(session_factory) == []
    job = await _job(gql, job_id, admin_token)
    assert (job["status"], job["rowsProcessed"], job["startedAt"]) == ("CANCELLED", 0, None)
    assert job["finishedAt"]
    # Cancelling again is harmless; a finished job cannot be cancelled; nor an unknown one.
    assert (await gql(CANCEL, {"id": job_id}, token=admin_token)).ok()
    done = await upload_job(client, f"{HEADER}\n".encode(), token=admin_token)
    await run_queue(session_factory, settings)
    assert (await gql(CANCEL, {"id": done}, token=admin_token)).codes == ["CONFLICT"]
    unknown = "00000000-0000-0000-0000-000000000000"
    assert (await gql(CANCEL, {"id": unknown}, token=admin_token)).codes == ["NOT_FOUND"]


async def test_a_running_job_stops_after_the_batch_in_flight(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file = generate_csv(100, world=import_world, every=10)
    job_id = await upload_job(client, file.content, token=admin_token)
    real = batches.commit_batch
    commits = 0

    async def cancel_during_the_second(*args: Any) -> bool:
        # The admin cancels while the second batch is in flight: it still commits, then stops.
        nonlocal commits
        commits += 1
        if commits == 2:
            answer = (await gql(CANCEL, {"id": job_id}, token=admin_token)).ok()
            assert answer["cancelImportJob"]["status"] == "RUNNING"
        return await real(*args)

    monkeypatch.setattr(batches, "commit_batch", cancel_during_the_second)
    small = settings.model_copy(update={"import_batch_size": 20})
    assert await ImportRunner(session_factory, small).run_until_idle() == 1

    assert commits == 2
    job = await _job(gql, job_id, admin_token)
    assert (job["status"], job["rowsTotal"], job["rowsProcessed"]) == ("CANCELLED", 100, 40)
    assert (job["rowsImported"], job["rowsFailed"]) == (36, 4)
    assert job["message"] == "Cancelled after 40 of 100 rows (36 imported, 4 rejected)."
    titles = [t.title for t in await task_rows(session_factory)]
    assert titles == sorted(t for t in file.valid_titles if int(t.split("-")[1]) < 40)
    report = (await download_report(client, job_id, token=admin_token)).text
    assert len(report.splitlines()) == 1 + 4
    assert (await job_row(session_factory, job_id)).lease is None
    # It was cancelled, so its bytes count as uploaded only for the rows it imported.
    body = (await upload(client, file.content, token=admin_token)).json()
    assert body["errors"][0]["extensions"]["jobId"] == job_id


async def test_a_cancel_seen_by_a_runner_resuming_a_job_ends_it(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    from datetime import timedelta

    from db import imports
    from db.models import utcnow

    job_id = await upload_job(
        client, generate_csv(5, world=import_world).content, token=admin_token
    )
    now = utcnow()
    async with session_factory() as session, session.begin():  # a runner claims it, then dies
        await imports.claim_next_job(
            session=session, lease="dead", now=now, stale_before=now - timedelta(seconds=60)
        )
        await imports.cancel_job(session=session, job_id=job_id, now=now)
    patient = settings.model_copy(update={"import_stale_seconds": 0})
    assert await ImportRunner(session_factory, patient).run_until_idle() == 1
    job = await job_row(session_factory, job_id)
    assert (job.status, job.rows_processed, job.lease) == (ImportStatus.CANCELLED, 0, None)
    assert await task_rows(session_factory) == []


async def test_an_upload_wakes_this_process_s_idle_runner(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    import asyncio
    import time

    from importer.runner import background_runner

    slow_poll = settings.model_copy(update={"run_import_worker": True, "import_poll_seconds": 30})
    async with background_runner(session_factory, slow_poll):
        await asyncio.sleep(0.2)  # the runner found nothing and waits for its next poll
        start = time.monotonic()
        job_id = await upload_job(
            client, generate_csv(5, world=import_world).content, token=admin_token
        )
        while (await job_row(session_factory, job_id)).status != ImportStatus.SUCCEEDED:
            assert time.monotonic() - start < 10, "the runner waited for its poll"
            await asyncio.sleep(0.02)
