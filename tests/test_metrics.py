"""`GET /metrics`: after a scripted mix of reads, mutations, logins, an import and errors, the
scrape parses with Prometheus' parser and each counter moved by exactly what the mix did; the
pool counts waits and timeouts; METRICS=off|public|token protects the page."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from core import metrics
from core.settings import Settings, SettingsError
from db.engine import SessionFactory, Timeouts, make_engine
from db.models import User
from db.observe import observe_engine, sample_pools
from importer.runner import ImportRunner
from taskql.app import create_app
from tests.support.accounts import DEFAULT_PASSWORD
from tests.support.graphql import bearer
from tests.support.imports import HEADER, upload_job
from tests.support.metrics import Samples, moved, parse_scrape, value

METRICS_TOKEN = "a-metrics-token-of-some-length"

ME = "query Me { me { id email } }"
JOBS = "query Jobs { importJobs(first: 5) { edges { node { id status } } } }"
MISSING = "query Missing { project(id: 999999) { id } }"
BAD = "query Bad { nope }"
NEW_PROJECT = 'mutation NewProject { createProject(input: {name: "Metrics"}) { project { id } } }'
JOB = "query J($id: ID!) { importJob(id: $id) { status } }"
LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }"


@pytest.fixture
def metrics_off() -> Iterator[None]:
    """Whatever a test turned on, later tests start with metrics off."""
    yield
    metrics.enable(False)


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def metered(
    settings: Settings, engine: AsyncEngine, metrics_off: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with METRICS=public and two failed logins allowed per email."""
    app = create_app(
        settings.model_copy(update={"metrics": "public", "login_max_failures": 2}), engine
    )
    async for client in _client(app):
        yield client


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse_scrape(response.text)


async def post(client: httpx.AsyncClient, query: str, token: str | None, **variables: Any) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_counters_move_by_the_scripted_mix(
    metered: httpx.AsyncClient,
    admin: User,
    admin_token: str,
    settings: Settings,
    session_factory: SessionFactory,
) -> None:
    client = metered
    before = await scrape(client)

    for _ in range(3):
        assert (await post(client, ME, admin_token))["data"]["me"]["email"] == admin.email
    assert "errors" not in await post(client, JOBS, admin_token)
    assert (await post(client, MISSING, admin_token))["errors"][0]["extensions"]["code"] == (
        "NOT_FOUND"
    )
    bad = await post(client, BAD, admin_token)
    assert bad["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    created = await post(client, NEW_PROJECT, admin_token)
    project_id = created["data"]["createProject"]["project"]["id"]

    good = {"email": admin.email, "password": DEFAULT_PASSWORD}
    assert (await post(client, LOGIN, None, input=good))["data"]["login"]["accessToken"]
    wrong = {"email": "nobody@example.com", "password": "not the password"}
    codes = [
        (await post(client, LOGIN, None, input=wrong))["errors"][0]["extensions"]["code"]
        for _ in range(3)
    ]
    assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "TOO_MANY_REQUESTS"]

    csv = f"{HEADER}\n{project_id},One,,Pending,\n{project_id},Two,,Done,\n{project_id},X,,Never,\n"
    job_id = await upload_job(client, csv.encode(), token=admin_token)
    queued = await scrape(client)
    assert value(queued, "taskql_import_queue_depth") == 1
    assert value(queued, "taskql_import_jobs", status="QUEUED") == 1
    assert 0 <= value(queued, "taskql_import_oldest_queued_seconds") < 60
    assert await ImportRunner(session_factory, settings).run_until_idle() == 1
    done = await post(
        client, "query J($id: ID!) { importJob(id: $id) { status } }", admin_token, id=job_id
    )
    assert done["data"]["importJob"]["status"] == "SUCCEEDED"

    after = await scrape(client)

    def ops(name: str, kind: str, outcome: str, code: str = "") -> float:
        return moved(
            before,
            after,
            "taskql_graphql_operations_total",
            operation=name,
            type=kind,
            outcome=outcome,
            code=code,
        )

    assert ops("Me", "query", "ok") == 3
    assert ops("Jobs", "query", "ok") == 1
    assert ops("Missing", "query", "error", "NOT_FOUND") == 1
    assert ops("Bad", "query", "request_error", "GRAPHQL_VALIDATION_FAILED") == 1
    assert ops("NewProject", "mutation", "ok") == 1
    assert ops("Login", "mutation", "ok") == 1
    assert ops("Login", "mutation", "error", "UNAUTHENTICATED") == 2
    assert ops("Login", "mutation", "error", "TOO_MANY_REQUESTS") == 1
    assert ops("Import", "mutation", "ok") == 1
    assert ops("J", "query", "ok") == 1
    assert moved(before, after, "taskql_graphql_operation_seconds_count", operation="Me") == 3

    # Me is answered compiled; Jobs (import jobs), Missing (an error to report), Bad (invalid)
    # and J by the executor.
    assert moved(before, after, "taskql_read_path_total", path="compiled") == 3
    assert moved(before, after, "taskql_read_path_total", path="executor") == 4

    graphql_posts = 3 + 3 + 1 + 1 + 3 + 1 + 1  # reads, mutation and logins, upload, job
    assert moved(before, after, "taskql_http_requests_total", route="/graphql") == graphql_posts
    assert (
        moved(before, after, "taskql_http_requests_total", route="/graphql", status="200")
        == graphql_posts
    )
    assert moved(before, after, "taskql_http_requests_total", route="/metrics") == 2

    assert moved(before, after, "taskql_login_attempts_total", outcome="success") == 1
    assert moved(before, after, "taskql_login_attempts_total", outcome="failure") == 2
    assert moved(before, after, "taskql_login_attempts_total", outcome="throttled") == 1

    assert moved(before, after, "taskql_import_rows_total", outcome="imported") == 2
    assert moved(before, after, "taskql_import_rows_total", outcome="failed") == 1
    finished = "taskql_import_jobs_finished_total"
    assert moved(before, after, finished, status="SUCCEEDED") == 1
    assert value(after, "taskql_import_jobs", status="SUCCEEDED") == 1
    assert value(after, "taskql_import_queue_depth") == 0
    assert value(after, "taskql_import_oldest_queued_seconds") == 0

    assert value(after, "taskql_db_pool_size") > 0
    for name in ("taskql_db_pool_checkout_waits_total", "taskql_db_pool_checkout_timeouts_total"):
        assert any(n == name for n, _ in after), name


async def test_unnamed_and_unknown_operations_share_a_bucket(
    metered: httpx.AsyncClient, admin_token: str
) -> None:
    before = await scrape(metered)
    await post(metered, "{ me { id } }", admin_token)
    await metered.post(
        "/graphql", json={"query": ME, "operationName": "NoSuch"}, headers=bearer(admin_token)
    )
    await post(metered, "query x-y { me { id } }", admin_token)  # does not parse
    after = await scrape(metered)
    other = moved(before, after, "taskql_graphql_operations_total", operation=metrics.OTHER)
    assert other == 3
    assert moved(before, after, "taskql_graphql_operations_total", operation="NoSuch") == 0
    refused = {"operation": metrics.OTHER, "type": "unknown", "outcome": "request_error"}
    for code in ("OPERATION_RESOLUTION_FAILURE", "GRAPHQL_PARSE_FAILED"):
        assert moved(before, after, "taskql_graphql_operations_total", code=code, **refused) == 1
    assert metrics.operation_label("a" * 65) == metrics.OTHER
    assert metrics.operation_label("bad name") == metrics.OTHER


async def test_pool_waits_and_timeouts_are_counted(database_url: str, metrics_off: None) -> None:
    metrics.enable()
    engine = make_engine(database_url, pool_size=1, timeouts=Timeouts(pool=0.2))
    observe_engine(engine, pool_metrics=True, sql_spans=False)
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    before = parse_scrape(metrics.scrape().decode())
    held = [await engine.connect() for _ in range(pool.size() + max(pool._max_overflow, 0))]
    try:
        sample_pools()
        checked_out = parse_scrape(metrics.scrape().decode())
        assert moved(before, checked_out, "taskql_db_pool_checked_out") == len(held)
        with pytest.raises(PoolTimeout):
            await engine.connect()
    finally:
        for connection in held:
            await connection.close()
    sample_pools()
    after = parse_scrape(metrics.scrape().decode())
    await engine.dispose()
    assert moved(before, after, "taskql_db_pool_checkout_waits_total") == 1
    assert moved(before, after, "taskql_db_pool_checkout_timeouts_total") == 1
    assert moved(before, after, "taskql_db_pool_checked_out") == 0


async def test_metrics_off_public_and_token(
    settings: Settings, engine: AsyncEngine, admin_token: str, metrics_off: None
) -> None:
    async for client in _client(create_app(settings, engine)):
        assert (await client.get("/metrics")).status_code == 404

    with pytest.raises(SettingsError):
        create_app(settings.model_copy(update={"metrics": "token"}), engine)

    guarded = settings.model_copy(update={"metrics": "token", "metrics_token": METRICS_TOKEN})
    async for client in _client(create_app(guarded, engine)):
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/metrics", headers=bearer(admin_token))).status_code == 401
        assert (await client.get("/metrics", headers=bearer("wrong"))).status_code == 401
        allowed = await client.get("/metrics", headers=bearer(METRICS_TOKEN))
        assert allowed.status_code == 200
        parse_scrape(allowed.text)
