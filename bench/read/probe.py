"""The real app in-process: each query's answer and SQL statement count, and the `deep` cursor."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event

from bench.read.queries import DEEP_WALK, Query, queries
from bench.read.seed import Seeded
from core.settings import Settings
from db.direct import watch_statements
from db.engine import make_engine
from taskql.app import create_app


@dataclass(frozen=True)
class Answer:
    statements: int  # SQL statements the app ran for one warm request
    data: Any


@dataclass
class App:
    client: httpx.AsyncClient
    tokens: dict[str, str]
    statements: int = 0

    def count_statement(self, *_: Any) -> None:
        self.statements += 1

    async def post(self, query: Query) -> Any:
        """The query's data; exit on any error."""
        headers = {"Content-Type": "application/json"}
        if query.caller is not None:
            headers["Authorization"] = f"Bearer {self.tokens[query.caller]}"
        response = await self.client.post("/graphql", content=query.body(), headers=headers)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SystemExit(f"{query.name} failed: {response.status_code} {body}")
        return body["data"]

    async def answer(self, query: Query) -> Answer:
        """Once to warm up, then once counting statements."""
        await self.post(query)
        self.statements = 0
        data = await self.post(query)
        return Answer(self.statements, data)

    async def deep_cursor(self, seeded: Seeded) -> str:
        """Page through the `deep` ordering, as the admin, to the row its page starts after."""
        after: str | None = None
        seen = 0
        while True:
            walk = Query("walk", DEEP_WALK, "admin", {"after": after})
            page = (await self.post(walk))["tasks"]
            for edge in page["edges"]:
                seen += 1
                if edge["node"]["id"] == seeded.deep_task_id:
                    if seen != seeded.deep_position:
                        raise SystemExit(f"deep: task found at {seen}, not {seeded.deep_position}")
                    cursor: str = edge["cursor"]
                    return cursor
            if not page["pageInfo"]["hasNextPage"]:
                raise SystemExit(f"deep: task {seeded.deep_task_id} not in the list")
            after = page["edges"][-1]["cursor"]


@asynccontextmanager
async def in_process(settings: Settings, caller_tokens: dict[str, str]) -> AsyncIterator[App]:
    """The app over its own engine, counting statements through `before_cursor_execute` and,
    for the compiled reads run on the driver, `db.direct.watch_statements`."""
    engine = make_engine(settings.database_url)
    transport = httpx.ASGITransport(app=create_app(settings, engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            app = App(client, caller_tokens)
            event.listen(engine.sync_engine, "before_cursor_execute", app.count_statement)
            watch_statements(engine, app.count_statement)
            yield app
    finally:
        await engine.dispose()


async def probe(
    settings: Settings, seeded: Seeded, caller_tokens: dict[str, str], names: list[str]
) -> tuple[list[Query], dict[str, Answer]]:
    """The selected queries (with the `deep` cursor found), and their answers in-process."""
    async with in_process(settings, caller_tokens) as app:
        cursor = await app.deep_cursor(seeded) if "deep" in names else None
        known = queries(seeded, cursor)
        selected = [known[name] for name in names]
        answers = {query.name: await app.answer(query) for query in selected}
    return selected, answers
