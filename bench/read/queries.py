"""The benchmark's queries against TaskQL, and the tokens they carry."""

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from auth.tokens import TokenCodec
from bench.read.seed import Seeded

TASK_FIELDS = "id title status project { name } assignee { email }"
TASKS_50 = f"{{ tasks(first: 50) {{ edges {{ node {{ {TASK_FIELDS} }} }} }} }}"
TASKS_50_TOTAL = f"{{ tasks(first: 50) {{ edges {{ node {{ {TASK_FIELDS} }} }} totalCount }} }}"
MEMBER_PROJECTS = (
    "{ projects { edges { node { id name"
    " members { edges { node { id email fullName } } totalCount }"
    " taskCounts { total pending inProgress done } } } totalCount } }"
)
TASK_BY_ID = (
    "query Task($id: Int!) { task(id: $id) { id title status description"
    " project { name } assignee { email } } }"
)
DEEP = (
    "query Deep($after: String!) { tasks(filter: {status: [IN_PROGRESS]},"
    " orderBy: {field: CREATED_AT, direction: ASC}, first: 50, after: $after)"
    f" {{ edges {{ node {{ {TASK_FIELDS} }} }} }} }}"
)
# A USER's `tasks` lists only the tasks assigned to them.
MINE = TASKS_50
ME = "{ me { id email } }"
# Walks the `deep` ordering to find the cursor of the row the page starts after.
DEEP_WALK = (
    "query Walk($after: String) { tasks(filter: {status: [IN_PROGRESS]},"
    " orderBy: {field: CREATED_AT, direction: ASC}, first: 100, after: $after)"
    " { edges { cursor node { id } } pageInfo { hasNextPage } } }"
)

NAMES = ("tasks50", "tasks50_total", "projects", "task", "deep", "mine", "me")


@dataclass(frozen=True)
class Query:
    """One benchmarked request: its document, variables, and whose token it carries (if any)."""

    name: str
    document: str
    caller: str | None  # "admin", "member", or None for no Authorization header
    variables: dict[str, Any] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps({"query": self.document, "variables": self.variables}).encode()


def queries(seeded: Seeded, deep_cursor: str | None) -> dict[str, Query]:
    """Every TaskQL query the benchmark knows, by name (`deep` only with its cursor)."""
    known = {
        "tasks50": Query("tasks50", TASKS_50, "admin"),
        "tasks50_total": Query("tasks50_total", TASKS_50_TOTAL, "admin"),
        "projects": Query("projects", MEMBER_PROJECTS, "member"),
        "task": Query("task", TASK_BY_ID, "member", {"id": seeded.task_id}),
        "mine": Query("mine", MINE, "member"),
        "me": Query("me", ME, "admin"),
    }
    if deep_cursor is not None:
        known["deep"] = Query("deep", DEEP, "admin", {"after": deep_cursor})
    return known


def tokens(secret: str, seeded: Seeded) -> dict[str, str]:
    """Access tokens for the admin and the member, minted with the server's secret."""
    codec = TokenCodec(
        secret=secret,
        algorithm="HS256",
        access_ttl=timedelta(hours=2),
        refresh_ttl=timedelta(days=1),
    )
    return {
        "admin": codec.encode(codec.issue(seeded.admin_id, "access", version=0)),
        "member": codec.encode(codec.issue(seeded.member_id, "access", version=0)),
    }


def leaves(value: Any) -> list[str]:
    """Every scalar in a GraphQL answer, in order of appearance, as JSON text.

    Two answers of different shapes (TaskQL's `edges { node }`, PostGraphile's `nodes`, other
    field names) carry the same data exactly when their leaves are the same.
    """
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [json.dumps(value)]
