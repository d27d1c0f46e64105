"""Read benchmark: 1,000 users, 200 projects, 100,000 tasks; `taskql serve --workers 2`; wrk.

For each backend (PostgreSQL in a scratch database `taskql_bench`, SQLite in a temporary file):
migrate and seed, count the SQL statements of each query through the app in-process, start the
real server, warm up, then drive each query with wrk at 32 connections and print req/s, p50, p99
and statements per request.

    .venv/bin/python -m bench.read [--backend postgresql|sqlite|both] [--seconds 10]
        [--connections 32] [--query tasks50 --query projects --query task] [--keep]
"""

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench.common import TASKQL, free_port, stop, wait_ready
from bench.read import wrk
from bench.read.queries import Query, queries, statements_per_request, tokens
from bench.read.seed import Seeded, Shape, seed
from core.settings import Settings
from db import migrate
from db.engine import make_engine

SECRET = "bench-read-secret-bench-read-secret-0123456789"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/taskql_bench"
DEFAULT_QUERIES = ("tasks50", "projects", "task")
WARMUP_SECONDS = 2.0

Namespace = argparse.Namespace


@dataclass(frozen=True)
class Row:
    backend: str
    query: str
    load: wrk.LoadResult
    statements: int


async def recreate_postgres(url: str, *, create: bool) -> None:
    """Drop (and create) the benchmark's own database, through the server's `postgres` one."""
    parsed = make_url(url)
    admin = create_async_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            if create:
                await conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        await admin.dispose()


async def prepare(url: str, shape: Shape) -> Seeded:
    """Migrate and seed an empty database; print how long seeding took."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    try:
        start = time.perf_counter()
        seeded = await seed(engine, shape)
        print(
            f"  seeded {shape.users} users, {shape.projects} projects, "
            f"{seeded.memberships} memberships, {shape.tasks} tasks "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    finally:
        await engine.dispose()
    return seeded


def server_env(url: str, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQL_", "JWT_"))}
    env.update(
        DATABASE_URL=url,
        JWT_SECRET_KEY=SECRET,  # both workers must accept the benchmark's tokens
        ENVIRONMENT="development",
        LOG_LEVEL="WARNING",
        UPLOAD_DIR=str(workdir / "uploads"),
    )
    return env


@contextmanager
def served(url: str, workdir: Path, workers: int) -> Iterator[str]:
    """`taskql serve --workers N --no-access-log` on a free port, stopped on exit."""
    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [TASKQL, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"],
            env=server_env(url, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process, log=log_path)
            yield base
        finally:
            stop(process)


def load(
    base: str, selected: list[Query], caller_tokens: dict[str, str], args: Namespace
) -> list[tuple[str, wrk.LoadResult]]:
    results: list[tuple[str, wrk.LoadResult]] = []
    for query in selected:
        token = caller_tokens[query.caller]
        url = f"{base}/graphql"
        wrk.run(url, query.body(), token, connections=args.connections, seconds=WARMUP_SECONDS)
        result = wrk.run(
            url, query.body(), token, connections=args.connections, seconds=args.seconds
        )
        if result.failed:
            raise SystemExit(f"{query.name}: {result.failed} failed responses under load")
        print(
            f"  {query.name:<9} {result.requests_per_second:8.1f} req/s  "
            f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms",
            flush=True,
        )
        results.append((query.name, result))
    return results


def bench_backend(backend: str, args: Namespace, shape: Shape) -> list[Row]:
    print(f"{backend}:", flush=True)
    with tempfile.TemporaryDirectory(prefix="taskql-bench-read-") as tmp:
        workdir = Path(tmp)
        url = (
            args.postgres_url
            if backend == "postgresql"
            else f"sqlite+aiosqlite:///{workdir}/bench.db"
        )
        url = Settings(database_url=url).database_url
        if backend == "postgresql":
            asyncio.run(recreate_postgres(url, create=True))
        try:
            seeded = asyncio.run(prepare(url, shape))
            known = queries(seeded)
            selected = [known[name] for name in args.query or DEFAULT_QUERIES]
            caller_tokens = tokens(SECRET, seeded)
            settings = Settings(database_url=url, jwt_secret_key=SECRET, environment="development")
            counted = asyncio.run(statements_per_request(settings, selected, caller_tokens))
            with served(url, workdir, args.workers) as base:
                results = load(base, selected, caller_tokens, args)
        finally:
            if backend == "postgresql" and not args.keep:
                asyncio.run(recreate_postgres(url, create=False))
    return [Row(backend, name, result, counted[name][0]) for name, result in results]


def print_table(rows: list[Row], args: Namespace) -> None:
    print()
    print(
        f"{args.connections} connections, {args.seconds:g} s per query, "
        f"`taskql serve --workers {args.workers}`, {os.cpu_count()} CPUs"
    )
    print(f"{'backend':<11} {'query':<9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'SQL/req':>8}")
    for row in rows:
        print(
            f"{row.backend:<11} {row.query:<9} {row.load.requests_per_second:8.1f} "
            f"{row.load.p50_ms:8.1f} {row.load.p99_ms:8.1f} {row.statements:8d}"
        )


def parse_args() -> Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=10.0, help="per query (default 10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--query",
        action="append",
        choices=("tasks50", "projects", "task", "me"),
        help="repeatable; default: tasks50, projects, task",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
        help="a scratch database, dropped and re-created (default %(default)s)",
    )
    parser.add_argument("--tasks", type=int, default=Shape.tasks)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    wrk.require_wrk()
    shape = Shape(tasks=args.tasks)
    backends = ("postgresql", "sqlite") if args.backend == "both" else (args.backend,)
    rows: list[Row] = []
    for backend in backends:
        rows.extend(bench_backend(backend, args, shape))
    print_table(rows, args)


if __name__ == "__main__":
    main()
