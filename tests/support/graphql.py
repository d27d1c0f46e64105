"""Posting GraphQL documents over the test client and reading the answer."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

READ_PATH_HEADER = "X-TaskQL-Read-Path"
FAILED_STATEMENT = "executor; the compiled read failed"  # graph/compiled/entry.py


@dataclass
class GqlResult:
    status_code: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def codes(self) -> list[str | None]:
        return [e.get("extensions", {}).get("code") for e in self.errors]

    def ok(self) -> Any:
        """The data, after asserting there were no errors."""
        assert self.status_code == 200, self.body
        assert not self.errors, self.errors
        return self.data


Gql = Callable[..., Awaitable[GqlResult]]
"""`gql(query, variables=None, *, token=None, headers=None)`, bound to the test's client."""


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header for `token`; none without one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def is_read(query: str) -> bool:
    """Whether the document holds queries only (no mutation or subscription)."""
    try:
        document = parse(query)
    except GraphQLError:
        return True
    return all(
        d.operation == OperationType.QUERY
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, headers: dict[str, str]
) -> tuple[GqlResult, str]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {"raw": response.text}
    )
    return GqlResult(response.status_code, body), response.headers.get(READ_PATH_HEADER, "")


def assert_same_answer(answer: GqlResult, path: str, reference: GqlResult, query: str) -> None:
    """The server's answer equals the executor's. A compiled answer must match to the byte's
    meaning; when both ran the executor, only what it fixes is compared (its root fields run
    concurrently, so which of several errors it reports can vary). A compiled statement that
    failed (a bug in the compiler: the executor answered instead) fails the test."""
    assert path != FAILED_STATEMENT, (query, "the compiled statement failed: see the log")
    if path == "compiled":
        assert (answer.status_code, answer.body) == (reference.status_code, reference.body), (
            query,
            answer.body,
            reference.body,
        )
        return
    assert answer.status_code == reference.status_code, query
    assert answer.data == reference.data, query
    assert bool(answer.errors) == bool(reference.errors), query


async def post_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    reference: httpx.AsyncClient | None = None,
) -> GqlResult:
    """POST a document to /graphql; a body that is not JSON comes back as {"raw": text}.

    With a `reference` client (an app without compiled reads), a read is sent there too and
    the two answers must agree: every read a test sends is a differential test.
    """
    all_headers = {**(headers or {}), **bearer(token)}
    answer, path = await _post(client, query, variables, all_headers)
    if reference is not None and is_read(query):
        expected, _ = await _post(reference, query, variables, all_headers)
        assert_same_answer(answer, path, expected, query)
    return answer
