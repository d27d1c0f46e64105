"""What every benchmark needs around the server it starts: a port, a readiness wait, a stop, a
PostgreSQL database of its own, and the server's memory."""

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

TASKQL = str(Path(sys.executable).with_name("taskql"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    base: str, process: subprocess.Popen[bytes], *, log: Path | None = None, timeout: float = 60
) -> None:
    """Block until `base`/readyz answers 200 (database up and migrated); exit if the server dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()[-3000:] if log is not None else ""
            raise SystemExit(f"the server exited early with {process.returncode}\n{output}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {base} was not ready within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def postgres_url(server_url: str, database: str) -> str:
    """The asyncpg URL of `database` on the server of `server_url` (any driver, any database)."""
    url = make_url(server_url).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


async def recreate_postgres(url: str, *, create: bool, via: str = "postgres") -> None:
    """Drop (and create) the database of `url`, through the server's database `via` (the test
    suite's scratch databases go through TEST_DATABASE_URL's)."""
    parsed = make_url(url)
    admin = create_async_engine(
        parsed.set(database=via), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
            if create:
                await conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        await admin.dispose()


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    """A process's peak (VmHWM) or current (VmRSS) resident set size, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def sizes_and_databases(parser: argparse.ArgumentParser) -> None:
    """The `--rows`, `--db` and `--pg-url` arguments of the import and export benchmarks."""
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument(
        "--db", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"]
    )
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
