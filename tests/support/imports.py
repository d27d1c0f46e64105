"""Helpers for the CSV import tests: the multipart upload request, running the queued jobs,
reading jobs, tasks and error rows back, and generated files."""

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportJob, ImportRowError, Task
from importer.runner import ImportRunner
from tests.support.graphql import bearer
from tests.support.world import ImportWorld

IMPORT_TASKS = """
mutation Import($file: Upload!, $dryRun: Boolean! = false, $allowDuplicate: Boolean! = false) {
  importTasks(file: $file, dryRun: $dryRun, allowDuplicate: $allowDuplicate) {
    id status fileName rowsProcessed dryRun createdBy { id }
  }
}
"""

IMPORT_JOB = """
query Job($id: ID!) {
  importJob(id: $id) {
    id status fileName rowsTotal rowsProcessed rowsImported rowsFailed progress message
    errorReportUrl createdAt startedAt finishedAt createdBy { id email }
  }
}
"""

HEADER = "project_id,title,description,status,assigned_to"
SEED_CSV = (
    f"{HEADER}\n1,Login Task,Implement JWT,Pending,2\n1,Invalid Task ID,Invalid entry,Pending,999\n"
)


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    *,
    token: str | None,
    filename: str = "tasks.csv",
    preflight: bool = True,
    dry_run: bool = False,
    allow_duplicate: bool = False,
) -> httpx.Response:
    """A GraphQL multipart request (operations, map, one file part) for importTasks."""
    headers = {"Apollo-Require-Preflight": "true"} if preflight else {}
    headers.update(bearer(token))
    variables = {"file": None, "dryRun": dry_run, "allowDuplicate": allow_duplicate}
    operations = {"query": IMPORT_TASKS, "variables": variables}
    return await client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": (filename, content, "text/csv")},
        headers=headers,
    )


async def upload_job(client: httpx.AsyncClient, content: bytes, *, token: str, **kw: Any) -> str:
    """Upload and return the new job's id, asserting it was queued."""
    response = await upload(client, content, token=token, **kw)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    job = body["data"]["importTasks"]
    assert job["status"] == "QUEUED"
    job_id: str = job["id"]
    return job_id


async def run_queue(session_factory: SessionFactory, settings: Settings) -> int:
    return await ImportRunner(session_factory, settings).run_until_idle()


async def job_row(session_factory: SessionFactory, job_id: str) -> ImportJob:
    async with session_factory() as session:
        job = await session.get(ImportJob, job_id)
    assert job is not None
    return job


async def task_rows(session_factory: SessionFactory) -> list[Task]:
    async with session_factory() as session:
        result = await session.execute(sa.select(Task).order_by(col(Task.id)))
        return list(result.scalars())


async def error_rows(session_factory: SessionFactory, job_id: str) -> list[ImportRowError]:
    async with session_factory() as session:
        result = await session.execute(
            sa.select(ImportRowError)
            .where(col(ImportRowError.job_id) == job_id)
            .order_by(col(ImportRowError.line))
        )
        return list(result.scalars())


def parse_report(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def download_report(
    client: httpx.AsyncClient, job_id: str, *, token: str | None
) -> httpx.Response:
    return await client.get(f"/imports/{job_id}/errors.csv", headers=bearer(token))


@dataclass(frozen=True, slots=True)
class GeneratedCsv:
    content: bytes
    valid_titles: set[str]
    invalid_lines: set[int]


def generate_csv(rows: int, *, world: ImportWorld, tag: str = "t", every: int = 20) -> GeneratedCsv:
    """`rows` data rows with unique titles; every `every`-th one has an unknown status."""
    lines = [HEADER]
    valid: set[str] = set()
    invalid: set[int] = set()
    for i in range(rows):
        title = f"{tag}-{i:07d}"
        if i % every == every - 1:
            lines.append(f"{world.project_id},{title},broken,Someday,")
            invalid.add(i + 2)  # line 1 is the header
        else:
            lines.append(f'{world.project_id},{title},"desc, {i}",Pending,{world.member_id}')
            valid.add(title)
    return GeneratedCsv(("\n".join(lines) + "\n").encode(), valid, invalid)
