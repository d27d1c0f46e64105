"""CSV import benchmark: upload to SUCCEEDED through a real `taskql serve`, against plain COPY.

For each database and each size: a fresh database, `taskql serve` (one process, with its
in-process runner), a seeded world of users and projects, the seeded CSV uploaded through the
GraphQL multipart mutation, then `importJob` polled until the job ends. Prints rows/s from the
start of the upload to SUCCEEDED, the server's peak RSS (VmHWM), and the ceiling: the same valid
rows loaded by plain COPY (PostgreSQL; an executemany INSERT on SQLite) into the same `task` table.

    .venv/bin/python -m bench.import [--rows 10000 1000000] [--db postgresql sqlite]
        [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--seed 42]
"""

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.common import (
    TASKQL,
    free_port,
    postgres_url,
    recreate_postgres,
    rss_mib,
    sizes_and_databases,
    stop,
    wait_ready,
)
from db.engine import make_engine
from db.imports import TASK_COLUMNS

from .generate import (
    ADMIN_ID,
    PROJECTS,
    USERS,
    is_active,
    is_member,
    user_ids,
    valid_records,
    write_csv,
)

EMAIL = "bench-admin@example.com"
PASSWORD = "bench password 123"
SECRET = "bench-secret-bench-secret-bench-secret-0123"
BENCH_DB = "taskql_bench_import"
SQLITE_INSERT = (
    "INSERT INTO task (project_id, title, description, status, assigned_to, created_by, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
UPLOAD = "mutation($f: Upload!) { importTasks(file: $f) { id } }"
JOB = """query($id: ID!) { importJob(id: $id) {
    status rowsImported rowsFailed message startedAt finishedAt } }"""


def start_server(url: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORT_", "TASKQL_"))}
    env.update(
        DATABASE_URL=url,
        JWT_SECRET_KEY=SECRET,
        TASKQL_ADMIN_EMAIL=EMAIL,
        TASKQL_ADMIN_PASSWORD=PASSWORD,
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="WARNING",
        UPLOAD_DIR=str(workdir / "uploads"),
        IMPORT_MAX_BYTES=str(4 * 1024**3),
        IMPORT_POLL_SECONDS="0.2",
        RUN_IMPORT_WORKER="true",
    )
    cmd = [TASKQL, "serve", "--port", str(port), "--no-access-log"]
    with (workdir / "server.log").open("wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _user(user_id: int, now: datetime) -> dict[str, object]:
    return {
        "email": f"u{user_id}@example.com",
        "full_name": f"User {user_id}",
        "hashed_password": "x",
        "role": "USER",
        "is_active": is_active(user_id),
        "created_at": now,
        "updated_at": now,
    }


def _project(project_id: int, now: datetime) -> dict[str, object]:
    return {
        "name": f"Project {project_id}",
        "description": "",
        "created_by": ADMIN_ID,
        "created_at": now,
        "updated_at": now,
    }


async def seed_world(url: str) -> None:
    """Users, projects and memberships as generate.py describes them (the admin already exists)."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    from db.models import Project, ProjectMember, User

    async with engine.begin() as conn:
        admin_id = (await conn.execute(sa.text('SELECT max(id) FROM "user"'))).scalar_one()
        assert admin_id == ADMIN_ID, admin_id
        await conn.execute(sa.insert(User), [_user(u, now) for u in user_ids()])
        projects = [_project(p, now) for p in range(1, PROJECTS + 1)]
        await conn.execute(sa.insert(Project), projects)
        members = [
            {"project_id": p, "user_id": u, "added_at": now}
            for p in range(1, PROJECTS + 1)
            for u in user_ids()
            if is_member(u, p)
        ]
        await conn.execute(sa.insert(ProjectMember), members)
        users = (await conn.execute(sa.text('SELECT count(*) FROM "user"'))).scalar_one()
        assert users == USERS + 1
    await engine.dispose()


async def admin_token(client: httpx.AsyncClient) -> str:
    query = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
    body = {"query": query, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}}
    token: str = (await client.post("/graphql", json=body)).json()["data"]["login"]["accessToken"]
    return token


@dataclass
class Result:
    upload_seconds: float
    total_seconds: float
    job: dict[str, object]


async def import_through_server(client: httpx.AsyncClient, token: str, csv_path: Path) -> Result:
    headers = {"Authorization": f"Bearer {token}", "Apollo-Require-Preflight": "1"}
    operations = json.dumps({"query": UPLOAD, "variables": {"f": None}})
    start = time.perf_counter()
    with csv_path.open("rb") as body:
        response = await client.post(
            "/graphql",
            data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
            files={"0": (csv_path.name, body, "text/csv")},
            headers=headers,
        )
    uploaded = time.perf_counter() - start
    job_id = response.json()["data"]["importTasks"]["id"]
    while True:
        query = {"query": JOB, "variables": {"id": job_id}}
        job = (await client.post("/graphql", json=query, headers=headers)).json()["data"]
        if job["importJob"]["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return Result(uploaded, time.perf_counter() - start, job["importJob"])
        await asyncio.sleep(0.1)


async def copy_ceiling(url: str, rows: int, seed: int) -> tuple[float, int]:
    """Rows/s of one plain COPY of the valid rows into the emptied task table."""
    now = datetime.now(UTC)
    records = ((*r, ADMIN_ID, now, now) for r in valid_records(rows, seed))
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE task RESTART IDENTITY"))
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        start = time.perf_counter()
        await driver.copy_records_to_table("task", records=records, columns=list(TASK_COLUMNS))
        seconds = time.perf_counter() - start
        count = (await conn.execute(sa.text("SELECT count(*) FROM task"))).scalar_one()
    await engine.dispose()
    return count / seconds, int(count)


def insert_ceiling(path: Path, rows: int, seed: int) -> tuple[float, int]:
    """SQLite has no COPY: one executemany INSERT of the valid rows in one transaction."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM task")
    db.commit()
    records = ((*r, ADMIN_ID, now, now) for r in valid_records(rows, seed))
    start = time.perf_counter()
    with db:
        db.executemany(SQLITE_INSERT, records)
    seconds = time.perf_counter() - start
    count = db.execute("SELECT count(*) FROM task").fetchone()[0]
    db.close()
    return count / seconds, int(count)


@dataclass
class Case:
    database: str
    rows: int
    valid: int
    invalid: int


async def run_case(case: Case, args: argparse.Namespace, workdir: Path, csv_path: Path) -> str:
    sqlite_path = workdir / f"bench-{case.rows}.db"  # a new name per size: a fresh database
    if case.database == "postgresql":
        url = postgres_url(args.pg_url, BENCH_DB)
        await recreate_postgres(url, create=True)
    else:
        url = f"sqlite+aiosqlite:///{sqlite_path}"
    port = free_port()
    server = start_server(url, workdir, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=3600) as client:
            await asyncio.to_thread(wait_ready, base, server, log=workdir / "server.log")
            await seed_world(url)
            token = await admin_token(client)
            idle_rss = rss_mib(server.pid)
            result = await import_through_server(client, token, csv_path)
            peak_rss = rss_mib(server.pid)
    finally:
        stop(server, timeout=60)
    job = result.job
    assert job["status"] == "SUCCEEDED", job
    assert (job["rowsImported"], job["rowsFailed"]) == (case.valid, case.invalid), job
    if case.database == "postgresql":
        ceiling, loaded = await copy_ceiling(url, case.rows, args.seed)
        ceiling_kind = "COPY"
    else:
        ceiling, loaded = await asyncio.to_thread(insert_ceiling, sqlite_path, case.rows, args.seed)
        ceiling_kind = "INSERT"
    assert loaded == case.valid, (loaded, case.valid)
    rate = case.rows / result.total_seconds
    started = datetime.fromisoformat(str(job["startedAt"]))
    runner_seconds = (datetime.fromisoformat(str(job["finishedAt"])) - started).total_seconds()
    return (
        f"{case.database:<10} {case.rows:>9,} rows  upload {result.upload_seconds:6.1f} s  "
        f"to SUCCEEDED {result.total_seconds:6.1f} s  {rate:8,.0f} rows/s  "
        f"(runner {runner_seconds:5.1f} s)  | "
        f"plain {ceiling_kind} {ceiling:8,.0f} rows/s  ratio {rate / ceiling:4.0%}  | "
        f"server peak RSS {peak_rss:6.1f} MiB (before upload {idle_rss:6.1f} MiB)"
    )


def main() -> None:
    """Generate, import and measure each size on each database; print a summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.import", description=__doc__)
    sizes_and_databases(parser)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    lines = []
    with tempfile.TemporaryDirectory(prefix="taskql-bench-import-") as tmp:
        workdir = Path(tmp)
        for rows in args.rows:
            csv_path = workdir / f"tasks-{rows}.csv"
            valid, invalid = write_csv(csv_path, rows, args.seed)
            size = csv_path.stat().st_size / 1024**2
            print(f"generated {rows:,} rows ({invalid:,} invalid), {size:.1f} MiB", flush=True)
            for database in args.db:
                line = asyncio.run(
                    run_case(Case(database, rows, valid, invalid), args, workdir, csv_path)
                )
                print(line, flush=True)
                lines.append(line)
            csv_path.unlink()
    if "postgresql" in args.db:
        asyncio.run(recreate_postgres(postgres_url(args.pg_url, BENCH_DB), create=False))
    print("\n".join(["", "summary:", *lines]))


if __name__ == "__main__":
    main()
