"""A real `taskql serve` process (uvicorn) answering over HTTP, and the CLI around it."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.processes import free_port, stop_process, wait_until_healthy

pytestmark = pytest.mark.slow
TASKQL = str(Path(sys.executable).with_name("taskql"))
ADMIN_EMAIL = "root@example.com"
ADMIN_PASSWORD = "a long admin password"


def base_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKQL_", "JWT_"))}
    env.update(
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=TEST_SECRET,
        UPLOAD_DIR=str(tmp_path / "uploads"),
        BCRYPT_ROUNDS="4",
        LOG_LEVEL="WARNING",
    )
    return env


def taskql(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `taskql ARGS` to its end (no terminal, a minute at most), capturing its output."""
    return subprocess.run(
        [TASKQL, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`taskql serve` with two workers on a fresh SQLite file and an admin from the environment."""
    port = free_port()
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'served.db'}", tmp_path)
    env.update(TASKQL_ADMIN_EMAIL=ADMIN_EMAIL, TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [TASKQL, "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log=log)
        yield url
    finally:
        stop_process(process)


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
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            assert me == {"data": {"me": {"email": ADMIN_EMAIL, "role": "ADMIN"}}}


def test_cli_migrate_create_admin_and_export(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", tmp_path)
    migrated = taskql("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "cli.db").exists()

    env["TASKQL_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    created = taskql("create-admin", "--email", "Boss@Example.com", env=env)
    assert created.returncode == 0, created.stderr
    again = taskql("create-admin", "--email", "boss@example.com", env=env)
    assert again.returncode != 0
    assert "already exists" in again.stderr

    env["TASKQL_ADMIN_PASSWORD"] = "short"
    weak = taskql("create-admin", "--email", "weak@example.com", env=env)
    assert weak.returncode != 0
    assert "at least 8 characters" in weak.stderr

    exported = taskql("export-schema", env=env)
    assert exported.returncode == 0, exported.stderr
    assert "type Query" in exported.stdout
    assert "login(input: LoginInput!): AuthPayload!" in exported.stdout


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}", tmp_path)
    env.update(ENVIRONMENT="production", JWT_SECRET_KEY="changeme")
    result = taskql("serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "JWT_SECRET_KEY is a placeholder value" in result.stderr


def test_production_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = base_env(f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}", tmp_path)
    env.update(ENVIRONMENT="production")
    result = taskql("serve", "--port", str(free_port()), env=env)
    assert result.returncode != 0
    assert "taskql migrate" in result.stderr
