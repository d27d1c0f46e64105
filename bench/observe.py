"""What metrics and tracing cost a compiled read: server CPU time per request, on and off.

`python -m bench.observe [--seconds 5] [--rounds 3] [--db-url URL]`: a PostgreSQL database
(`taskql_bench_observe`, dropped at the end) with one admin; for each mode in turn, round after
round, `taskql serve --no-access-log` (one process, so its CPU time is the server's), a warm-up,
then wrk posting `query Me { me { id email } }` (the compiled path's front door). It prints the
server's user+system CPU per request (from /proc, less sensitive to a busy machine than req/s)
and req/s. Modes: off; METRICS=public with a PROMETHEUS_MULTIPROC_DIR (the multiprocess values
`--workers N` uses); traces to the console exporter (stdout to /dev/null) with every request
sampled, and with 1% (`parentbased_traceidratio`).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.common import TASKQL, free_port, stop, wait_ready
from bench.read import wrk

SECRET = "bench-observe-secret-0123456789abcdefghijkl"
QUERY = b'{"query": "query Me { me { id email } }"}'
MODES: dict[str, dict[str, str]] = {
    "off": {},
    "metrics": {"METRICS": "public", "PROMETHEUS_MULTIPROC_DIR": ""},
    "traces 100%": {"OTEL_TRACES_EXPORTER": "console"},
    "traces 1%": {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def prepare(url: str) -> str:
    """A migrated database with one admin; that admin's access token."""
    from auth.services import build_services
    from core.settings import Settings
    from db import migrate
    from db.engine import make_engine, make_session_factory
    from db.models import Role, User

    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, jwt_secret_key=SECRET)
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session, session.begin():
            admin = User(email="a@example.com", full_name="A", hashed_password="-", role=Role.ADMIN)
            session.add(admin)
        assert admin.id is not None
        codec = build_services(settings, engine).authenticator.codec
        return codec.encode(codec.issue(admin.id, "access", version=0))
    finally:
        await engine.dispose()


def recreate(url: str, *, create: bool) -> None:
    import asyncpg  # type: ignore[import-untyped]

    parsed = make_url(url)
    name = parsed.database

    async def run() -> None:
        admin = parsed.set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def served(url: str, extra: dict[str, str]) -> Iterator[tuple[str, int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQL_", "JWT_", "OTEL_"))}
    env.update(
        ENVIRONMENT="development",
        DATABASE_URL=url,
        JWT_SECRET_KEY=SECRET,
        LOG_LEVEL="WARNING",
        RUN_IMPORT_WORKER="false",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as directory:
        env.update({k: v or directory for k, v in extra.items()})
        port = free_port()
        process = subprocess.Popen(
            [TASKQL, "serve", "--port", str(port), "--no-access-log"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            yield f"http://127.0.0.1:{port}/graphql", process.pid
        finally:
            stop(process)


def measure(url: str, token: str, extra: dict[str, str], seconds: float) -> tuple[float, float]:
    """(server CPU microseconds per request, req/s) for one server in this mode."""
    with served(url, extra) as (endpoint, pid):
        wrk.run(endpoint, QUERY, token, connections=16, seconds=2)
        before = cpu_seconds(pid)
        result = wrk.run(endpoint, QUERY, token, connections=16, seconds=seconds)
        used = cpu_seconds(pid) - before
    if result.failed:
        raise SystemExit(f"{result.failed} failed requests")
    return used / result.requests * 1e6, result.requests_per_second


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.observe", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--db-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/taskql_bench_observe",
    )
    args = parser.parse_args()
    recreate(args.db_url, create=True)
    try:
        token = asyncio.run(prepare(args.db_url))
        figures: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode, extra in MODES.items():
                cpu, rate = measure(args.db_url, token, extra, args.seconds)
                figures[mode].append((cpu, rate))
                print(f"round {round_ + 1}  {mode:12} {cpu:7.0f} us CPU/req  {rate:8.0f} req/s")
        print(f"\n{'mode':12} {'CPU/req (median)':>17} {'vs off':>8} {'req/s (median)':>15}")
        base = statistics.median(cpu for cpu, _ in figures["off"])
        for mode, runs in figures.items():
            cpu = statistics.median(c for c, _ in runs)
            rate = statistics.median(r for _, r in runs)
            print(f"{mode:12} {cpu:14.0f} us {cpu - base:+7.0f} {rate:15.0f}")
    finally:
        recreate(args.db_url, create=False)


if __name__ == "__main__":
    main()
