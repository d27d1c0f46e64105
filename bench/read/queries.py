"""The benchmark's queries, and how many SQL statements each costs the real app."""

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event

from auth.tokens import TokenCodec
from bench.read.seed import Seeded
from core.settings import Settings
from db.engine import make_engine
from taskql.app import create_app

TASKS_50 = (
    "{ tasks(first: 50) { edges { node { id title status project { name } assignee { email } } }"
    " totalCount } }"
)
MEMBER_PROJECTS = (
    "{ projects { edges { node { id name"
    " members { edges { node { id email fullName } } totalCount }"
    " taskCounts { total pending inProgress done } } } totalCount } }"
)
TASK_BY_ID = (
    "query Task($id: Int!) { task(id: $id) { id title status description"
    " project { name } assignee { email } } }"
)
ME = "{ me { id email } }"


@dataclass(frozen=True)
class Query:
    """One benchmarked request: its document, variables, and whose token it carries."""

    name: str
    document: str
    caller: str  # "admin" or "member"
    variables: dict[str, Any]

    def body(self) -> bytes:
        return json.dumps({"query": self.document, "variables": self.variables}).encode()


def queries(seeded: Seeded) -> dict[str, Query]:
    """Every query the benchmark knows, by name."""
    return {
        "tasks50": Query("tasks50", TASKS_50, "admin", {}),
        "projects": Query("projects", MEMBER_PROJECTS, "member", {}),
        "task": Query("task", TASK_BY_ID, "member", {"id": seeded.task_id}),
        "me": Query("me", ME, "admin", {}),
    }


def tokens(secret: str, seeded: Seeded) -> dict[str, str]:
    """Access tokens for the admin and the member, minted with the server's secret."""
    codec = TokenCodec(
        secret=secret,
        algorithm="HS256",
        access_ttl=timedelta(hours=2),
        refresh_ttl=timedelta(days=1),
    )
    return {
        "admin": codec.encode(codec.issue(seeded.admin_id, "access")),
        "member": codec.encode(codec.issue(seeded.member_id, "access")),
    }


async def statements_per_request(
    settings: Settings, selected: list[Query], caller_tokens: dict[str, str]
) -> dict[str, tuple[int, Any]]:
    """Run each query through the real app in-process (once warm), counting SQL statements.

    Returns, per query name, the statement count and the response's data (for a sanity check).
    """
    engine = make_engine(settings.database_url)
    count = 0

    def on_statement(*_: Any) -> None:
        nonlocal count
        count += 1

    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    app = create_app(settings, engine)
    counts: dict[str, tuple[int, Any]] = {}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for query in selected:
                headers = {
                    "Authorization": f"Bearer {caller_tokens[query.caller]}",
                    "Content-Type": "application/json",
                }
                await client.post("/graphql", content=query.body(), headers=headers)
                count = 0
                response = await client.post("/graphql", content=query.body(), headers=headers)
                body = response.json()
                if response.status_code != 200 or body.get("errors"):
                    raise SystemExit(f"{query.name} failed: {response.status_code} {body}")
                counts[query.name] = (count, body["data"])
    finally:
        await engine.dispose()
    return counts
