"""LOG_FORMAT=json: one JSON object per line with the request's id, user and operation; an
access line per GraphQL operation, a warning for slow ones; secrets never written, even at
DEBUG through a mix of logins, password changes, bearer tokens and errors."""

import io
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logs import REDACTED, JsonFormatter
from core.settings import Settings
from db.models import User
from graph import observe
from taskql.app import create_app
from tests.support.accounts import DEFAULT_PASSWORD
from tests.support.graphql import bearer
from tests.support.logscan import leaks_in

LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }"
CHANGE = """
mutation Change($input: ChangePasswordInput!) { changePassword(input: $input) { user { id } } }
"""
ME = "query Me { me { id } }"
NEW_PASSWORD = "a brand new password 42"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of the test, at DEBUG, as the server writes them with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def logged(
    settings: Settings, engine: AsyncEngine, json_lines: io.StringIO
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"log_format": "json"}), engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    observe.configure(Settings().slow_operation_ms)


async def post(client: httpx.AsyncClient, query: str, token: str | None, **variables: Any) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={**bearer(token), "X-Request-ID": "logged-1"},
    )
    return response.json()


async def test_json_lines_carry_the_request_and_hide_secrets(
    logged: httpx.AsyncClient, admin: User, admin_token: str, json_lines: io.StringIO
) -> None:
    credentials = {"email": admin.email, "password": DEFAULT_PASSWORD}
    token = (await post(logged, LOGIN, None, input=credentials))["data"]["login"]["accessToken"]
    wrong = {"email": admin.email, "password": "not the password"}
    assert (await post(logged, LOGIN, None, input=wrong))["errors"]
    assert (await post(logged, ME, token))["data"]["me"]["id"] == admin.id
    change = {"currentPassword": DEFAULT_PASSWORD, "newPassword": NEW_PASSWORD}
    assert "errors" not in await post(logged, CHANGE, admin_token, input=change)
    assert (await post(logged, ME, token))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    text = json_lines.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert lines
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)
    access = [line for line in lines if line["logger"] == "taskql.access"]
    assert [(a["operation"], a["outcome"], a["code"]) for a in access] == [
        ("Login", "ok", None),
        ("Login", "error", "UNAUTHENTICATED"),
        ("Me", "ok", None),
        ("Change", "ok", None),
        ("Me", "error", "UNAUTHENTICATED"),
    ]
    for line in access:
        assert line["request_id"] == "logged-1"
        assert line["duration_ms"] >= 0
    assert access[2]["user_id"] == admin.id
    assert access[2]["read_path"] == "compiled"
    assert access[3]["user_id"] == admin.id
    secrets = (DEFAULT_PASSWORD, NEW_PASSWORD, "not the password", token, admin_token)
    assert not [line for line in text.splitlines() if leaks_in(line, secrets)]


def test_slow_operations_are_warned_of(json_lines: io.StringIO) -> None:
    observe.configure(50)
    try:
        observe.finished("Quick", "query", observe.OK, "", 0.01, "compiled")
        observe.finished("Slow", "mutation", observe.ERROR, "NOT_FOUND", 0.2, "executor")
    finally:
        observe.configure(Settings().slow_operation_ms)
    lines = [orjson.loads(line) for line in json_lines.getvalue().splitlines()]
    [slow] = [line for line in lines if line["logger"] == "taskql.slow"]
    assert slow["level"] == "WARNING"
    assert "Slow" in slow["message"]
    assert slow["duration_ms"] == 200.0
    assert slow["code"] == "NOT_FOUND"


def test_secret_keys_are_redacted_wherever_they_appear(json_lines: io.StringIO) -> None:
    logging.getLogger("taskql.test").info(
        "calling with Authorization: Bearer abc.def.ghi and eyJhbGciOi.eyJzdWIiOi.sig",
        extra={
            "variables": {"input": {"password": "hunter22"}},
            "payload": {"input": {"newPassword": "x", "refreshToken": "y", "title": "kept"}},
            "authorization": "Bearer abc",
        },
    )
    [line] = [orjson.loads(text) for text in json_lines.getvalue().splitlines()]
    assert line["variables"] == REDACTED
    assert line["authorization"] == REDACTED
    assert line["payload"] == {
        "input": {"newPassword": REDACTED, "refreshToken": REDACTED, "title": "kept"}
    }
    assert "abc.def.ghi" not in line["message"]
    assert "eyJ" not in line["message"]
