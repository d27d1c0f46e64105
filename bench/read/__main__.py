"""Read benchmark: 1,000 users, 200 projects, 100,000 tasks; `taskql serve --workers 2`; wrk.

For each backend (PostgreSQL in a scratch database of its own, SQLite in a temporary file):
migrate and seed, run each query through the app in-process (its answer and SQL statement
count), start the real server, then warm up and drive each query with wrk at 32 connections
and print req/s, p50, p99 and statements per request.

`--peer postgraphile` also serves the same PostgreSQL database with PostGraphile 4, checks that
its version of each query answers the same data, and alternates the two, query by query, over
several rounds. `--sizes N ...` seeds a fresh database per size and shows how p50 grows.

    .venv/bin/python -m bench.read [--backend postgresql|sqlite|both] [--seconds 10]
        [--connections 32] [--rounds N] [--query NAME ...] [--peer postgraphile]
        [--sizes 10000 100000 1000000] [--keep]
"""

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.common import TASKQL as TASKQL_COMMAND
from bench.common import free_port, recreate_postgres, stop, wait_ready
from bench.read import peer, wrk
from bench.read.probe import Answer, probe
from bench.read.queries import NAMES, Query, leaves, tokens
from bench.read.report import PEER, TASKQL, Measured, Setup, peer_table, plain_table, sizes_table
from bench.read.rounds import Target, measure
from bench.read.seed import Seeded, Shape, seed
from core.settings import Settings
from db import migrate
from db.engine import make_engine

SECRET = "bench-read-secret-bench-read-secret-0123456789"
# One database per run: two runs at once (other people's, say) must not drop each other's data.
DEFAULT_PG = f"postgresql+asyncpg://postgres@127.0.0.1:5432/taskql_bench_read_{os.getpid()}"
DEFAULT_QUERIES = ("tasks50", "tasks50_total", "projects", "task", "deep", "mine")
SIZE_QUERIES = ("tasks50_total", "tasks50")
QUIET = ("--no-access-log",)

Namespace = argparse.Namespace


async def prepare(url: str, shape: Shape) -> Seeded:
    """Migrate and seed an empty database; print how long seeding took."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = make_engine(url)
    try:
        start = time.perf_counter()
        seeded = await seed(engine, shape)
        print(
            f"  seeded {shape.users:,} users, {shape.projects:,} projects, "
            f"{seeded.memberships:,} memberships, {shape.tasks:,} tasks "
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
            [TASKQL_COMMAND, "serve", "--port", str(port), "--workers", str(workers), *QUIET],
            env=server_env(url, workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session, as the peer has (bench/read/peer.py). Linux gives each session
            # one share of the CPU (autogroup scheduling): in the benchmark's session, the
            # server's workers would share one with wrk, which then waited for a CPU and
            # counted that wait in the server's latencies (p99 over 100 ms instead of 10).
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, process, log=log_path)
            yield base
        finally:
            stop(process)


def check_peer(
    base: str, seeded: Seeded, names: list[str], answers: dict[str, Answer]
) -> dict[str, Query]:
    """The peer's queries, each checked to answer TaskQL's data (same scalars, same order)."""
    cursor = peer.deep_cursor(base, seeded) if "deep" in names else None
    known = peer.queries(seeded, cursor)
    for name in names:
        theirs, ours = leaves(peer.post(base, known[name])), leaves(answers[name].data)
        if theirs != ours:
            raise SystemExit(f"{name}: {PEER} answers {theirs[:12]}…, TaskQL {ours[:12]}…")
    return known


def database_url(backend: str, args: Namespace, workdir: Path) -> str:
    url = (
        args.postgres_url if backend == "postgresql" else f"sqlite+aiosqlite:///{workdir}/bench.db"
    )
    return Settings(database_url=url).database_url


def bench_database(
    backend: str, shape: Shape, args: Namespace, names: list[str], *, with_peer: bool
) -> Measured:
    """Seed one fresh database, serve it (and the peer), and measure every query on both."""
    print(f"{backend}, {shape.tasks:,} tasks:", flush=True)
    with tempfile.TemporaryDirectory(prefix="taskql-bench-read-") as tmp:
        workdir = Path(tmp)
        url = database_url(backend, args, workdir)
        if backend == "postgresql":
            asyncio.run(recreate_postgres(url, create=True))
        try:
            seeded = asyncio.run(prepare(url, shape))
            caller_tokens = tokens(SECRET, seeded)
            settings = Settings(database_url=url, jwt_secret_key=SECRET, environment="development")
            selected, answers = asyncio.run(probe(settings, seeded, caller_tokens, names))
            with ExitStack() as stack:
                base = stack.enter_context(served(url, workdir, args.workers))
                ours = {query.name: query for query in selected}
                targets = [Target(TASKQL, f"{base}/graphql", ours, caller_tokens)]
                if with_peer:
                    peer_base = stack.enter_context(
                        peer.served(
                            url, workdir, workers=args.peer_workers, pool_size=args.peer_pool
                        )
                    )
                    theirs = check_peer(peer_base, seeded, names, answers)
                    targets.append(Target(PEER, f"{peer_base}/graphql", theirs, {}))
                series = measure(
                    targets,
                    names,
                    rounds=args.rounds,
                    connections=args.connections,
                    seconds=args.seconds,
                )
        finally:
            if backend == "postgresql" and not args.keep:
                asyncio.run(recreate_postgres(url, create=False))
            elif backend == "postgresql":
                print(f"  kept {make_url(url).database}", flush=True)
    return Measured(backend, shape, answers, series)


def parse_args() -> Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.read", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--backend",
        choices=("postgresql", "sqlite", "both"),
        help="default: both; postgresql with --peer or --sizes",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="taskql serve --workers")
    parser.add_argument(
        "--rounds", type=int, help="runs of each query (default 3 with --peer or --sizes, else 1)"
    )
    parser.add_argument(
        "--query",
        action="append",
        choices=NAMES,
        help=f"repeatable; default {', '.join(DEFAULT_QUERIES)} ({', '.join(SIZE_QUERIES)} "
        "with --sizes)",
    )
    parser.add_argument("--peer", choices=("postgraphile",), help="compare with this server")
    parser.add_argument("--peer-workers", type=int, help="its Node workers (default --workers)")
    parser.add_argument(
        "--peer-pool",
        type=int,
        default=Settings().database_pool_size,
        help="its PostgreSQL pool per worker (default: TaskQL's DATABASE_POOL_SIZE, 4)",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", metavar="TASKS", help="a fresh database per size"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
        help="a scratch database, dropped and re-created (default %(default)s)",
    )
    parser.add_argument("--tasks", type=int, default=Shape.tasks, help="without --sizes")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    special = args.peer is not None or args.sizes is not None
    if args.backend is None:
        args.backend = "postgresql" if special else "both"
    if args.peer is not None and args.backend != "postgresql":
        parser.error("--peer serves PostgreSQL only: use --backend postgresql")
    if args.rounds is None:
        args.rounds = 3 if special else 1
    if args.peer_workers is None:
        args.peer_workers = args.workers
    return args


def main() -> None:
    args = parse_args()
    wrk.require_wrk()
    if args.peer is not None:
        peer.install()
    setup = Setup(
        args.connections, args.seconds, args.rounds, args.workers, args.peer_workers, args.peer_pool
    )
    backends = ("postgresql", "sqlite") if args.backend == "both" else (args.backend,)
    with_peer = args.peer is not None
    if args.sizes is not None:
        names = args.query or list(SIZE_QUERIES)
        measured = [
            bench_database(backend, Shape.scaled(size), args, names, with_peer=with_peer)
            for size in args.sizes
            for backend in backends
        ]
        sizes_table(measured, names, setup)
        return
    names = args.query or list(DEFAULT_QUERIES)
    measured = [
        bench_database(backend, Shape(tasks=args.tasks), args, names, with_peer=with_peer)
        for backend in backends
    ]
    if with_peer:
        peer_table(measured[0], names, setup)
    else:
        plain_table(measured, setup)


if __name__ == "__main__":
    main()
