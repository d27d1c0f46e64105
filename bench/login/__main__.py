"""Login storm benchmark: does a cheap authenticated query stay fast while bcrypt runs?

Starts `taskql serve` (one worker, bcrypt cost 12) on a scratch SQLite database, fires 20
concurrent logins and, meanwhile, sends `{ me { id } }` one after another, then prints the
latency of those queries and how long the logins took.

    .venv/bin/python -m bench.login [--logins 20] [--workers 1]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import TASKQL, free_port, stop, wait_ready

EMAIL = "bench@example.com"
PASSWORD = "bench password 123"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"


def start_server(workdir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        JWT_SECRET_KEY="bench-secret-bench-secret-bench-secret-0123",
        TASKQL_ADMIN_EMAIL=EMAIL,
        TASKQL_ADMIN_PASSWORD=PASSWORD,
        BCRYPT_ROUNDS="12",
        # Concurrent logins to one account count as failures until they succeed: unthrottled,
        # so that the storm measures bcrypt's scheduling, not the login throttle.
        LOGIN_MAX_FAILURES="0",
        LOGIN_ADDRESS_MAX_FAILURES="0",
        LOG_LEVEL="WARNING",
        UPLOAD_DIR=str(workdir / "uploads"),
    )
    cmd = [TASKQL, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def login(client: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    body = {"query": LOGIN, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}}
    response = await client.post("/graphql", json=body)
    response.raise_for_status()
    assert response.json()["data"]["login"]["accessToken"]
    return time.perf_counter() - start


async def probe(client: httpx.AsyncClient, token: str, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        start = time.perf_counter()
        response = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
        latencies.append(time.perf_counter() - start)
        assert "errors" not in response.json(), response.text
        await asyncio.sleep(0.02)
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(port: int, logins: int) -> None:
    limits = httpx.Limits(max_connections=logins + 2)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits
    ) as client:
        token_resp = await client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}},
        )
        token = token_resp.json()["data"]["login"]["accessToken"]
        idle = await probe_for(client, token, 1.0)

        stop = asyncio.Event()
        probe_task = asyncio.create_task(probe(client, token, stop))
        start = time.perf_counter()
        durations = await asyncio.gather(*(login(client) for _ in range(logins)))
        storm = time.perf_counter() - start
        stop.set()
        busy = await probe_task

    print(f"idle   me: n={len(idle)} p50={pct(idle, 0.5):.1f} ms p99={pct(idle, 0.99):.1f} ms")
    print(
        f"storm  me: n={len(busy)} p50={pct(busy, 0.5):.1f} ms p95={pct(busy, 0.95):.1f} ms "
        f"max={max(busy) * 1000:.1f} ms"
    )
    print(
        f"logins: {logins} concurrent in {storm:.2f} s "
        f"(each {statistics.median(durations):.2f} s median, {max(durations):.2f} s max)"
    )


async def probe_for(client: httpx.AsyncClient, token: str, seconds: float) -> list[float]:
    stop = asyncio.Event()
    task = asyncio.create_task(probe(client, token, stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="taskql-bench-") as tmp:
        server = start_server(Path(tmp), port, args.workers)
        try:
            wait_ready(f"http://127.0.0.1:{port}", server)
            asyncio.run(run(port, args.logins))
        finally:
            stop(server)


if __name__ == "__main__":
    main()
