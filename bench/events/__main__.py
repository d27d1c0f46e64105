"""Live events benchmark: many subscribers on one process, steady writes through another.

Creates a scratch PostgreSQL database, migrates it, seeds USERs (each a member of one of 10
projects, with one task assigned) and admins, starts two `taskql serve` processes, opens one
WebSocket per subscriber on process B (`taskEvents`, each with its own token: admins see every
event, a USER only their own task's) and sends `updateTask` mutations at a fixed rate through
process A. Prints the delivery latency (from sending the mutation to the event reaching the
subscriber) and the CPU each process spent.

    flock /tmp/taskql-bench.lock .venv/bin/python -m bench.events \
        [--subscribers 1000] [--admins 10] [--rate 100] [--seconds 20]
"""

import argparse
import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from auth.tokens import TokenCodec
from bench.common import TASKQL, free_port, postgres_url, recreate_postgres, stop, wait_ready
from db.engine import make_engine

BENCH_DB = "taskql_bench_events"
SECRET = "bench-secret-bench-secret-bench-secret-0123"
PROJECTS = 10
GRAPHQL_WS = Subprotocol("graphql-transport-ws")
SUBSCRIPTION = "subscription { taskEvents { kind taskId task { title } } }"
UPDATE = "mutation($i: UpdateTaskInput!) { updateTask(input: $i) { task { id } } }"
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def seed(url: str, users: int, admins: int) -> tuple[list[int], list[int], list[int]]:
    """Admins, USERs with a project each and one task each: (admin ids, user ids, task ids)."""
    from db.models import metadata

    user, project, member, task = (
        metadata.tables[name] for name in ("user", "project", "project_member", "task")
    )
    now = datetime.now(UTC)

    def person(n: int, role: str) -> dict[str, object]:
        return {
            "email": f"{role.lower()}{n}@example.com",
            "full_name": f"{role} {n}",
            "hashed_password": "x",
            "role": role,
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }

    async def insert(
        conn: AsyncConnection, table: sa.Table, rows: list[dict[str, object]]
    ) -> list[int]:
        result = await conn.execute(table.insert().returning(table.c.id), rows)
        return [int(i) for i in result.scalars()]

    engine = make_engine(url)
    async with engine.begin() as conn:
        admin_ids = [(await insert(conn, user, [person(n, "ADMIN")]))[0] for n in range(admins)]
        user_ids = await insert(conn, user, [person(n, "USER") for n in range(users)])
        project_ids = await insert(
            conn,
            project,
            [
                {"name": f"P{p}", "description": "", "created_at": now, "updated_at": now}
                for p in range(PROJECTS)
            ],
        )
        place = {u: project_ids[n % PROJECTS] for n, u in enumerate(user_ids)}
        await conn.execute(
            member.insert(),
            [{"project_id": p, "user_id": u, "added_at": now} for u, p in place.items()],
        )
        task_ids = await insert(
            conn,
            task,
            [
                {"project_id": p, "title": "t", "description": "", "status": "PENDING",
                 "assigned_to": u, "created_at": now, "updated_at": now}
                for u, p in place.items()
            ],
        )  # fmt: skip
    await engine.dispose()
    return admin_ids, user_ids, task_ids


def start_server(url: str, workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORT_", "TASKQL_"))}
    env.update(
        DATABASE_URL=url,
        JWT_SECRET_KEY=SECRET,
        LOG_LEVEL="WARNING",
        UPLOAD_DIR=str(workdir / "uploads"),
        RUN_IMPORT_WORKER="false",
    )
    port = free_port()
    cmd = [TASKQL, "serve", "--port", str(port), "--no-access-log"]
    with (workdir / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, log=workdir / f"{name}.log")
    return process, base


class Collector:
    """Every event received: (receive time, title) per subscriber kind."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.delivered = 0
        self.resyncs = 0
        self.measuring = False


async def subscriber(ws_url: str, token: str, ready: asyncio.Event, out: Collector) -> None:
    ws: ClientConnection
    async with connect(ws_url, subprotocols=[GRAPHQL_WS], max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        await ws.recv()
        payload = {"query": SUBSCRIPTION}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
        ready.set()
        async for raw in ws:
            now = time.monotonic()
            message = json.loads(raw)
            if message.get("type") != "next":
                continue
            event = message["payload"]["data"]["taskEvents"]
            if event["kind"] == "RESYNC":
                out.resyncs += 1
                continue
            title = (event.get("task") or {}).get("title")
            sent = out.sent.get(title or "")
            if sent is not None and out.measuring:
                out.latencies.append(now - sent)
                out.delivered += 1


async def run(args: argparse.Namespace, url: str, workdir: Path) -> None:
    admin_ids, user_ids, task_ids = await seed(url, args.subscribers - args.admins, args.admins)
    codec = TokenCodec(SECRET, "HS256", timedelta(hours=2), timedelta(days=1))

    def token(user_id: int) -> str:
        return codec.encode(codec.issue(user_id, "access", version=0))

    a, a_url = start_server(url, workdir, "a")
    b, b_url = start_server(url, workdir, "b")
    try:
        out = Collector()
        ws_url = b_url.replace("http://", "ws://") + "/graphql"
        subscribers = [*admin_ids, *user_ids]
        readies = [asyncio.Event() for _ in subscribers]
        started = time.monotonic()
        listeners = []
        for n, user_id in enumerate(subscribers):
            listeners.append(
                asyncio.create_task(subscriber(ws_url, token(user_id), readies[n], out))
            )
            if n % 50 == 49:
                await asyncio.gather(*(r.wait() for r in readies[: n + 1]))
        await asyncio.gather(*(r.wait() for r in readies))
        await asyncio.sleep(2)  # every subscription has reached the hub
        print(f"{len(subscribers)} subscribers connected in {time.monotonic() - started:.1f} s "
              f"({args.admins} admins, {len(user_ids)} USERs)")  # fmt: skip

        limits = httpx.Limits(max_connections=50)
        admin_token = token(admin_ids[0])
        headers = {"Authorization": f"Bearer {admin_token}"}
        mutation_times: list[float] = []
        async with httpx.AsyncClient(base_url=a_url, timeout=30, limits=limits) as http:

            async def update(seq: int) -> None:
                title = f"e{seq}"
                task_id = random.choice(task_ids)
                sent = time.monotonic()
                out.sent[title] = sent
                body = {"query": UPDATE, "variables": {"i": {"id": task_id, "title": title}}}
                try:
                    response = await http.post("/graphql", json=body, headers=headers)
                except httpx.TransportError:  # a kept-alive connection the server had closed
                    response = await http.post("/graphql", json=body, headers=headers)
                assert "errors" not in response.json(), response.text
                mutation_times.append(time.monotonic() - sent)

            idle_b = cpu_seconds(b.pid)
            await asyncio.sleep(2)
            idle_b = (cpu_seconds(b.pid) - idle_b) / 2
            cpu_a, cpu_b = cpu_seconds(a.pid), cpu_seconds(b.pid)
            cpu_me = time.process_time()
            out.measuring = True
            begin = time.monotonic()
            writes = []
            total = int(args.rate * args.seconds)
            for seq in range(total):
                writes.append(asyncio.create_task(update(seq)))
                delay = begin + (seq + 1) / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*writes)
            elapsed = time.monotonic() - begin
            await asyncio.sleep(3)  # the last events arrive
            cpu_a, cpu_b = cpu_seconds(a.pid) - cpu_a, cpu_seconds(b.pid) - cpu_b
            cpu_me = time.process_time() - cpu_me
            span = time.monotonic() - begin
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    finally:
        stop(a)
        stop(b)
        for name in ("a", "b"):
            text = (workdir / f"{name}.log").read_text()
            if "Traceback" in text or "ERROR" in text:
                print(f"--- {name}.log ---\n{text[-3000:]}")

    expected = total * (args.admins + 1)  # every admin, plus the USER whose task it is
    latency = out.latencies or [float("nan")]
    mutation = mutation_times or [float("nan")]
    lines = [
        f"writes: {total} updateTask through A in {elapsed:.1f} s ({total / elapsed:.0f}/s), "
        f"mutation p50 {pct(mutation, 0.5):.1f} ms, p99 {pct(mutation, 0.99):.1f} ms",
        f"delivered: {out.delivered} of {expected} expected events, {out.resyncs} RESYNC",
        f"latency (mutation sent -> event received on B): p50 {pct(latency, 0.5):.1f} ms, "
        f"p99 {pct(latency, 0.99):.1f} ms, max {max(latency) * 1000:.1f} ms",
        f"CPU over {span:.1f} s: B (subscribers) {cpu_b:.2f} s = {100 * cpu_b / span:.0f}% of a "
        f"core (idle with its subscribers: {100 * idle_b:.0f}%), "
        f"{1000 * cpu_b / max(out.delivered, 1):.2f} ms per delivered event; "
        f"A (writes) {cpu_a:.2f} s = {100 * cpu_a / span:.0f}%; "
        f"this client {100 * cpu_me / span:.0f}%",
    ]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--admins", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = postgres_url(args.pg_url, BENCH_DB)
    asyncio.run(recreate_postgres(url, create=True))
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([TASKQL, "migrate"], env=env, check=True, capture_output=True)
    try:
        with tempfile.TemporaryDirectory(prefix="taskql-bench-events-") as tmp:
            asyncio.run(run(args, url, Path(tmp)))
    finally:
        asyncio.run(recreate_postgres(url, create=False))


if __name__ == "__main__":
    main()
