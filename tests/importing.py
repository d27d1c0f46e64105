"""Shared helpers for the CSV import tests: a small world of projects and members, the multipart
upload request, and running the queued jobs."""

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import col

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportJob, ImportRowError, Project, ProjectMember, Task, User
from importer.runner import ImportRunner

IMPORT_TASKS = """
mutation Import($file: Upload!) {
  importTasks(file: $file) { id status fileName rowsProcessed createdBy { id } }
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


@dataclass(frozen=True, slots=True)
class World:
    """Project 1 with member 2 (active) and member 3 (deactivated); user 4 is in no project."""

    project_id: int
    member_id: int
    inactive_member_id: int
    outsider_id: int


async def build_world(session_factory: SessionFactory, admin: User, make_user: Any) -> World:
    member = await make_user(email="member@example.com")
    inactive = await make_user(email="gone@example.com", is_active=False)
    outsider = await make_user(email="outsider@example.com")
    async with session_factory() as session, session.begin():
        project = Project(name="Website", created_by=admin.id)
        session.add(project)
        await session.flush()
        assert project.id is not None
        for user in (member, inactive):
            assert user.id is not None
            session.add(ProjectMember(project_id=project.id, user_id=user.id))
    assert member.id is not None
    assert inactive.id is not None
    assert outsider.id is not None
    return World(project.id, member.id, inactive.id, outsider.id)


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    *,
    token: str | None,
    filename: str = "tasks.csv",
    preflight: bool = True,
) -> httpx.Response:
    """A GraphQL multipart request (operations, map, one file part) for importTasks."""
    headers = {"Apollo-Require-Preflight": "true"} if preflight else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    operations = {"query": IMPORT_TASKS, "variables": {"file": None}}
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
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(f"/imports/{job_id}/errors.csv", headers=headers)


@dataclass(frozen=True, slots=True)
class GeneratedCsv:
    content: bytes
    valid_titles: set[str]
    invalid_lines: set[int]


def generate_csv(rows: int, *, world: World, tag: str = "t", every: int = 20) -> GeneratedCsv:
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


def process_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment for a spawned server or worker on the test's database and upload dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQL_", "JWT_", "IMPORT_"))}
    env.update(
        ENVIRONMENT="test",
        DATABASE_URL=settings.database_url,
        JWT_SECRET_KEY=settings.jwt_secret_key,
        UPLOAD_DIR=str(settings.upload_dir),
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="INFO",
    )
    env.update(overrides)
    return env


def taskql_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m taskql.cli ARGS`, its output in `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "taskql.cli", *args], env=env, stdout=out, stderr=out
        )
