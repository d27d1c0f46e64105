"""Generated GraphQL operations (schemathesis, on hypothesis-graphql) against a real `taskql
serve`, as an admin and as a USER: whatever the arguments, no answer is a server error.

A server error is an HTTP 5xx, or a GraphQL error coded INTERNAL_SERVER_ERROR (the code TaskQL
gives only to bugs). The number of examples per field is bounded (FUZZ_EXAMPLES, 25 by
default) so that the run fits CI.
"""

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok
from sqlalchemy.engine import make_url

from tests.support.database import (
    postgres_url,
    recreate_postgres_database,
    scratch_postgres_url,
    sqlite_url,
)
from tests.support.processes import process_env, taskql_server

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
ADMIN_EMAIL = "fuzz-admin@example.com"
ADMIN_PASSWORD = "fuzzing admin password"
USER_PASSWORD = "fuzzing user password"

schemathesis.graphql.scalar(
    "DateTime",
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(lambda moment: graphql.StringValueNode(value=moment.isoformat())),
)
schemathesis.graphql.scalar("Upload", st.just(graphql.NullValueNode()))


@dataclass(frozen=True)
class Fuzzed:
    url: str
    tokens: dict[str, str]


def _post(client: httpx.Client, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    answer = body.json()
    assert "errors" not in answer, answer
    return answer["data"]


def _login(client: httpx.Client, email: str, password: str) -> str:
    login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
    data = _post(client, login, {"i": {"email": email, "password": password}})
    token: str = data["login"]["accessToken"]
    return token


@contextmanager
def fuzz_database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh database for the fuzzed server: a SQLite file, or a scratch PostgreSQL one."""
    if backend == "sqlite":
        yield sqlite_url(tmp / "fuzz.db")
        return
    url = scratch_postgres_url("fuzz")
    admin_url, name = postgres_url(), make_url(url).database
    assert admin_url is not None
    assert name is not None
    asyncio.run(recreate_postgres_database(admin_url, name, create=True))
    try:
        yield url
    finally:
        asyncio.run(recreate_postgres_database(admin_url, name, create=False))


@pytest.fixture
def fuzzed(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A server with an admin, a USER, a project they share and a task assigned to the USER.

    One per test: the admin's generated mutations may demote or deactivate the USER."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with fuzz_database(backend, tmp) as database_url, served(database_url, tmp) as fuzzed:
        yield fuzzed


@contextmanager
def served(database_url: str, tmp: Path) -> Iterator[Fuzzed]:
    env = process_env(
        database_url,
        tmp / "uploads",
        LOG_LEVEL="WARNING",
        TASKQL_ADMIN_EMAIL=ADMIN_EMAIL,
        TASKQL_ADMIN_PASSWORD=ADMIN_PASSWORD,
        RUN_IMPORT_WORKER="false",
    )
    with (
        taskql_server(env, tmp / "server.log") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        admin = _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        register = "mutation($i: RegisterInput!) { register(input: $i) { id } }"
        user = {"email": "fuzz-user@example.com", "password": USER_PASSWORD, "fullName": "Fuzz"}
        user_id = _post(client, register, {"i": user})["register"]["id"]
        project = _post(
            client,
            'mutation { createProject(input: {name: "Fuzz"}) { project { id } } }',
            {},
            admin,
        )["createProject"]["project"]["id"]
        _post(
            client,
            "mutation($p: Int!, $u: Int!) { addProjectMember(input: {projectId: $p, userId: $u})"
            " { project { id } } }",
            {"p": project, "u": user_id},
            admin,
        )
        _post(
            client,
            'mutation($p: Int!, $u: Int) { createTask(input: {projectId: $p, title: "Fuzz",'
            " assigneeId: $u}) { task { id } } }",
            {"p": project, "u": user_id},
            admin,
        )
        tokens = {"admin": admin, "user": _login(client, user["email"], USER_PASSWORD)}
        yield Fuzzed(url, tokens)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def server_errors(fuzzed: Fuzzed, role: str) -> list[str]:
    """Run every query and mutation field's generated cases as `role`; the failures found."""
    schema = schemathesis.graphql.from_url(f"{fuzzed.url}/graphql")
    headers = {"Authorization": f"Bearer {fuzzed.tokens[role]}"}
    failures: list[str] = []
    calls: list[int] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) > 20, [op.label for op in operations]  # every root field is there
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ_SETTINGS
        def no_server_error(case: Any) -> None:
            response = case.call(headers=headers, timeout=30)
            calls.append(response.status_code)
            body = response.json()
            codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
            if response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in codes:
                failures.append(f"{response.status_code} {case.body} -> {response.text[:500]}")

        no_server_error()
    assert len(calls) >= 5 * len(operations)  # the cases really were sent
    return failures


@pytest.mark.parametrize("role", ["admin", "user"])
def test_generated_operations_meet_no_server_error(fuzzed: Fuzzed, role: str) -> None:
    assert server_errors(fuzzed, role) == []
