"""Seed a migrated database with users, projects, memberships and tasks, in bulk.

PostgreSQL gets COPY (asyncpg's binary copy); SQLite gets executemany in one transaction.
Ids are assigned here (1..N), so the benchmark knows them without asking.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from passlib.hash import bcrypt
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import Role, TaskStatus

PASSWORD = "bench password 123"
PROJECTS_PER_MEMBER = 5
UNASSIGNED_SHARE = 0.1


@dataclass(frozen=True)
class Shape:
    users: int = 1_000
    projects: int = 200
    tasks: int = 100_000


@dataclass(frozen=True)
class Seeded:
    """What the benchmark needs to know about the seeded data."""

    admin_id: int
    member_id: int
    task_id: int
    memberships: int


Row = tuple[Any, ...]


def _users(shape: Shape, now: datetime) -> list[Row]:
    hashed = bcrypt.using(rounds=4).hash(PASSWORD)
    rows: list[Row] = []
    for uid in range(1, shape.users + 1):
        role = Role.ADMIN.value if uid == 1 else Role.USER.value
        email = "admin@bench.example" if uid == 1 else f"user{uid}@bench.example"
        rows.append((uid, email, f"Bench User {uid}", hashed, role, True, now, now))
    return rows


def _projects(shape: Shape, now: datetime) -> list[Row]:
    return [
        (pid, f"Project {pid}", f"Benchmark project number {pid}.", 1, now, now)
        for pid in range(1, shape.projects + 1)
    ]


def _memberships(shape: Shape, rng: random.Random, now: datetime) -> dict[int, list[int]]:
    """Members per project: every user (but the admin) joins PROJECTS_PER_MEMBER projects."""
    members: dict[int, list[int]] = {pid: [] for pid in range(1, shape.projects + 1)}
    for uid in range(2, shape.users + 1):
        for pid in rng.sample(range(1, shape.projects + 1), PROJECTS_PER_MEMBER):
            members[pid].append(uid)
    return members


def _tasks(
    shape: Shape, members: dict[int, list[int]], rng: random.Random, now: datetime
) -> list[Row]:
    statuses = [s.value for s in TaskStatus]
    rows: list[Row] = []
    for tid in range(1, shape.tasks + 1):
        pid = (tid - 1) % shape.projects + 1
        candidates = members[pid]
        assignee = (
            None if not candidates or rng.random() < UNASSIGNED_SHARE else rng.choice(candidates)
        )
        stamp = now - timedelta(seconds=shape.tasks - tid)
        title = f"Task {tid}: {rng.choice(TITLE_WORDS)} the {rng.choice(TITLE_NOUNS)}"
        description = f"Details of task {tid}."
        status = statuses[tid % len(statuses)]
        rows.append((tid, pid, title, description, status, assignee, 1, stamp, stamp))
    return rows


TITLE_WORDS = ("Review", "Fix", "Write", "Plan", "Ship", "Test", "Refactor", "Measure")
TITLE_NOUNS = ("parser", "report", "release", "docs", "schema", "importer", "cache", "login")

COLUMNS = {
    "user": (
        "id",
        "email",
        "full_name",
        "hashed_password",
        "role",
        "is_active",
        "created_at",
        "updated_at",
    ),
    "project": ("id", "name", "description", "created_by", "created_at", "updated_at"),
    "project_member": ("project_id", "user_id", "added_at"),
    "task": (
        "id",
        "project_id",
        "title",
        "description",
        "status",
        "assigned_to",
        "created_by",
        "created_at",
        "updated_at",
    ),
}


async def _copy(conn: AsyncConnection, table: str, rows: Sequence[Row]) -> None:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table, records=rows, columns=list(COLUMNS[table]))


async def _insert_many(conn: AsyncConnection, table: str, rows: Sequence[Row]) -> None:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # aiosqlite.Connection
    columns = COLUMNS[table]
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    # Naive UTC strings, as UTCDateTime stores them on SQLite.
    plain = [tuple(_sqlite_value(v) for v in row) for row in rows]
    await driver.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', plain)  # noqa: S608


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


async def seed(engine: AsyncEngine, shape: Shape, *, rng_seed: int = 7) -> Seeded:
    """Fill an empty, migrated database. Deterministic for a given seed."""
    rng = random.Random(rng_seed)
    now = datetime.now(UTC).replace(microsecond=0)
    members = _memberships(shape, rng, now)
    member_rows = [(pid, uid, now) for pid, uids in members.items() for uid in uids]
    tasks = _tasks(shape, members, rng, now)
    tables: list[tuple[str, Sequence[Row]]] = [
        ("user", _users(shape, now)),
        ("project", _projects(shape, now)),
        ("project_member", member_rows),
        ("task", tasks),
    ]
    postgres = engine.dialect.name == "postgresql"
    max_id = {"user": shape.users, "project": shape.projects, "task": shape.tasks}
    async with engine.begin() as conn:
        for table, rows in tables:
            await (_copy if postgres else _insert_many)(conn, table, rows)
        if postgres:
            for table in ("user", "project", "task"):
                # Our own table names; the ids were given explicitly, so move the sequences on.
                setval = (
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), {max_id[table]})"
                )
                await conn.execute(sa.text(setval))
            await conn.execute(sa.text("ANALYZE"))
    member_id = members[1][0]
    assigned = next(row for row in tasks if row[5] == member_id)
    return Seeded(
        admin_id=1, member_id=member_id, task_id=assigned[0], memberships=len(member_rows)
    )
