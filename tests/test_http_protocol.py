"""GraphQL over HTTP: media types, status codes, JSON errors with codes, persisted queries,
batching, subscriptions over HTTP, CORS, and absolute report links.

The graphql-http audit itself runs against a real server in tests/test_clients.py; these
tests pin each case down through the ASGI app, one by one.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings, SettingsError
from graph.http import LEGACY_JSON, RESPONSE_JSON, TaskQLRouter, negotiate
from graph.persisted import PersistedQueries, PersistedQueryError, RecentQueries, query_hash
from taskql.app import create_app
from tests.support.graphql import bearer
from tests.support.imports import IMPORT_JOB, SEED_CSV, run_queue, upload_job
from tests.support.world import ImportWorld

STRICT = {"Accept": RESPONSE_JSON}
LEGACY = {"Accept": LEGACY_JSON}
JSON_BODY = {"Content-Type": "application/json"}
TYPENAME = "{ __typename }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def app_with(settings: Settings, engine: AsyncEngine) -> Callable[..., FastAPI]:
    """An app over the test database with some settings changed."""

    def make(**changes: Any) -> FastAPI:
        return create_app(settings.model_copy(update=changes), engine)

    return make


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """A GraphQL-shaped error answer: the status, a JSON body with the code, a request id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(("application/json", RESPONSE_JSON))
    assert response.headers.get("x-request-id"), response.headers
    body: dict[str, Any] = response.json()
    assert body["errors"], body
    assert all(isinstance(error["message"], str) and error["message"] for error in body["errors"])
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body
    return body


# --- negotiation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, LEGACY_JSON),
        ("", LEGACY_JSON),
        ("*/*", LEGACY_JSON),
        ("application/*", LEGACY_JSON),
        ("application/json", LEGACY_JSON),
        (RESPONSE_JSON, RESPONSE_JSON),
        (f"{RESPONSE_JSON}, application/json;q=0.9", RESPONSE_JSON),
        (f"application/json, {RESPONSE_JSON}", RESPONSE_JSON),
        (f"{RESPONSE_JSON};q=0.5, application/json", LEGACY_JSON),
        ("text/html,application/xhtml+xml,*/*;q=0.8", LEGACY_JSON),
        ("text/plain", None),
        (f"{RESPONSE_JSON};q=0, text/plain", None),
        ("application/json;q=bogus", None),
    ],
)
def test_negotiation_picks_the_media_type(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


async def test_each_media_type_is_answered_in_kind(client: httpx.AsyncClient) -> None:
    for accept, content_type in [
        (STRICT, RESPONSE_JSON),
        (LEGACY, LEGACY_JSON),
        ({}, LEGACY_JSON),
        ({"Accept": "*/*"}, LEGACY_JSON),
    ]:
        response = await client.post("/graphql", json={"query": TYPENAME}, headers=accept)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(content_type)
        assert response.json() == {"data": {"__typename": "Query"}}


async def test_the_front_door_follows_the_negotiation_too(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """A read the compiled path answers before the router still speaks the asked media type."""
    query = "query Me { me { id email } }"
    for accept, content_type in [(STRICT, RESPONSE_JSON), (LEGACY, LEGACY_JSON)]:
        response = await client.post(
            "/graphql", json={"query": query}, headers={**accept, **bearer(admin_token)}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(content_type)
        assert response.headers["x-taskql-read-path"] == "compiled"
    refused = await client.post(
        "/graphql",
        json={"query": query},
        headers={"Accept": "text/plain", **bearer(admin_token)},
    )
    assert_error(refused, 406, "NOT_ACCEPTABLE")


# --- status codes of request errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ __typename", None, "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query ($id: ID!) { task(id: $id) { id } }", {"id": {"not": "an id"}}, "BAD_USER_INPUT"),
        ("query ($id: ID!) { task(id: $id) { id } }", {}, "BAD_USER_INPUT"),
        ("query A { __typename } query B { __typename }", None, "OPERATION_RESOLUTION_FAILURE"),
    ],
)
async def test_request_errors_are_400_without_data_for_graphql_response_json(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    payload = {"query": query, "variables": variables}
    strict = await client.post("/graphql", json=payload, headers=STRICT)
    body = assert_error(strict, 400, code)
    assert "data" not in body
    legacy = await client.post("/graphql", json=payload, headers=LEGACY)
    body = assert_error(legacy, 200, code)
    assert "data" not in body


async def test_an_unknown_operation_name_is_a_request_error(client: httpx.AsyncClient) -> None:
    payload = {"query": "query A { __typename }", "operationName": "B"}
    body = assert_error(
        await client.post("/graphql", json=payload, headers=STRICT),
        400,
        "OPERATION_RESOLUTION_FAILURE",
    )
    assert "'B'" in body["errors"][0]["message"]
    chosen = await client.post(
        "/graphql",
        json={"query": "query A { a: __typename } query B { b: __typename }", "operationName": "B"},
    )
    assert chosen.json() == {"data": {"b": "Query"}}


async def test_several_operations_need_a_name_on_every_read_path(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """Signed in, the compiled path is asked first; it must not pick the first operation."""
    two = "query A { me { id } } query B { me { email } }"
    response = await client.post(
        "/graphql", json={"query": two}, headers={**STRICT, **bearer(admin_token)}
    )
    assert_error(response, 400, "OPERATION_RESOLUTION_FAILURE")
    named = await client.post(
        "/graphql", json={"query": two, "operationName": "B"}, headers=bearer(admin_token)
    )
    assert named.json() == {"data": {"me": {"email": "admin@example.com"}}}


async def test_field_errors_keep_data_and_200(client: httpx.AsyncClient) -> None:
    """Execution started: `data` is there (null here) and the status is 200 in both modes."""
    for accept in (STRICT, LEGACY):
        response = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=accept)
        assert response.status_code == 200
        body = response.json()
        assert "data" in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert body["errors"][0]["path"] == ["me"]


# --- every refusal is JSON with a code and a request id ----------------------------------------

MUTATION = 'mutation { logout(input: {refreshToken: "x"}) }'

REFUSALS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "body is not JSON",
        {"method": "POST", "content": b'{"query": ', "headers": JSON_BODY},
        400,
        "BAD_REQUEST",
    ),
    ("empty body", {"method": "POST", "content": b"", "headers": JSON_BODY}, 400, "BAD_REQUEST"),
    ("body null", {"method": "POST", "content": b"null", "headers": JSON_BODY}, 400, "BAD_REQUEST"),
    ("body 42", {"method": "POST", "content": b"42", "headers": JSON_BODY}, 400, "BAD_REQUEST"),
    (
        "body not UTF-8",
        {"method": "POST", "content": b'{"query": "\xff"}', "headers": JSON_BODY},
        400,
        "BAD_REQUEST",
    ),
    (
        "body nested 50,000 deep",
        {"method": "POST", "content": b"[" * 50_000, "headers": JSON_BODY},
        400,
        "BAD_REQUEST",
    ),
    (
        "a batch of nested arrays",
        {"method": "POST", "content": b"[[[[[]]]]]", "headers": JSON_BODY},
        400,
        "BAD_REQUEST",
    ),
    ("no query", {"method": "POST", "json": {"qeury": TYPENAME}}, 400, "BAD_REQUEST"),
    ("query not a string", {"method": "POST", "json": {"query": 1}}, 400, "BAD_REQUEST"),
    (
        "variables not an object",
        {"method": "POST", "json": {"query": TYPENAME, "variables": "x"}},
        400,
        "BAD_REQUEST",
    ),
    (
        "operationName not a string",
        {"method": "POST", "json": {"query": TYPENAME, "operationName": ["a"]}},
        400,
        "BAD_REQUEST",
    ),
    (
        "extensions not an object",
        {"method": "POST", "json": {"query": TYPENAME, "extensions": 0}},
        400,
        "BAD_REQUEST",
    ),
    ("body a JSON string", {"method": "POST", "json": "query"}, 400, "BAD_REQUEST"),
    (
        "no content type",
        {"method": "POST", "content": json.dumps({"query": TYPENAME}).encode()},
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "text/plain body",
        {
            "method": "POST",
            "content": TYPENAME.encode(),
            "headers": {"Content-Type": "text/plain"},
        },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "a charset other than UTF-8",
        {
            "method": "POST",
            "content": json.dumps({"query": TYPENAME}).encode("utf-16"),
            "headers": {"Content-Type": "application/json; charset=utf-16"},
        },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    (
        "Accept allows no JSON",
        {"method": "POST", "json": {"query": TYPENAME}, "headers": {"Accept": "text/csv"}},
        406,
        "NOT_ACCEPTABLE",
    ),
    ("PUT", {"method": "PUT", "json": {"query": TYPENAME}}, 405, "METHOD_NOT_ALLOWED"),
    ("DELETE", {"method": "DELETE"}, 405, "METHOD_NOT_ALLOWED"),
    (
        "mutation over GET",
        {"method": "GET", "params": {"query": MUTATION}},
        405,
        "METHOD_NOT_ALLOWED",
    ),
    (
        "variables in a GET are not JSON",
        {"method": "GET", "params": {"query": TYPENAME, "variables": "{x"}},
        400,
        "BAD_REQUEST",
    ),
    (
        "subscription over HTTP",
        {
            "method": "POST",
            "json": {"query": 'subscription { importJobProgress(id: "1") { id } }'},
        },
        400,
        "SUBSCRIPTION_NEEDS_WEBSOCKET",
    ),
    (
        "unnamed subscription over GET",
        {
            "method": "GET",
            "params": {"query": 'subscription { importJobProgress(id: "1") { id } }'},
        },
        400,
        "SUBSCRIPTION_NEEDS_WEBSOCKET",
    ),
    (
        "an empty batch",
        {"method": "POST", "json": []},
        400,
        "BAD_REQUEST",
    ),
    (
        "a batch of eleven",
        {"method": "POST", "json": [{"query": TYPENAME}] * 11},
        400,
        "BATCH_TOO_LARGE",
    ),
    (
        "a persisted-query hash of the wrong shape",
        {
            "method": "POST",
            "json": {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}},
        },
        400,
        "BAD_REQUEST",
    ),
    (
        "multipart without the preflight header",
        {
            "method": "POST",
            "data": {"operations": "{}", "map": "{}"},
            "files": {"0": ("a.csv", b"x", "text/csv")},
        },
        400,
        "CSRF_PREVENTION",
    ),
    (
        "multipart whose operations are not JSON",
        {
            "method": "POST",
            "data": {"operations": "{", "map": "{}"},
            "files": {"0": ("a.csv", b"x", "text/csv")},
            "headers": {"GraphQL-Preflight": "1"},
        },
        400,
        "BAD_REQUEST",
    ),
    (
        "multipart whose map names a missing file",
        {
            "method": "POST",
            "data": {
                "operations": json.dumps({"query": TYPENAME, "variables": {"file": None}}),
                "map": json.dumps({"7": ["variables.file"]}),
            },
            "files": {"0": ("a.csv", b"x", "text/csv")},
            "headers": {"GraphQL-Preflight": "1"},
        },
        400,
        "BAD_REQUEST",
    ),
    (
        "multipart whose map points nowhere",
        {
            "method": "POST",
            "data": {
                "operations": json.dumps({"query": TYPENAME}),
                "map": json.dumps({"0": ["variables.file.deeper"]}),
            },
            "files": {"0": ("a.csv", b"x", "text/csv")},
            "headers": {"GraphQL-Preflight": "1"},
        },
        400,
        "BAD_REQUEST",
    ),
    (
        "multipart without operations",
        {
            "method": "POST",
            "data": {"map": "{}"},
            "files": {"0": ("a.csv", b"x", "text/csv")},
            "headers": {"GraphQL-Preflight": "1"},
        },
        400,
        "BAD_REQUEST",
    ),
]


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [pytest.param(args, status, code, id=name) for name, args, status, code in REFUSALS],
)
async def test_refusals_are_graphql_errors_with_codes(
    client: httpx.AsyncClient, request_args: dict[str, Any], status: int, code: str
) -> None:
    args = dict(request_args)
    method = args.pop("method")
    for accept in (STRICT, LEGACY):
        headers = {**accept, **args.get("headers", {})}
        response = await client.request(method, "/graphql", **{**args, "headers": headers})
        assert_error(response, status, code)


async def test_405_says_which_methods_are_allowed(client: httpx.AsyncClient) -> None:
    put = await client.put("/graphql", json={"query": TYPENAME})
    assert put.headers["allow"] == "GET, POST"
    get_mutation = await client.get("/graphql", params={"query": MUTATION})
    assert get_mutation.headers["allow"] == "POST"


async def test_an_oversized_body_and_url_are_coded(
    app_with: Callable[..., FastAPI],
) -> None:
    async with await client_for(app_with(max_request_bytes=2048)) as small:
        body = assert_error(
            await small.post("/graphql", json={"query": TYPENAME + " " * 4096}),
            413,
            "PAYLOAD_TOO_LARGE",
        )
        assert "2048" in body["errors"][0]["message"]
        assert_error(
            await small.get("/graphql", params={"query": TYPENAME + " " * 4096}),
            414,
            "PAYLOAD_TOO_LARGE",
        )


async def test_other_paths_and_rest_refusals_are_coded_json(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/no/such/path"), 404, "NOT_FOUND")
    assert_error(await client.post("/healthz"), 405, "METHOD_NOT_ALLOWED")
    assert_error(await client.get("/imports/1/errors.csv"), 401, "UNAUTHENTICATED")
    body = assert_error(
        await client.get("/imports/1/errors.csv?expires=soon&signature=x"), 400, "BAD_REQUEST"
    )
    assert "expires" in body["errors"][0]["message"]


async def test_graphiql_is_served_only_when_turned_on(
    client: httpx.AsyncClient, app_with: Callable[..., FastAPI]
) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    async with await client_for(app_with(graphiql=False)) as off:
        body = assert_error(
            await off.get("/graphql", headers={"Accept": "text/html"}), 404, "NOT_FOUND"
        )
        assert "GRAPHIQL" in body["errors"][0]["message"]
        # queries over GET still work there
        answer = await off.get("/graphql", params={"query": TYPENAME})
        assert answer.json() == {"data": {"__typename": "Query"}}


def test_production_turns_graphiql_off_by_default() -> None:
    assert not Settings(environment="production").graphiql_enabled
    assert Settings(environment="production", graphiql=True).graphiql_enabled
    assert Settings(environment="development").graphiql_enabled


# --- GET ------------------------------------------------------------------------------------


async def test_get_runs_queries_with_variables_and_varies_on_accept(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query T($name: String!) { __type(name: $name) { name } }",
            "variables": json.dumps({"name": "Task"}),
        },
        headers=STRICT,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": {"name": "Task"}}}
    assert "Accept" in response.headers["vary"]
    assert "Authorization" in response.headers["vary"]


# --- automatic persisted queries ------------------------------------------------------------


async def test_apq_miss_then_register_then_hash_only(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    query = "query MyEmail { me { email } }"
    digest = sha(query)
    headers = bearer(admin_token)
    for accept, miss_status in [(LEGACY, 200), (STRICT, 400)]:
        other = f"{query} # {accept['Accept']}"  # a text this test has not registered yet
        miss = await client.post(
            "/graphql", json={"extensions": apq(sha(other))}, headers={**accept, **headers}
        )
        body = assert_error(miss, miss_status, "PERSISTED_QUERY_NOT_FOUND")
        assert body["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = await client.post(
        "/graphql", json={"query": query, "extensions": apq(digest)}, headers=headers
    )
    assert registered.json() == {"data": {"me": {"email": "admin@example.com"}}}
    # Hash only, over POST (the compiled front door answers it) and over GET.
    by_post = await client.post("/graphql", json={"extensions": apq(digest)}, headers=headers)
    assert by_post.json() == registered.json()
    assert by_post.headers["x-taskql-read-path"] == "compiled"
    by_get = await client.get(
        "/graphql",
        params={"extensions": json.dumps(apq(digest)), "operationName": "MyEmail"},
        headers=headers,
    )
    assert by_get.status_code == 200
    assert by_get.json() == registered.json()


async def test_apq_refuses_a_hash_that_is_not_the_querys(client: httpx.AsyncClient) -> None:
    lie = {"query": TYPENAME, "extensions": apq(sha("{ me { id } }"))}
    assert_error(
        await client.post("/graphql", json=lie, headers=STRICT),
        400,
        "PERSISTED_QUERY_HASH_MISMATCH",
    )
    # ... and the lie was not stored under that hash
    miss = await client.post("/graphql", json={"extensions": apq(sha("{ me { id } }"))})
    assert_error(miss, 200, "PERSISTED_QUERY_NOT_FOUND")


async def test_apq_turned_off_says_not_supported(app_with: Callable[..., FastAPI]) -> None:
    async with await client_for(app_with(persisted_queries="off")) as off:
        body = assert_error(
            await off.post("/graphql", json={"extensions": apq(sha(TYPENAME))}),
            200,
            "PERSISTED_QUERY_NOT_SUPPORTED",
        )
        assert body["errors"][0]["message"] == "PersistedQueryNotSupported"
        plain = await off.post("/graphql", json={"query": TYPENAME})
        assert plain.json() == {"data": {"__typename": "Query"}}


async def test_allow_list_runs_only_known_operations(
    app_with: Callable[..., FastAPI], tmp_path: Path
) -> None:
    known = "query Known { __typename }"
    manifest = tmp_path / "operations.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": sha(known), "name": "Known", "type": "query", "body": known}],
            }
        )
    )
    app = app_with(persisted_queries="allowlist", persisted_query_file=manifest)
    async with await client_for(app) as locked:
        by_hash = await locked.post("/graphql", json={"extensions": apq(sha(known))})
        assert by_hash.json() == {"data": {"__typename": "Query"}}
        by_text = await locked.post("/graphql", json={"query": known})
        assert by_text.json() == {"data": {"__typename": "Query"}}
        assert_error(
            await locked.post("/graphql", json={"query": TYPENAME}, headers=STRICT),
            400,
            "PERSISTED_QUERY_NOT_ALLOWED",
        )
        assert_error(
            await locked.post(
                "/graphql", json={"query": TYPENAME, "extensions": apq(sha(TYPENAME))}
            ),
            200,
            "PERSISTED_QUERY_NOT_ALLOWED",
        )


def test_allow_list_file_is_checked_at_start(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({sha("{ a }"): "{ b }"}))
    with pytest.raises(SettingsError, match="not the SHA-256"):
        create_app(
            settings.model_copy(
                update={"persisted_queries": "allowlist", "persisted_query_file": bad}
            ),
            engine,
        )
    with pytest.raises(SettingsError, match="PERSISTED_QUERY_FILE"):
        create_app(settings.model_copy(update={"persisted_queries": "allowlist"}), engine)


def test_recent_queries_are_bounded_by_entries_and_characters() -> None:
    recent = RecentQueries(max_entries=3, max_chars=100)
    for n in range(5):
        recent.put(f"h{n}", f"q{n}")
    assert len(recent) == 3
    assert recent.get("h0") is None
    assert recent.get("h4") == "q4"
    recent.get("h2")  # used: kept over h3
    recent.put("big", "x" * 95)
    assert recent.get("h2") is None or recent.get("h3") is None
    assert recent.get("big") == "x" * 95
    recent.put("huge", "y" * 101)  # larger than the whole store: not kept
    assert recent.get("huge") is None


def test_persisted_query_resolution_rules() -> None:
    store = PersistedQueries("auto", max_entries=10)
    assert store.resolve(TYPENAME, None) == TYPENAME
    assert store.resolve(TYPENAME, {"some": "extension"}) == TYPENAME
    assert store.resolve(None, None) is None
    with pytest.raises(PersistedQueryError) as wrong_version:
        store.resolve(None, {"persistedQuery": {"version": 2, "sha256Hash": sha(TYPENAME)}})
    assert wrong_version.value.code == "BAD_REQUEST"
    upper = sha(TYPENAME).upper()
    assert store.resolve(TYPENAME, {"persistedQuery": {"version": 1, "sha256Hash": upper}})
    assert store.resolve(None, apq(sha(TYPENAME))) == TYPENAME
    assert query_hash("é") == hashlib.sha256("é".encode()).hexdigest()


# --- batching -------------------------------------------------------------------------------


async def test_a_batch_answers_each_operation_in_order(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    batch = [
        {"query": 'mutation { createProject(input: {name: "Batched"}) { project { name } } }'},
        {"query": "{ projects(first: 5) { totalCount edges { node { name } } } }"},
        {"query": "{ nope }"},
        {
            "query": "query Deep { me { projects { edges { node { tasks { edges { node {"
            " project { tasks { edges { node { id } } } } } } } } } } } }"
        },
        {"extensions": apq(sha("query NeverSeen { __typename }"))},
        {"qeury": "typo"},
    ]
    response = await client.post("/graphql", json=batch, headers={**STRICT, **bearer(admin_token)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(RESPONSE_JSON)
    answers = response.json()
    assert len(answers) == len(batch)
    assert answers[0] == {"data": {"createProject": {"project": {"name": "Batched"}}}}
    names = [e["node"]["name"] for e in answers[1]["data"]["projects"]["edges"]]
    assert "Batched" in names  # ran after the mutation
    codes = [[e["extensions"]["code"] for e in a.get("errors", [])] for a in answers[2:]]
    assert codes == [
        ["GRAPHQL_VALIDATION_FAILED"],
        ["QUERY_TOO_DEEP"],  # each operation meets the limits on its own
        ["PERSISTED_QUERY_NOT_FOUND"],
        ["BAD_REQUEST"],
    ]


async def test_batching_can_be_turned_off_and_bounded(app_with: Callable[..., FastAPI]) -> None:
    async with await client_for(app_with(batch_max_operations=0)) as off:
        body = assert_error(
            await off.post("/graphql", json=[{"query": TYPENAME}]), 400, "BATCHING_DISABLED"
        )
        assert "turned off" in body["errors"][0]["message"]
    async with await client_for(app_with(batch_max_operations=2)) as two:
        ok = await two.post("/graphql", json=[{"query": TYPENAME}] * 2)
        assert ok.json() == [{"data": {"__typename": "Query"}}] * 2
        body = assert_error(
            await two.post("/graphql", json=[{"query": TYPENAME}] * 3), 400, "BATCH_TOO_LARGE"
        )
        assert "at most 2" in body["errors"][0]["message"]


# --- CORS -----------------------------------------------------------------------------------

ORIGIN = "http://app.example"


async def test_cors_allows_what_apollo_urql_and_the_csrf_guard_send(
    app_with: Callable[..., FastAPI],
) -> None:
    async with await client_for(app_with(cors_origins=[ORIGIN])) as cors:
        preflight = await cors.options(
            "/graphql",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": (
                    "content-type, authorization, graphql-preflight, apollo-require-preflight, "
                    "apollographql-client-name, apollographql-client-version, x-request-id"
                ),
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        answer = await cors.post("/graphql", json={"query": TYPENAME}, headers={"Origin": ORIGIN})
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize(
    ("origin", "requested"),
    [("http://evil.example", "content-type"), (ORIGIN, "x-something-else")],
)
async def test_cors_refusals_are_json(
    app_with: Callable[..., FastAPI], origin: str, requested: str
) -> None:
    async with await client_for(app_with(cors_origins=[ORIGIN])) as cors:
        refused = await cors.options(
            "/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": requested,
            },
        )
        body = assert_error(refused, 400, "CORS_REFUSED")
        assert "CORS_ORIGINS" in body["errors"][0]["message"]


# --- absolute report links ------------------------------------------------------------------


async def test_public_base_url_makes_the_report_link_absolute(
    app_with: Callable[..., FastAPI],
    import_world: ImportWorld,
    settings: Settings,
    session_factory: Any,
    admin_token: str,
) -> None:
    base = "https://tasks.example.com/"
    async with await client_for(app_with(public_base_url=base)) as public:
        token = admin_token
        job_id = await upload_job(public, SEED_CSV.encode(), token=token)
        await run_queue(session_factory, settings)
        answer = await public.post(
            "/graphql",
            json={"query": IMPORT_JOB, "variables": {"id": job_id}},
            headers=bearer(token),
        )
        link = answer.json()["data"]["importJob"]["errorReportUrl"]
        assert link.startswith(f"https://tasks.example.com/imports/{job_id}/errors.csv?")
        # the path part of the link downloads the report
        path = link.removeprefix("https://tasks.example.com")
        report = await public.get(path)
        assert report.status_code == 200
        assert "999" in report.text


async def test_an_unhandled_exception_is_a_coded_json_500(
    app_with: Callable[..., FastAPI], caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with()

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    async with await client_for(app) as c:
        response = await c.get("/boom", headers={"X-Request-ID": "trace-me-1"})
    body = assert_error(response, 500, "INTERNAL_SERVER_ERROR")
    assert body["errors"][0]["extensions"]["requestId"] == "trace-me-1"
    assert response.headers["x-request-id"] == "trace-me-1"
    assert "a bug" not in response.text
    assert any("trace-me-1" in record.getMessage() for record in caplog.records)


# --- the fast lane (taskql.app.TaskQLApp) ---------------------------------------------------

ME = "{ me { email role } }"
READ_PATH = "x-taskql-read-path"


async def test_the_fast_lane_answers_reads_with_one_request_id(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    """A compiled read (the lane), a mutation and a GET (the whole app) each carry exactly one
    `X-Request-ID`, and a caller's own id is echoed by the lane as by the app."""
    auth = bearer(admin_token)
    read = await client.post("/graphql", json={"query": ME}, headers=auth)
    assert read.json() == {"data": {"me": {"email": "admin@example.com", "role": "ADMIN"}}}
    assert read.headers[READ_PATH] == "compiled"
    mutation = await client.post(
        "/graphql",
        json={"query": 'mutation { createProject(input: {name: "Lane"}) { project { name } } }'},
        headers=auth,
    )
    assert mutation.json()["data"]["createProject"]["project"]["name"] == "Lane"
    got = await client.get("/graphql", params={"query": ME}, headers=auth)
    assert got.json()["data"]["me"]["role"] == "ADMIN"
    for answer in (read, mutation, got):
        assert len(answer.headers.get_list("x-request-id")) == 1, answer.headers
    mine = await client.post(
        "/graphql", json={"query": ME}, headers={**auth, "X-Request-ID": "lane-42"}
    )
    assert mine.headers[READ_PATH] == "compiled"
    assert mine.headers.get_list("x-request-id") == ["lane-42"]


async def test_the_fast_lane_hands_on_bodies_over_the_limit(
    app_with: Callable[..., FastAPI], admin_token: str
) -> None:
    """With a token (the lane's requests), a body over MAX_REQUEST_BYTES is refused with 413
    whether its length is declared or it comes in chunks without one."""
    query = "{ me { " + "email " * 400 + "} }"
    async with await client_for(app_with(max_request_bytes=1024)) as small:
        declared = await small.post("/graphql", json={"query": query}, headers=bearer(admin_token))
        assert_error(declared, 413, "PAYLOAD_TOO_LARGE")

        async def chunks() -> Any:
            body = json.dumps({"query": query}).encode()
            for start in range(0, len(body), 300):
                yield body[start : start + 300]

        chunked = await small.post(
            "/graphql", content=chunks(), headers={**JSON_BODY, **bearer(admin_token)}
        )
        assert "content-length" not in chunked.request.headers
        assert_error(chunked, 413, "PAYLOAD_TOO_LARGE")
        fits = await small.post("/graphql", json={"query": ME}, headers=bearer(admin_token))
        assert fits.headers[READ_PATH] == "compiled"


async def test_cross_origin_reads_get_their_cors_headers(
    app_with: Callable[..., FastAPI], admin_token: str
) -> None:
    """With CORS on, a read from another origin is answered with the CORS headers (the lane
    steps aside for the CORS middleware) and still compiled."""
    async with await client_for(app_with(cors_origins=[ORIGIN])) as cors:
        answer = await cors.post(
            "/graphql", json={"query": ME}, headers={"Origin": ORIGIN, **bearer(admin_token)}
        )
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert answer.headers[READ_PATH] == "compiled"
        assert answer.json()["data"]["me"]["role"] == "ADMIN"
        same = await cors.post("/graphql", json={"query": ME}, headers=bearer(admin_token))
        assert "access-control-allow-origin" not in same.headers
        assert same.headers[READ_PATH] == "compiled"


async def test_an_unhandled_exception_behind_the_lane_is_a_coded_json_500(
    client: httpx.AsyncClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the lane hands on to the whole app (a mutation) that meets a bug there gets
    the coded JSON 500 with its id, once, not Starlette's plain-text page."""

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug behind the lane")

    monkeypatch.setattr(TaskQLRouter, "run", broken)
    response = await client.post(
        "/graphql",
        json={"query": 'mutation { createProject(input: {name: "X"}) { project { id } } }'},
        headers={**bearer(admin_token), "X-Request-ID": "lane-bug-7"},
    )
    body = assert_error(response, 500, "INTERNAL_SERVER_ERROR")
    assert body["errors"][0]["extensions"]["requestId"] == "lane-bug-7"
    assert response.headers.get_list("x-request-id") == ["lane-bug-7"]
    assert "a bug" not in response.text
