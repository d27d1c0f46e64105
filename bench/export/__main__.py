"""Task export benchmark: `GET /exports/tasks.csv` through a real `taskql serve`.

For each database and each size: a fresh database, `taskql serve` (one process), an admin and
one project, then the tasks loaded directly (COPY on PostgreSQL, executemany on SQLite), and the
whole table exported over HTTP with the admin's bearer token, streamed and counted as it comes.
Prints rows/s, MiB/s, and the server's RSS before the export and its peak (VmHWM) after: flat
memory means the second does not grow with the rows.

    .venv/bin/python -m bench.export [--rows 10000 1000000] [--db postgresql sqlite]
        [--pg-url postgresql://postgres@127.0.0.1:5432/postgres] [--order-by TITLE]
"""

import argparse
import asyncio
import os
import sqlite3
import subprocess
import tempfile
import time
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

EMAIL = "bench-admin@example.com"
PASSWORD = "bench password 123"
SECRET = "bench-secret-bench-secret-bench-secret-0123"
BENCH_DB = "taskql_bench_export"
STATUSES = ("PENDING", "IN_PROGRESS", "DONE")
SQLITE_INSERT = (
    "INSERT INTO task (project_id, title, description, status, assigned_to, created_by, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def records(rows: int, admin_id: int, now: datetime) -> list[tuple[object, ...]]:
    """Tasks of varied sizes; every fifth description starts like a formula."""
    return [
        (1, f"Task {i:07d} {'x' * (i % 40)}", ("=" if i % 5 == 0 else "") + "d" * (i % 120),
         STATUSES[i % 3], admin_id if i % 2 else None, admin_id, now, now)
        for i in range(rows)
    ]  # fmt: skip


async def seed(url: str, rows: int, sqlite_path: Path | None) -> None:
    """One project of the admin's, then `rows` tasks, loaded in chunks."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    async with engine.begin() as conn:
        admin_id = (await conn.execute(sa.text('SELECT max(id) FROM "user"'))).scalar_one()
        await conn.execute(
            sa.text(
                "INSERT INTO project (name, description, created_by, created_at, updated_at) "
                "VALUES ('Bench', '', :a, :t, :t)"
            ),
            {"a": admin_id, "t": now},
        )
        if sqlite_path is None:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            for start in range(0, rows, 100_000):
                chunk = records(min(100_000, rows - start), admin_id, now)
                await driver.copy_records_to_table(
                    "task", records=chunk, columns=list(TASK_COLUMNS)
                )
    await engine.dispose()
    if sqlite_path is not None:
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        db = sqlite3.connect(sqlite_path)
        with db:
            for start in range(0, rows, 100_000):
                chunk = records(min(100_000, rows - start), admin_id, now)
                db.executemany(SQLITE_INSERT, [(*r[:6], stamp, stamp) for r in chunk])
        db.close()


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
        RUN_IMPORT_WORKER="false",
    )
    cmd = [TASKQL, "serve", "--port", str(port), "--no-access-log"]
    with (workdir / "server.log").open("wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


async def admin_token(client: httpx.AsyncClient) -> str:
    query = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
    body = {"query": query, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}}
    token: str = (await client.post("/graphql", json=body)).json()["data"]["login"]["accessToken"]
    return token


async def run_case(database: str, rows: int, args: argparse.Namespace, workdir: Path) -> str:
    sqlite_path = workdir / f"bench-{rows}.db"
    if database == "postgresql":
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
            await seed(url, rows, sqlite_path if database == "sqlite" else None)
            token = await admin_token(client)
            before = rss_mib(server.pid, "VmRSS")
            params = {"orderBy": args.order_by} if args.order_by else {}
            lines = size = 0
            start = time.perf_counter()
            async with client.stream(
                "GET",
                "/exports/tasks.csv",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status_code == 200, response.status_code
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            seconds = time.perf_counter() - start
            peak = rss_mib(server.pid)
    finally:
        stop(server, timeout=60)
    # Descriptions hold no line breaks, so the records are the lines after the header.
    assert lines - 1 == rows, (lines, rows)
    return (
        f"{database:<10} {rows:>9,} rows  {seconds:6.1f} s  {rows / seconds:9,.0f} rows/s  "
        f"{size / 1024**2 / seconds:6.1f} MiB/s ({size / 1024**2:6.1f} MiB)  | "
        f"server RSS before {before:6.1f} MiB, peak {peak:6.1f} MiB"
    )


def main() -> None:
    """Seed, export and measure each size on each database; print a summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    sizes_and_databases(parser)
    parser.add_argument("--order-by", choices=["ID", "CREATED_AT", "UPDATED_AT", "TITLE", "STATUS"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="taskql-bench-export-") as tmp:
        for rows in args.rows:
            for database in args.db:
                line = asyncio.run(run_case(database, rows, args, Path(tmp)))
                print(line, flush=True)
                results.append(line)
    if "postgresql" in args.db:
        asyncio.run(recreate_postgres(postgres_url(args.pg_url, BENCH_DB), create=False))
    print("\n".join(["", "summary:", *results]))


if __name__ == "__main__":
    main()
