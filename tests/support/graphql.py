"""Posting GraphQL documents over the test client and reading the answer."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx


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


async def post_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> GqlResult:
    """POST a document to /graphql; a body that is not JSON comes back as {"raw": text}."""
    all_headers = {**(headers or {}), **bearer(token)}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers
    )
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {"raw": response.text}
    )
    return GqlResult(response.status_code, body)
