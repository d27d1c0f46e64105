"""A real `taskql serve` process (uvicorn) answering over HTTP, and the CLI around it."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.database import sqlite_url
from tests.support.graphql import bearer
from tests.support.processes import (
    free_port,
    process_env,
    run_taskql,
    start_taskql,
    stop_process,
    taskql_server,
    wait_until_healthy,
)

pytestmark = pytest.mark.slow
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "a long admin password"


def env_on_sqlite(tmp_path: Path, name: str) -> dict[str, str]:
    """A `taskql` environment on a fresh SQLite file in `tmp_path`, logging warnings only."""
    return process_env(sqlite_url(tmp_path / name), tmp_path / "uploads", LOG_LEVEL="WARNING")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`taskql serve` with two workers on a fresh SQLite file and an admin from the environment."""
    env = env_on_sqlite(tmp_path, "served.db")
    env.update(TASKQL_ADMIN_EMAIL=ADMIN_EMAIL, TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD)
    with taskql_server(env, tmp_path / "server.log", "--workers", "2") as url:
        yield url


def test_real_server_over_http(served: str) -> None:
    with httpx.Client(base_url=served, timeout=10) as client:
        typename = client.post("/graphql", json={"query": "{ __typename }"})
        assert typename.json() == {"data": {"__typename": "Query"}}
        assert typename.headers["x-request-id"]

        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()

        assert client.get("/readyz").json() == {"status": "ok"}

        login = client.post(
            "/graphql",
            json={
                "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                "variables": {"i": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}},
            },
        ).json()
        token = login["data"]["login"]["accessToken"]
        # Two workers share the secret, so every request verifies whichever worker answers.
        for _ in range(6):
            me = client.post(
                "/graphql",
                json={"query": "{ me { email role } }"},
                headers=bearer(token),
            ).json()
            assert me == {"data": {"me": {"email": ADMIN_EMAIL, "role": "ADMIN"}}}


def test_cli_migrate_create_admin_and_export(tmp_path: Path) -> None:
    env = env_on_sqlite(tmp_path, "cli.db")
    migrated = run_taskql("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "cli.db").exists()

    env["TASKQL_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    created = run_taskql("create-admin", "--email", "Boss@Example.com", env=env)
    assert created.returncode == 0, created.stderr
    again = run_taskql("create-admin", "--email", "boss@example.com", env=env)
    assert again.returncode != 0
    assert "already exists" in again.stderr

    env["TASKQL_ADMIN_PASSWORD"] = "short"
    weak = run_taskql("create-admin", "--email", "weak@example.com", env=env)
    assert weak.returncode != 0
    assert "at least 8 characters" in weak.stderr

    exported = run_taskql("export-schema", env=env)
    assert exported.returncode == 0, exported.stderr
    assert "type Query" in exported.stdout
    assert "login(input: LoginInput!): AuthPayload!" in exported.stdout


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = env_on_sqlite(tmp_path, "prod.db")
    env.update(ENVIRONMENT="production", JWT_SECRET_KEY="changeme")
    result = run_taskql("serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "JWT_SECRET_KEY is a placeholder value" in result.stderr


def test_production_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = env_on_sqlite(tmp_path, "prod.db")
    env.update(ENVIRONMENT="production")
    result = run_taskql("serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "taskql migrate" in result.stderr


def _listeners(port: int) -> set[int]:
    """The ids of the processes that hold a listening TCP socket on `port` (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    owners: set[int] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:  # gone, or not ours to read
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            owners.add(int(pid))
    return owners


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_listen_on_their_own_sockets_and_stop_together(tmp_path: Path) -> None:
    """`--workers 2`: two processes, each with its own listening socket on the port (so the
    kernel spreads connections over them), and none left once the server is stopped."""
    env = env_on_sqlite(tmp_path, "workers.db")
    port = free_port()
    log = tmp_path / "workers.log"
    process = start_taskql(["serve", "--port", str(port), "--workers", "2"], env, log)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log=log)
        assert len(_listeners(port)) == 2, log.read_text()[-2000:]
    finally:
        stop_process(process)
    assert process.returncode == 0, log.read_text()[-2000:]
    assert _listeners(port) == set()
