"""Real Node clients against a real `taskql serve`: Apollo Client 4 (auth, uploads, graphql-ws
subscriptions, persisted queries, batching), urql 6, and graphql-http's GraphQL-over-HTTP audit.

The scripts and their pinned packages live in tests/clients (`make clients` installs them). Each
prints a JSON summary, or exits non-zero saying which step failed.
"""

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.database import (
    IN_CI,
    postgres_url,
    recreate_postgres_database,
    scratch_postgres_url,
    sqlite_url,
)
from tests.support.processes import process_env, taskql_server

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).with_name("clients")
ADMIN_EMAIL = "clients@example.com"
ADMIN_PASSWORD = "a long client password"
AUDITS = 61  # graphql-http 1.23.1's server audits


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` binary, with tests/clients installed: a failure under CI=true, else a skip."""
    found = shutil.which("node")
    if found is None:
        missing = "node is not installed (Node 20 or newer)"
    elif not (CLIENTS / "node_modules").is_dir():
        missing = "tests/clients/node_modules is missing: run `make clients`"
    else:
        return found
    if IN_CI:
        pytest.fail(missing)
    pytest.skip(missing)


@pytest.fixture(scope="module")
async def clients_database(
    backend: str, migrated_engine: AsyncEngine, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database of the clients' own, so other tests' truncations cannot reach the server's
    data; the server migrates it on start. (`migrated_engine` has checked PostgreSQL answers.)"""
    if backend == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("clients") / "clients.db")
        return
    url, admin_url = scratch_postgres_url("clients"), postgres_url() or ""
    name = make_url(url).database or ""
    await recreate_postgres_database(admin_url, name, create=True)
    yield url
    await recreate_postgres_database(admin_url, name, create=False)


@pytest.fixture(scope="module")
def served(
    node: str, clients_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One `taskql serve` for every client, with its first admin from the environment."""
    tmp = tmp_path_factory.mktemp("served")
    env = process_env(
        clients_database,
        tmp / "uploads",
        TASKQL_ADMIN_EMAIL=ADMIN_EMAIL,
        TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LOG_LEVEL="WARNING",
        IMPORT_POLL_SECONDS="0.1",
        IMPORT_PROGRESS_SECONDS="0.05",
    )
    log = tmp / "server.log"
    with taskql_server(env, log) as url:
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()


def run_client(node: str, url: str, script: str, *args: str) -> dict[str, Any]:
    """Run tests/clients/SCRIPT against `url`; its JSON summary, or a failure with its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQL_")}
    env.update(TASKQL_URL=url, TASKQL_ADMIN_EMAIL=ADMIN_EMAIL, TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD)
    done = subprocess.run(
        [node, script, *args],
        cwd=CLIENTS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )
    if done.returncode != 0:
        pytest.fail(f"node {script} {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def test_apollo_client_4_queries_pages_uploads_and_subscribes(node: str, served: str) -> None:
    summary = run_client(node, served, "apollo.mjs", "core")
    assert summary["tasksCreated"] == 7
    assert summary["query"] == {"total": 7, "pending": 7, "inProgress": 0, "done": 0}
    assert summary["paging"] == {"pages": 3, "ids": 7, "distinct": 7}
    upload = summary["upload"]
    assert upload["statuses"][-1] == "SUCCEEDED"
    assert (upload["rowsImported"], upload["rowsFailed"]) == (2, 1)
    assert upload["report"]["rows"] == 1
    assert upload["report"]["row"] == 3
    assert "Someday" in upload["report"]["error"]
    assert summary["tasksAfterImport"] == 9


def test_apollo_persisted_queries_miss_retry_and_hit(node: str, served: str) -> None:
    summary = run_client(node, served, "apollo.mjs", "apq")
    for name, method in (("apqPost", "POST"), ("apqGet", "GET")):
        apq = summary[name]
        assert apq["missCode"] == "PERSISTED_QUERY_NOT_FOUND"
        # The miss carries the hash alone, its retry the query (always POSTed), then a hit.
        assert [(r["method"], r["query"]) for r in apq["requests"]] == [
            (method, False),
            ("POST", True),
            (method, False),
        ]
        assert [r["status"] for r in apq["requests"]][1:] == [200, 200]


def test_apollo_batch_http_link_sends_one_request(node: str, served: str) -> None:
    summary = run_client(node, served, "apollo.mjs", "batch")
    assert summary["batch"] == {"httpRequests": 1, "operations": 4, "answered": 4}


def test_urql_6_queries_pages_mutates_and_subscribes(node: str, served: str) -> None:
    summary = run_client(node, served, "urql.mjs")
    assert summary["me"] == ADMIN_EMAIL
    assert summary["paging"] == {"pages": 3, "ids": 5, "distinct": 5}
    # me and three pages as GET; createProject, five createTask, the upload and the updateTask
    # pokes of the events part as POST.
    assert summary["httpMethods"]["GET"] == 4
    assert summary["subscription"]["status"] == "SUCCEEDED"
    assert summary["subscription"]["rowsImported"] == 2
    assert summary["report"]["row"] == 3
    assert summary["events"] == {"kind": "UPDATED", "changedFields": ["title"]}
    assert summary["httpMethods"]["POST"] >= 8  # and the updateTask pokes


def test_apollo_receives_task_events_over_graphql_ws(node: str, served: str) -> None:
    summary = run_client(node, served, "apollo.mjs", "events")
    assert summary["events"]["kind"] == "UPDATED"
    assert summary["events"]["changedFields"] == ["title"]


def test_graphql_http_audit_passes_every_check(node: str, served: str) -> None:
    summary = run_client(node, served, "audit.mjs")
    results = summary["results"]
    not_ok = [result for result in results if result["status"] != "ok"]
    print(json.dumps(not_ok, indent=2))
    assert not_ok == []
    assert len(results) == AUDITS
    assert summary["counts"] == {"ok": AUDITS}
