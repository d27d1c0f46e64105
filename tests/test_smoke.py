"""The server answers, serves GraphiQL, and reports health."""

import httpx

from tests.support.graphql import Gql


async def test_typename(gql: Gql) -> None:
    assert (await gql("{ __typename }")).ok() == {"__typename": "Query"}


async def test_graphiql_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok"}
