"""Seed a migrated database with users, projects, memberships and tasks, in bulk.

PostgreSQL gets COPY (asyncpg's binary copy) into tables stripped of their secondary indexes
and foreign keys, which are put back afterwards (one index build and one check per key instead
of one per row), then VACUUM ANALYZE; SQLite gets executemany in one transaction.
Ids are assigned here (1..N), so the benchmark knows them without asking.
"""

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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
TASKS_PER_USER = 100  # Shape.scaled keeps the default shape's proportions
TASKS_PER_PROJECT = 500


@dataclass(frozen=True)
class Shape:
    users: int = 1_000
    projects: int = 200
    tasks: int = 100_000

    @classmethod
    def scaled(cls, tasks: int) -> "Shape":
        """The default proportions at another size: 100 tasks per user, 500 per project."""
        return cls(
            users=max(PROJECTS_PER_MEMBER + 1, tasks // TASKS_PER_USER),
            projects=max(PROJECTS_PER_MEMBER, tasks // TASKS_PER_PROJECT),
            tasks=tasks,
        )


@dataclass(frozen=True)
class Seeded:
    """What the benchmark needs to know about the seeded data."""

    admin_id: int
    member_id: int
    task_id: int
    memberships: int
    # The last IN_PROGRESS task in the first half of the table by creation time, and how many
    # IN_PROGRESS tasks come up to it: the `deep` page starts right after it.
    deep_task_id: int
    deep_position: int


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


# Our own table names only; quote_ident turns "user" into a name regclass accepts.
_SECONDARY_INDEXES = sa.text(
    "SELECT indexname, indexdef FROM pg_indexes"
    " WHERE schemaname = current_schema() AND tablename = :table AND indexname NOT IN"
    " (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(quote_ident(:table)))"
)
_FOREIGN_KEYS = sa.text(
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = to_regclass(quote_ident(:table)) AND contype = 'f'"
)


@asynccontextmanager
async def _bare(conn: AsyncConnection, table: str) -> AsyncIterator[None]:
    """Drop the table's secondary indexes and foreign keys, and put them back on exit."""
    indexes = (await conn.execute(_SECONDARY_INDEXES, {"table": table})).all()
    keys = (await conn.execute(_FOREIGN_KEYS, {"table": table})).all()
    for name, _ in keys:
        await conn.execute(sa.text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        await conn.execute(sa.text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in indexes:
        await conn.execute(sa.text(definition))
    for name, definition in keys:
        await conn.execute(sa.text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))


async def _copy(conn: AsyncConnection, table: str, rows: Sequence[Row]) -> None:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with _bare(conn, table):
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
    if postgres:
        # Autovacuum would otherwise wake up during the measurements to process the fresh rows.
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(sa.text("VACUUM ANALYZE"))
    member_id = members[1][0]
    assigned = next(row for row in tasks if row[5] == member_id)
    deep_task_id, deep_position = _deep_start(tasks)
    return Seeded(
        admin_id=1,
        member_id=member_id,
        task_id=assigned[0],
        memberships=len(member_rows),
        deep_task_id=deep_task_id,
        deep_position=deep_position,
    )


def _deep_start(tasks: Sequence[Row]) -> tuple[int, int]:
    """The last IN_PROGRESS task of the first half by creation time, and its rank among them.

    `created_at` grows with the id here, so the first half by time is the first half by id.
    """
    position, last = 0, 0
    for row in tasks[: len(tasks) // 2]:
        if row[4] == TaskStatus.IN_PROGRESS.value:
            position, last = position + 1, row[0]
    return last, position
