"""Data functions for import jobs: the queue (claim, lease, heartbeat, checkpoint), bulk loading of
tasks and error rows, and the reference lookups that validate a batch."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from db import events
from db.models import (
    ImportJob,
    ImportRowError,
    ImportStatus,
    Project,
    ProjectMember,
    User,
    UTCDateTime,
    metadata,
)

TASK_COLUMNS = (
    "project_id",
    "title",
    "description",
    "status",
    "assigned_to",
    "created_by",
    "created_at",
    "updated_at",
)
ERROR_COLUMNS = ("job_id", "line", "cells", "error")
TaskRow = tuple[int, str, str, str, int | None, int | None, datetime, datetime]
ErrorRow = tuple[str, int, str, str]
FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED, ImportStatus.CANCELLED)


class LeaseLost(Exception):
    """Another runner has taken the job over: this runner must stop without committing."""


@dataclass(frozen=True, slots=True)
class References:
    """What a batch's ids refer to: existing projects, users by state, and memberships."""

    projects: set[int]
    active_users: set[int]
    inactive_users: set[int]
    memberships: set[tuple[int, int]]


async def lookup_references(
    *, session: AsyncSession, project_ids: set[int], user_ids: set[int]
) -> References:
    """Three set-based queries for a whole batch, never one per row."""
    # Core statements on the session's connection: plain rows, no ORM loading machinery.
    conn = await session.connection()
    projects: set[int] = set()
    if project_ids:
        found = await conn.execute(
            sa.select(col(Project.id)).where(col(Project.id).in_(project_ids))
        )
        projects = {pid for (pid,) in found if pid is not None}
    active: set[int] = set()
    inactive: set[int] = set()
    if user_ids:
        users = await conn.execute(
            sa.select(col(User.id), col(User.is_active)).where(col(User.id).in_(user_ids))
        )
        for user_id, is_active in users:
            if user_id is not None:
                (active if is_active else inactive).add(user_id)
    memberships: set[tuple[int, int]] = set()
    if projects and active:
        pairs = await conn.execute(
            sa.select(col(ProjectMember.project_id), col(ProjectMember.user_id)).where(
                col(ProjectMember.project_id).in_(projects), col(ProjectMember.user_id).in_(active)
            )
        )
        memberships = {(p, u) for p, u in pairs}
    return References(projects, active, inactive, memberships)


async def create_job(
    *,
    session: AsyncSession,
    job_id: str,
    file_name: str,
    stored_name: str,
    size_bytes: int,
    created_by: int | None,
    now: datetime,
    lease: str | None = None,
    sha256: str | None = None,
    dry_run: bool = False,
) -> ImportJob:
    """A QUEUED job; with a lease it is RUNNING at once, claimed by its creator (the CLI)."""
    job = ImportJob(
        id=job_id,
        file_name=file_name,
        stored_name=stored_name,
        size_bytes=size_bytes,
        created_by=created_by,
        created_at=now,
        sha256=sha256,
        dry_run=dry_run,
    )
    if lease is not None:
        job.status, job.lease, job.attempts = ImportStatus.RUNNING, lease, 1
        job.started_at = job.heartbeat_at = now
    session.add(job)
    await session.flush()
    return job


async def earlier_upload(*, session: AsyncSession, sha256: str) -> ImportJob | None:
    """The oldest job of these same bytes that has imported, or may still import, tasks: not a
    dry run, and queued, running, succeeded, or failed/cancelled after importing some rows.

    On PostgreSQL a transaction-scoped advisory lock on the hash makes concurrent uploads of the
    same bytes take turns, so two of them cannot both pass this check.
    """
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    may_import = sa.or_(
        col(ImportJob.status).in_(
            (ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.SUCCEEDED)
        ),
        col(ImportJob.rows_imported) > 0,
    )
    query = (
        sa.select(ImportJob)
        .where(col(ImportJob.sha256) == sha256, sa.not_(col(ImportJob.dry_run)), may_import)
        .order_by(col(ImportJob.created_at), col(ImportJob.id))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def cancel_job(*, session: AsyncSession, job_id: str, now: datetime) -> ImportJob | None:
    """Cancel a job: a QUEUED one is CANCELLED at once (no runner will start it), a RUNNING one
    is marked, and its runner stops after the batch in flight. A finished job is left as it is.
    None when there is no such job."""
    queued = await session.execute(
        sa.update(ImportJob)
        .where(col(ImportJob.id) == job_id, col(ImportJob.status) == ImportStatus.QUEUED)
        .values(status=ImportStatus.CANCELLED, finished_at=now, cancel_requested_at=now)
        .returning(col(ImportJob.id))
    )
    if queued.scalar_one_or_none() is None:
        await session.execute(
            sa.update(ImportJob)
            .where(
                col(ImportJob.id) == job_id,
                col(ImportJob.status) == ImportStatus.RUNNING,
                col(ImportJob.cancel_requested_at).is_(None),
            )
            .values(cancel_requested_at=now)
        )
    await events.publish(session, [job_event(job_id)])
    return await get_job(session=session, job_id=job_id)


async def get_job(*, session: AsyncSession, job_id: str) -> ImportJob | None:
    """The job as the database has it now (not a stale copy from the session)."""
    return await session.get(ImportJob, job_id, populate_existing=True)


async def list_jobs(
    *, session: AsyncSession, limit: int, after: tuple[datetime, str] | None = None
) -> list[ImportJob]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = sa.select(ImportJob).order_by(
        col(ImportJob.created_at).desc(), col(ImportJob.id).desc()
    )
    if after is not None:
        created_at, job_id = after
        query = query.where(
            sa.tuple_(col(ImportJob.created_at), col(ImportJob.id)) < (created_at, job_id)
        )
    return list((await session.execute(query.limit(limit))).scalars())


async def count_jobs(*, session: AsyncSession) -> int:
    """How many import jobs there are."""
    return int(
        (await session.execute(sa.select(sa.func.count()).select_from(ImportJob))).scalar_one()
    )


async def newest_job_for_user(*, session: AsyncSession, user_id: int) -> ImportJob | None:
    """The last job this user uploaded."""
    query = (
        sa.select(ImportJob)
        .where(col(ImportJob.created_by) == user_id)
        .order_by(col(ImportJob.created_at).desc(), col(ImportJob.id).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


def _claimable(stale_before: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        col(ImportJob.status) == ImportStatus.QUEUED,
        sa.and_(
            col(ImportJob.status) == ImportStatus.RUNNING,
            col(ImportJob.heartbeat_at) < stale_before,
        ),
    )


async def claim_next_job(
    *, session: AsyncSession, lease: str, now: datetime, stale_before: datetime
) -> ImportJob | None:
    """Take the oldest QUEUED job, or a RUNNING one whose runner stopped heartbeating.

    PostgreSQL skips rows other runners are claiming (FOR UPDATE SKIP LOCKED); the UPDATE
    repeats the condition, so a lost race (SQLite's runners) claims nothing rather than twice.
    """
    candidate = (
        sa.select(col(ImportJob.id))
        .where(_claimable(stale_before))
        .order_by(col(ImportJob.created_at), col(ImportJob.id))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    job_id = (await session.execute(candidate)).scalar_one_or_none()
    if job_id is None:
        return None
    claimed = await session.execute(
        sa.update(ImportJob)
        .where(col(ImportJob.id) == job_id, _claimable(stale_before))
        .values(
            status=ImportStatus.RUNNING,
            lease=lease,
            heartbeat_at=now,
            started_at=sa.func.coalesce(col(ImportJob.started_at), now),
            attempts=col(ImportJob.attempts) + 1,
        )
        .returning(col(ImportJob.id))
    )
    if claimed.scalar_one_or_none() is None:
        return None
    await events.publish(session, [job_event(job_id)])
    return await get_job(session=session, job_id=job_id)


async def _fenced_update(
    session: AsyncSession, job_id: str, lease: str, values: dict[str, Any]
) -> bool:
    """Update the job only while `lease` still holds it (otherwise LeaseLost); whether an admin
    has asked to cancel it."""
    result = await session.execute(
        sa.update(ImportJob)
        .where(col(ImportJob.id) == job_id, col(ImportJob.lease) == lease)
        .values(**values)
        .returning(col(ImportJob.cancel_requested_at))
    )
    row = result.one_or_none()
    if row is None:
        raise LeaseLost(job_id)
    if set(values) != {"heartbeat_at"}:
        await events.publish(session, [job_event(job_id)])
    return row[0] is not None


async def heartbeat(*, session: AsyncSession, job_id: str, lease: str, now: datetime) -> None:
    """The runner holding `lease` is alive."""
    await _fenced_update(session, job_id, lease, {"heartbeat_at": now})


async def record_scan(
    *,
    session: AsyncSession,
    job_id: str,
    lease: str,
    header: str,
    rows_total: int,
    offset: int,
    line: int,
    message: str | None,
) -> None:
    """The file passed the whole-file checks: remember its header, size and first data row."""
    values = {
        "header": header,
        "rows_total": rows_total,
        "checkpoint_offset": offset,
        "checkpoint_line": line,
        "message": message,
    }
    await _fenced_update(session, job_id, lease, values)


async def advance(
    *,
    session: AsyncSession,
    job_id: str,
    lease: str,
    imported: int,
    failed: int,
    offset: int,
    line: int,
    now: datetime,
) -> bool:
    """Move the checkpoint past a batch; commits together with the batch's rows. Whether the
    job is to stop there (cancelled)."""
    values = {
        "rows_processed": col(ImportJob.rows_processed) + imported + failed,
        "rows_imported": col(ImportJob.rows_imported) + imported,
        "rows_failed": col(ImportJob.rows_failed) + failed,
        "checkpoint_offset": offset,
        "checkpoint_line": line,
        "heartbeat_at": now,
    }
    return await _fenced_update(session, job_id, lease, values)


async def finish_job(
    *,
    session: AsyncSession,
    job_id: str,
    lease: str,
    status: ImportStatus,
    now: datetime,
    message: str | None = None,
) -> None:
    """End the job (SUCCEEDED, FAILED or CANCELLED) and release its lease."""
    values: dict[str, Any] = {"status": status, "finished_at": now, "lease": None}
    if message is not None:
        values["message"] = message
    await _fenced_update(session, job_id, lease, values)


async def release_job(*, session: AsyncSession, job_id: str, lease: str) -> None:
    """Put a job back in the queue after an unexpected failure, for another attempt."""
    await _fenced_update(session, job_id, lease, {"status": ImportStatus.QUEUED, "lease": None})


async def _copy(conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    # COPY runs on asyncpg's own connection, inside the transaction SQLAlchemy already began.
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


def _driver_rows(
    table: sa.Table, columns: Sequence[str], rows: list[Any], dialect: sa.Dialect
) -> list[Any]:
    """Rows for a driver-level executemany: timestamps in the dialect's own storage format.

    A batch shares its timestamps, so each distinct value is converted once.
    """
    converters: dict[int, Any] = {}
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            converters[index] = column_type.bind_processor(dialect)
    if not converters:
        return rows
    converted: dict[tuple[int, Any], Any] = {}
    out = []
    for row in rows:
        values = list(row)
        for index, convert in converters.items():
            key = (index, values[index])
            if key not in converted:
                converted[key] = convert(values[index])
            values[index] = converted[key]
        out.append(tuple(values))
    return out


async def _executemany(
    conn: AsyncConnection, table_name: str, columns: Sequence[str], rows: list[Any]
) -> None:
    """One INSERT executed for all rows by the driver, skipping per-row SQLAlchemy processing."""
    table = metadata.tables[table_name]
    statement = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    compiled = statement.compile(dialect=conn.dialect)
    assert list(compiled.positiontup or ()) == list(columns), compiled.positiontup
    await conn.exec_driver_sql(str(compiled), _driver_rows(table, columns, rows, conn.dialect))


async def _bulk_insert(
    session: AsyncSession, table: str, columns: Sequence[str], rows: list[Any]
) -> None:
    """One statement for all rows: COPY on PostgreSQL, an executemany INSERT on SQLite."""
    if not rows:
        return
    conn = await session.connection()
    assert conn.in_transaction(), "bulk loads must run inside the batch's transaction"
    if conn.dialect.name == "postgresql":
        await _copy(conn, table, columns, rows)
    else:
        await _executemany(conn, table, columns, rows)


async def relax_commit_durability(*, session: AsyncSession) -> None:
    """PostgreSQL: do not wait for this transaction's WAL flush when it commits.

    Safe for import batches: a database crash can only lose the newest commits whole (the rows
    together with the checkpoint that counts them), so the job resumes before them.
    """
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


async def insert_tasks(*, session: AsyncSession, rows: list[TaskRow]) -> None:
    """A batch's valid rows, in one statement; one IMPORTED event per project goes with them."""
    await _bulk_insert(session, "task", TASK_COLUMNS, rows)
    await events.publish(session, imported_events(rows))


def imported_events(rows: list[TaskRow]) -> list[events.Event]:
    """A batch's summary events: per project, its new tasks per assignee."""
    by_project: dict[int, list[int | None]] = {}
    for row in rows:
        by_project.setdefault(row[0], []).append(row[4])
    return [
        events.Event(
            topic=events.Topic.TASK,
            kind=events.Kind.IMPORTED,
            subject=project_id,
            at=rows[0][6],
            actor_id=rows[0][5],
            after=(project_id, None),
            counts=events.tally(assignees),
        )
        for project_id, assignees in by_project.items()
    ]


def job_event(job_id: str) -> events.Event:
    """An import job moved on (importJobProgress re-reads it)."""
    return events.Event(
        topic=events.Topic.IMPORT, kind=events.Kind.PROGRESS, subject=job_id, at=events.now()
    )


async def insert_row_errors(*, session: AsyncSession, rows: list[ErrorRow]) -> None:
    """A batch's rejected rows, in one statement."""
    await _bulk_insert(session, "import_row_error", ERROR_COLUMNS, rows)


async def error_rows(
    *, session: AsyncSession, job_id: str, after_line: int, limit: int
) -> list[ImportRowError]:
    """One page of a job's error rows, in line order."""
    query = (
        sa.select(ImportRowError)
        .where(col(ImportRowError.job_id) == job_id, col(ImportRowError.line) > after_line)
        .order_by(col(ImportRowError.line))
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())
