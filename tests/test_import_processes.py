"""Real processes: a runner killed mid-job and resumed, two runners sharing a queue, the progress
subscription over a real WebSocket, and `taskql import`."""

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportJob, ImportStatus, Role, Task, User
from tests.support.accounts import TokenFor, UserFactory
from tests.support.imports import error_rows, generate_csv, job_row, task_rows, upload, upload_job
from tests.support.processes import (
    process_env,
    start_taskql,
    stop_process,
    taskql_command,
    taskql_server,
)
from tests.support.world import ImportWorld

pytestmark = pytest.mark.slow
GRAPHQL_WS = Subprotocol("graphql-transport-ws")

PROGRESS = """
subscription Progress($id: ID!) {
  importJobProgress(id: $id) { status rowsProcessed rowsImported rowsFailed progress }
}
"""


async def wait_for(process: subprocess.Popen[bytes], seconds: float) -> int:
    return await anyio.to_thread.run_sync(functools.partial(process.wait, timeout=seconds))


async def poll_job(
    session_factory: SessionFactory, job_id: str, done: Any, seconds: float = 60
) -> ImportJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = await job_row(session_factory, job_id)
        if done(job):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not get there in {seconds}s")


async def counts(session_factory: SessionFactory) -> tuple[int, int]:
    async with session_factory() as session:
        tasks = (await session.execute(sa.select(sa.func.count()).select_from(Task))).scalar_one()
        errors = (
            await session.execute(sa.text("SELECT count(*) FROM import_row_error"))
        ).scalar_one()
    return int(tasks), int(errors)


async def test_a_killed_runner_s_job_is_resumed_without_duplicates_or_losses(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    admin_token: str,
    tmp_path: Path,
) -> None:
    generated = generate_csv(20_000, world=import_world)
    job_id = await upload_job(client, generated.content, token=admin_token)
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        IMPORT_BATCH_SIZE="100",
        IMPORT_HEARTBEAT_SECONDS="0.2",
        IMPORT_STALE_SECONDS="1.5",
        IMPORT_POLL_SECONDS="0.1",
    )
    first = start_taskql(["worker"], env, tmp_path / "first.log")
    try:
        job = await poll_job(session_factory, job_id, lambda j: j.rows_processed >= 3000)
        os.kill(first.pid, signal.SIGKILL)
        await wait_for(first, 10)
    finally:
        stop_process(first)
    killed = await job_row(session_factory, job_id)
    assert killed.status == ImportStatus.RUNNING, "the runner finished before it was killed"
    assert killed.rows_processed < 20_000
    # What committed is exactly what the checkpoint says: batches are all or nothing.
    assert await counts(session_factory) == (killed.rows_imported, killed.rows_failed)

    await asyncio.sleep(2)  # the dead runner's heartbeat goes stale
    second = start_taskql(["worker", "--until-idle"], env, tmp_path / "second.log")
    try:
        assert await wait_for(second, 120) == 0
    finally:
        stop_process(second)
    job = await job_row(session_factory, job_id)
    assert (job.status, job.attempts, job.rows_processed) == (ImportStatus.SUCCEEDED, 2, 20_000)
    assert (job.rows_imported, job.rows_failed) == (
        len(generated.valid_titles),
        len(generated.invalid_lines),
    )
    tasks = await task_rows(session_factory)
    assert len(tasks) == len(generated.valid_titles)
    assert {t.title for t in tasks} == generated.valid_titles
    assert {t.created_by for t in tasks} == {admin.id}
    assert {e.line for e in await error_rows(session_factory, job_id)} == generated.invalid_lines


async def test_two_runners_share_four_jobs_each_exactly_once(
    import_world: ImportWorld,
    backend: str,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    tmp_path: Path,
) -> None:
    if backend != "postgresql":
        pytest.skip("several runners claim with FOR UPDATE SKIP LOCKED on PostgreSQL")
    files = [generate_csv(10_000, world=import_world, tag=f"job{n}") for n in range(4)]
    job_ids = [await upload_job(client, f.content, token=admin_token) for f in files]
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        IMPORT_BATCH_SIZE="250",
        IMPORT_POLL_SECONDS="0.1",
    )
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    runners = [start_taskql(["worker", "--until-idle"], env, log) for log in logs]
    try:
        for runner in runners:
            assert await wait_for(runner, 120) == 0
    finally:
        for runner in runners:
            stop_process(runner)

    started = [re.findall(r"import job (\S+): started", log.read_text()) for log in logs]
    assert sorted(started[0] + started[1]) == sorted(job_ids)  # each job once, by one runner
    assert all(started), f"one runner got every job: {started}"
    for job_id in job_ids:
        job = await job_row(session_factory, job_id)
        assert (job.status, job.attempts) == (ImportStatus.SUCCEEDED, 1)
        assert (job.rows_imported, job.rows_failed) == (9_500, 500)
    titles = [t.title for t in await task_rows(session_factory)]
    assert len(titles) == len(set(titles)) == 4 * 9_500


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A real `taskql serve` process with the in-process import runner, on the test database."""
    env = process_env(
        settings.database_url,
        settings.upload_dir,
        RUN_IMPORT_WORKER="true",
        IMPORT_BATCH_SIZE="200",
        IMPORT_POLL_SECONDS="0.5",
        IMPORT_PROGRESS_SECONDS="0.05",
        WS_ALLOWED_ORIGINS="http://allowed.example",
    )
    log = tmp_path / "server.log"
    with taskql_server(env, log) as url:
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()


async def _subscribe(ws: ClientConnection, token: str | None, job_id: str) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert json.loads(await ws.recv()) == {"type": "connection_ack"}
    payload = {"query": PROGRESS, "variables": {"id": job_id}}
    await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))


async def _messages(ws: ClientConnection) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    with anyio.fail_after(60):
        while not received or received[-1]["type"] not in ("complete", "error"):
            received.append(json.loads(await ws.recv()))
    return received


async def test_the_subscription_streams_progress_over_a_real_websocket(
    import_world: ImportWorld,
    server: str,
    admin_token: str,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    generated = generate_csv(20_000, world=import_world)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        response = await upload(http, generated.content, token=admin_token)
    job_id = response.json()["data"]["importTasks"]["id"]
    ws_url = server.replace("http://", "ws://") + "/graphql"

    async with connect(ws_url, subprotocols=[GRAPHQL_WS]) as ws:
        await _subscribe(ws, admin_token, job_id)
        messages = await _messages(ws)
    assert messages[-1] == {"type": "complete", "id": "1"}
    updates = [m["payload"]["data"]["importJobProgress"] for m in messages[:-1]]
    assert len(updates) >= 2, updates
    assert updates[-1] == {
        "status": "SUCCEEDED",
        "rowsProcessed": 20_000,
        "rowsImported": 19_000,
        "rowsFailed": 1_000,
        "progress": 1.0,
    }
    processed = [u["rowsProcessed"] for u in updates]
    assert processed == sorted(processed)
    assert {u["status"] for u in updates[:-1]} <= {"QUEUED", "RUNNING"}

    user_token = token_for(await make_user(role=Role.USER))
    async with connect(ws_url, subprotocols=[GRAPHQL_WS]) as ws:
        await _subscribe(ws, user_token, job_id)
        refused = (await _messages(ws))[0]
    errors = refused["payload"] if refused["type"] == "error" else refused["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_websocket_handshake_checks_token_and_origin(server: str) -> None:
    ws_url = server.replace("http://", "ws://") + "/graphql"
    async with connect(ws_url, subprotocols=[GRAPHQL_WS]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": "forged"}}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403

    with pytest.raises(InvalidStatus):
        async with connect(ws_url, subprotocols=[GRAPHQL_WS], origin=Origin("http://evil.example")):
            pass
    async with connect(
        ws_url, subprotocols=[GRAPHQL_WS], origin=Origin("http://allowed.example")
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv()) == {"type": "connection_ack"}


async def test_taskql_import_reports_progress_and_writes_the_report(
    import_world: ImportWorld,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    tmp_path: Path,
) -> None:
    source = tmp_path / "Sprint 12.csv"
    source.write_bytes(generate_csv(3_000, world=import_world).content)
    env = process_env(settings.database_url, settings.upload_dir, IMPORT_BATCH_SIZE="500")
    command = taskql_command("import", str(source), "--as", admin.email)
    done = await anyio.run_process(command, env=env, cwd=tmp_path, check=False)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert "SUCCEEDED" in out
    assert "2,850 tasks imported, 150 rows rejected" in out
    assert "Error report: Sprint 12_errors.csv" in out
    assert "100%  3,000/3,000 rows, 150 rejected" in err
    report = (tmp_path / "Sprint 12_errors.csv").read_text().splitlines()
    assert len(report) == 151
    assert len(await task_rows(session_factory)) == 2_850
    assert (await anyio.run_process([*command[:-1], "nobody@example.com"], env=env,
                                    check=False)).returncode != 0  # fmt: skip
