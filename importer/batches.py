"""One batch of rows: parse and check it, look its references up, split it into tasks and error
rows, and commit it together with the job's checkpoint."""

import json
from dataclasses import dataclass
from datetime import datetime

from db import imports
from db.engine import SessionFactory
from db.imports import ErrorRow, References, TaskRow
from importer.reader import CsvSource, Header
from importer.validation import CandidateRow, check_references, check_rows, referenced_ids

REPORT_CELL_MAX = 10_000  # longer cells are cut in the stored report (the reason says why)


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    rows: list[CandidateRow]
    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class LoadBatch:
    tasks: list[TaskRow]
    errors: list[ErrorRow]
    offset: int
    line: int
    now: datetime
    dry_run: bool = False  # check and report only: the tasks are not inserted


def read_batch(source: CsvSource, header: Header, size: int) -> ParsedBatch:
    """Parse and check up to `size` rows (blocking: runs in a thread)."""
    rows = check_rows(source.read_records(size), header)
    return ParsedBatch(rows=rows, offset=source.offset, line=source.line)


async def lookup(session_factory: SessionFactory, batch: ParsedBatch) -> References:
    """The batch's projects, users and memberships: one query each, whatever the batch size."""
    project_ids, user_ids = referenced_ids(batch.rows)
    async with session_factory() as session:
        return await imports.lookup_references(
            session=session, project_ids=project_ids, user_ids=user_ids
        )


def stored_cells(cells: list[str]) -> str:
    """A rejected row's cells as JSON, for the report."""
    return json.dumps(
        [cell if len(cell) <= REPORT_CELL_MAX else cell[:REPORT_CELL_MAX] + "…" for cell in cells],
        ensure_ascii=False,
    )


def split_batch(
    batch: ParsedBatch,
    refs: References,
    job_id: str,
    created_by: int | None,
    now: datetime,
    dry_run: bool = False,
) -> LoadBatch:
    """Finish validation and build the rows to load (blocking: runs in a thread)."""
    tasks: list[TaskRow] = []
    errors: list[ErrorRow] = []
    for row in batch.rows:
        check_references(row, refs)
        if row.reasons or row.project_id is None or row.status is None:
            errors.append((job_id, row.line, stored_cells(row.cells), "; ".join(row.reasons)))
            continue
        tasks.append(
            (
                row.project_id,
                row.title,
                row.description,
                row.status.value,
                row.assignee_id,
                created_by,
                now,
                now,
            )
        )
    return LoadBatch(tasks, errors, batch.offset, batch.line, now, dry_run)


async def commit_batch(
    session_factory: SessionFactory, job_id: str, lease: str, load: LoadBatch
) -> bool:
    """The batch's tasks, its error rows and the job's checkpoint, in one transaction. Whether
    an admin has asked to cancel the job (it stops after this batch)."""
    async with session_factory() as session, session.begin():
        await imports.relax_commit_durability(session=session)
        # The fenced checkpoint goes first: it locks the job row and proves the lease.
        cancelled = await imports.advance(
            session=session,
            job_id=job_id,
            lease=lease,
            imported=len(load.tasks),
            failed=len(load.errors),
            offset=load.offset,
            line=load.line,
            now=load.now,
        )
        if not load.dry_run:
            await imports.insert_tasks(session=session, rows=load.tasks)
        await imports.insert_row_errors(session=session, rows=load.errors)
    return cancelled
