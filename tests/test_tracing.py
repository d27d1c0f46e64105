"""OpenTelemetry traces, caught by the SDK's in-memory exporter: one trace per request, the
request's span with its request id and operation name, the GraphQL phases and the SQL
statements inside it, and a caller's W3C `traceparent` honoured."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine

from core import tracing
from core.settings import Settings
from db.engine import SessionFactory
from importer.runner import ImportRunner
from taskql.app import create_app
from tests.support.graphql import bearer
from tests.support.imports import HEADER, upload_job

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

ME = "query Me { me { id email } }"
NEW_PROJECT = 'mutation NewProject { createProject(input: {name: "Traced"}) { project { id } } }'


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.uninstall()


@pytest.fixture
async def traced(
    settings: Settings, engine: AsyncEngine, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def by_trace(finished: tuple[ReadableSpan, ...]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = {}
    for span in finished:
        assert span.context is not None
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The names of the span's ancestors within `spans`, nearest first."""
    index = {s.context.span_id: s for s in spans if s.context is not None}
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


async def test_a_trace_per_request_with_its_phases_and_statements(
    traced: httpx.AsyncClient, admin_token: str, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    mutation = await traced.post(
        "/graphql",
        json={"query": NEW_PROJECT},
        headers={**bearer(admin_token), "X-Request-ID": "req-mutation"},
    )
    assert "errors" not in mutation.json()
    read = await traced.post(
        "/graphql", json={"query": ME}, headers={**bearer(admin_token), "traceparent": TRACEPARENT}
    )
    assert read.json()["data"]["me"]["id"]

    traces = by_trace(spans.get_finished_spans())
    assert len(traces) == 2
    incoming = traces.pop(int(TRACE_ID, 16))  # the read joined the caller's trace
    [executed] = traces.values()

    [root] = [s for s in executed if s.kind == SpanKind.SERVER]
    assert root.parent is None
    assert root.name == "POST /graphql"
    assert root.attributes is not None
    assert root.attributes["taskql.request_id"] == "req-mutation"
    assert root.attributes["graphql.operation.name"] == "NewProject"
    assert root.attributes["http.response.status_code"] == 200
    names = {s.name for s in executed}
    assert {"graphql.operation", "graphql.parse", "graphql.validate", "graphql.execute"} <= names
    for phase in ("graphql.parse", "graphql.validate", "graphql.execute"):
        [span] = [s for s in executed if s.name == phase]
        assert ancestors(span, executed)[:2] == ["graphql.operation", "POST /graphql"]
    statements = [s for s in executed if s.name == "db.query"]
    assert any("INSERT" in str((s.attributes or {}).get("db.statement")) for s in statements)
    for statement in statements:
        assert ancestors(statement, executed)[-1] == "POST /graphql"

    [read_root] = [s for s in incoming if s.kind == SpanKind.SERVER]
    assert read_root.parent is not None
    assert read_root.parent.span_id == int(PARENT_ID, 16)
    assert read_root.parent.is_remote
    assert (read_root.attributes or {})["graphql.operation.name"] == "Me"
    [compiled_sql] = [s for s in incoming if s.name == "db.query"]  # the compiled read's one
    assert ancestors(compiled_sql, incoming) == ["POST /graphql"]


async def test_import_batches_are_spans_of_the_job(
    traced: httpx.AsyncClient,
    admin_token: str,
    settings: Settings,
    session_factory: SessionFactory,
    spans: InMemorySpanExporter,
) -> None:
    created = await traced.post(
        "/graphql", json={"query": NEW_PROJECT}, headers=bearer(admin_token)
    )
    project_id = created.json()["data"]["createProject"]["project"]["id"]
    rows = "".join(f"{project_id},Task {i},,Pending,\n" for i in range(5))
    await upload_job(traced, f"{HEADER}\n{rows}".encode(), token=admin_token)
    spans.clear()
    small = settings.model_copy(update={"import_batch_size": 2})
    assert await ImportRunner(session_factory, small).run_until_idle() == 1
    finished = list(spans.get_finished_spans())
    [job] = [s for s in finished if s.name == "import.job"]
    batches = [s for s in finished if s.name == "import.batch"]
    assert [(b.attributes or {})["rows"] for b in batches] == [2, 2, 1]
    for batch in batches:
        assert ancestors(batch, finished) == ["import.job"]
    inserts = [
        s for s in finished if s.name == "db.query" and "import.batch" in ancestors(s, finished)
    ]
    assert inserts
    assert job.parent is None


async def test_a_dropped_trace_makes_no_spans_and_a_sampled_caller_is_followed(
    settings: Settings, engine: AsyncEngine, admin_token: str
) -> None:
    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter), sampler=ParentBased(ALWAYS_OFF))
    try:
        app = create_app(settings, engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for query in (ME, NEW_PROJECT):  # the compiled path, then the executor
                await client.post("/graphql", json={"query": query}, headers=bearer(admin_token))
            assert exporter.get_finished_spans() == ()
            sampled = {**bearer(admin_token), "traceparent": TRACEPARENT}  # flags 01: sampled
            await client.post("/graphql", json={"query": ME}, headers=sampled)
        names = sorted(span.name for span in exporter.get_finished_spans())
        assert names == ["POST /graphql", "db.query"]
    finally:
        tracing.uninstall()
