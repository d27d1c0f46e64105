"""Malformed request bodies against a real `taskql serve` in production mode: each answers a
coded JSON 400 with a request id, and the keep-alive connection carries the next request."""

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.database import sqlite_url
from tests.support.processes import process_env, run_taskql, taskql_server

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
HOSTILE: list[tuple[str, bytes, dict[str, str]]] = [
    ("null", b"null", JSON),
    ("a number", b"42", JSON),
    ("a string", b'"{ __typename }"', JSON),
    ("invalid UTF-8", b'{"query": "{ __typename \xff }"}', JSON),
    ("a lone surrogate escape", b'{"query": "\\ud800"}', JSON),
    ("50,000 nested arrays", b"[" * 50_000, JSON),
    ("50,000 nested objects", b'{"a":' * 50_000, JSON),
    ("nested variables", b'{"query": "{ __typename }", "variables": ' + b"[" * 5000 + b"}", JSON),
    ("truncated JSON", b'{"query": "{ __typ', JSON),
    ("query is an object", b'{"query": {"a": 1}}', JSON),
    ("variables is a list", b'{"query": "{ __typename }", "variables": [1]}', JSON),
    ("operationName is a number", b'{"query": "{ __typename }", "operationName": 1}', JSON),
    ("extensions is a string", b'{"query": "{ __typename }", "extensions": "x"}', JSON),
    ("an array of numbers", b"[1, 2, 3]", JSON),
    ("an empty body", b"", JSON),
    (
        "form-encoded",
        b"query=%7B__typename%7D",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    ("no content type", b'{"query": "{ __typename }"}', {}),
]


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hostile")
    env = process_env(
        sqlite_url(tmp / "hostile.db"),
        tmp / "uploads",
        ENVIRONMENT="production",
        LOG_LEVEL="WARNING",
    )
    migrated = run_taskql("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    with taskql_server(env, tmp / "server.log") as url:
        yield url


@pytest.mark.parametrize(
    ("body", "headers"), [pytest.param(b, h, id=name) for name, b, h in HOSTILE]
)
def test_a_malformed_body_is_a_coded_400_and_the_connection_lives_on(
    production_server: str, body: bytes, headers: dict[str, str]
) -> None:
    where = urlsplit(production_server)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    try:
        connection.request("POST", "/graphql", body=body, headers=headers)
        socket_before = connection.sock
        refused = connection.getresponse()
        payload = refused.read()
        assert refused.status in (400, 415), (refused.status, payload)
        assert refused.getheader("content-type", "").startswith("application/json")
        assert refused.getheader("x-request-id")
        error = json.loads(payload)["errors"][0]
        assert error["extensions"]["code"] in ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE"), error
        assert not refused.will_close, "the server closed the keep-alive connection"

        connection.request("POST", "/graphql", body=b'{"query": "{ __typename }"}', headers=JSON)
        assert connection.sock is socket_before  # the same connection carried it
        answer = connection.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read()) == {"data": {"__typename": "Query"}}
    finally:
        connection.close()
