"""CSV import: the importTasks upload, ImportJob queries, and the importJobProgress subscription."""

import typing
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime

import strawberry
from starlette.datastructures import UploadFile
from strawberry.file_uploads import Upload

from core.errors import BadUserInput, Conflict, NotFound
from db import imports, models
from db.events import Topic
from db.models import utcnow
from db.paging import Keyset, Page, PageRequest
from graph.context import Info
from graph.pagination import (
    DEFAULT_PAGE_SIZE,
    Connection,
    CursorFormat,
    keyset_request,
    to_connection,
)
from graph.permissions import IsAdmin
from graph.users import UserType, load_user
from importer.jobs import submit_import, watch_job
from importer.report import report_signer
from importer.storage import CHUNK_BYTES

strawberry.enum(models.ImportStatus, name="ImportJobStatus", description="Where an import stands.")

# The one ordering of importJobs (db/imports.py list_jobs): newest first, ids are UUID strings.
NEWEST_FIRST = CursorFormat(
    sort="created_at", kind="datetime", descending=True, id_type=str, orderable=False
)


@strawberry.type(name="ImportJob", description="One uploaded CSV file of tasks and its processing.")
class ImportJobType:
    id: strawberry.ID
    file_name: str = strawberry.field(description="The uploaded file's name, sanitised.")
    status: models.ImportStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_total: int | None = strawberry.field(
        description="Data rows in the file, known once the file has passed its checks."
    )
    rows_processed: int
    rows_imported: int
    rows_failed: int
    message: str | None = strawberry.field(
        description="Why the whole file failed, what was ignored (extra columns), or how far a "
        "cancelled job got."
    )
    dry_run: bool = strawberry.field(
        description="Checked and reported only: no task was inserted (rowsImported counts the "
        "rows a real run would import)."
    )
    created_by_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, job: models.ImportJob) -> "ImportJobType":
        return cls(
            id=strawberry.ID(job.id),
            file_name=job.file_name,
            status=job.status,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            rows_total=job.rows_total,
            rows_processed=job.rows_processed,
            rows_imported=job.rows_imported,
            rows_failed=job.rows_failed,
            message=job.message,
            dry_run=job.dry_run,
            created_by_id=job.created_by,
        )

    @strawberry.field(description="Share of the rows processed, from 0 to 1.")
    def progress(self) -> float:
        if self.status == models.ImportStatus.SUCCEEDED:
            return 1.0
        if not self.rows_total:
            return 0.0
        return min(1.0, self.rows_processed / self.rows_total)

    @strawberry.field(description="The admin who uploaded the file.")
    async def created_by(self, info: Info) -> UserType | None:
        return await load_user(info, self.created_by_id)

    @strawberry.field(
        description="A short-lived signed link to the CSV of the rejected rows; it works "
        "without an Authorization header, for browsers. Absolute when the server has a "
        "PUBLIC_BASE_URL, else relative to the server."
    )
    def error_report_url(self, info: Info) -> str:
        settings = info.context.settings
        link = report_signer(settings).url(str(self.id))
        if settings.public_base_url:
            return settings.public_base_url.rstrip("/") + link
        return link


def _job_page(
    jobs: list[models.ImportJob], request: PageRequest, total: int | None
) -> Page[models.ImportJob]:
    """The page in `jobs`, read with one row more than it shows to tell whether more follow."""
    shown = jobs[: request.first]
    return Page(
        items=shown,
        keys=[Keyset(job.created_at, job.id) for job in shown],
        has_next=len(jobs) > request.first,
        has_previous=request.after is not None,
        total=total,
    )


def _job_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise NotFound("No import job has this id.", field="id") from None


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAdmin], description="One import job.")
    async def import_job(self, info: Info, id: strawberry.ID) -> ImportJobType:
        async with info.context.session_factory() as session:
            job = await imports.get_job(session=session, job_id=_job_id(id))
        if job is None:
            raise NotFound("No import job has this id.", field="id")
        return ImportJobType.from_model(job)

    @strawberry.field(permission_classes=[IsAdmin], description="Import jobs, newest first.")
    async def import_jobs(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[ImportJobType]:
        request = keyset_request(info, first=first, after=after, form=NEWEST_FIRST)
        after_job = None if request.after is None else (request.after.value, str(request.after.id))
        async with info.context.session_factory() as session:
            jobs = await imports.list_jobs(
                session=session, limit=request.first + 1, after=after_job
            )
            total = await imports.count_jobs(session=session) if request.with_total else None
        return to_connection(_job_page(jobs, request, total), request, ImportJobType.from_model)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Upload a CSV of tasks (GraphQL multipart request). Returns at once with a "
        "QUEUED job; follow it with importJob or the importJobProgress subscription.",
    )
    async def import_tasks(
        self,
        info: Info,
        file: Upload,
        dry_run: typing.Annotated[
            bool,
            strawberry.argument(
                description="Check the whole file and build its error report, inserting nothing."
            ),
        ] = False,
        allow_duplicate: typing.Annotated[
            bool,
            strawberry.argument(
                description="Import even when an earlier job had the same bytes (else CONFLICT)."
            ),
        ] = False,
    ) -> ImportJobType:
        upload: object = file
        if not isinstance(upload, UploadFile):
            raise BadUserInput("`file` must be a file part of a multipart request.", field="file")
        user = await info.context.require_user()
        assert user.id is not None
        job = await submit_import(
            session_factory=info.context.session_factory,
            settings=info.context.settings,
            chunks=_chunks(upload),
            file_name=upload.filename,
            created_by=user.id,
            dry_run=dry_run,
            allow_duplicate=allow_duplicate,
        )
        return ImportJobType.from_model(job)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Cancel an import: a QUEUED job never starts; a RUNNING one stops after the "
        "batch in flight, keeping what it committed, and ends CANCELLED. A finished job is "
        "CONFLICT.",
    )
    async def cancel_import_job(self, info: Info, id: strawberry.ID) -> ImportJobType:
        async with info.context.session_factory.begin() as session:
            job = await imports.cancel_job(session=session, job_id=_job_id(id), now=utcnow())
        if job is None:
            raise NotFound("No import job has this id.", field="id")
        if job.status in imports.FINISHED and job.status != models.ImportStatus.CANCELLED:
            raise Conflict(f"The job has already finished ({job.status.value}).", field="id")
        return ImportJobType.from_model(job)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[IsAdmin],
        description="The job now and at every step, completing when it finishes.",
    )
    async def import_job_progress(
        self, info: Info, id: strawberry.ID
    ) -> AsyncGenerator[ImportJobType, None]:
        job_id = _job_id(id)
        # Driven by the job's events; on SQLite also polled, for runners in other processes.
        context = info.context
        poll = (
            None if context.events.crosses_processes else context.settings.import_progress_seconds
        )
        async with context.inbox([Topic.IMPORT], lambda e: e.subject == job_id) as inbox:
            async for job in watch_job(context.session_factory, job_id, interval=poll, inbox=inbox):
                yield ImportJobType.from_model(job)
