"""`taskql serve --workers 2` with METRICS=public and LOG_FORMAT=json: a scrape of either worker
covers both, and every line the server writes is a JSON object."""

import asyncio
import json
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from tests.support.database import sqlite_url
from tests.support.imports import HEADER, upload_job
from tests.support.metrics import parse_scrape, value
from tests.support.processes import process_env, taskql_server

pytestmark = pytest.mark.slow

REQUESTS = 40
PING = "query Ping { __typename }"
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "a long admin password"
LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }"
PROGRESS = "subscription P($id: ID!) { importJobProgress(id: $id) { status } }"
PROTOCOL = "graphql-transport-ws"


def test_one_scrape_covers_every_worker(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    env = process_env(
        sqlite_url(tmp_path / "workers.db"),
        tmp_path / "uploads",
        METRICS="public",
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(shared),
    )
    log = tmp_path / "server.log"
    with taskql_server(env, log, "--workers", "2") as url:
        for _ in range(REQUESTS):  # a new connection each time: the kernel spreads them
            answer = httpx.post(f"{url}/graphql", json={"query": PING}, timeout=10)
            assert answer.json() == {"data": {"__typename": "Query"}}
        writers = {path.stem.rsplit("_", 1)[-1] for path in shared.glob("counter_*.db")}
        assert len(writers) == 2, writers  # both workers answered some
        scrape = httpx.get(f"{url}/metrics", timeout=10)
        assert scrape.status_code == 200
        samples = parse_scrape(scrape.text)
    ops = value(samples, "taskql_graphql_operations_total", operation="Ping", outcome="ok")
    assert ops == REQUESTS
    assert value(samples, "taskql_graphql_operation_seconds_count", operation="Ping") == REQUESTS
    posts = value(samples, "taskql_http_requests_total", route="/graphql", status="200")
    assert posts == REQUESTS
    assert value(samples, "taskql_db_pool_size") > 0

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = orjson.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record)


async def test_websockets_and_subscriptions_are_gauged(tmp_path: Path) -> None:
    env = process_env(
        sqlite_url(tmp_path / "ws.db"),
        tmp_path / "uploads",
        METRICS="public",
        RUN_IMPORT_WORKER="false",  # the job stays queued, so its subscription stays open
        TASKQL_ADMIN_EMAIL=ADMIN_EMAIL,
        TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with taskql_server(env, tmp_path / "server.log") as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            login = await client.post(
                "/graphql",
                json={
                    "query": LOGIN,
                    "variables": {"input": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}},
                },
            )
            token = login.json()["data"]["login"]["accessToken"]
            job_id = await upload_job(client, f"{HEADER}\n1,T,,Pending,\n".encode(), token=token)

            async def gauges() -> tuple[float, float]:
                samples = parse_scrape((await client.get("/metrics")).text)
                return (
                    value(samples, "taskql_websocket_connections"),
                    value(samples, "taskql_subscriptions_active"),
                )

            assert await gauges() == (0, 0)
            ws_url = url.replace("http://", "ws://") + "/graphql"
            async with websockets.connect(ws_url, subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                assert await gauges() == (1, 0)
                subscribe = {"query": PROGRESS, "variables": {"id": job_id}}
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
                first = json.loads(await ws.recv())
                assert first["payload"]["data"]["importJobProgress"]["status"] == "QUEUED"
                assert await gauges() == (1, 1)
            for _ in range(100):  # the server notices the close soon after
                if await gauges() == (0, 0):
                    break
                await asyncio.sleep(0.05)
            assert await gauges() == (0, 0)
