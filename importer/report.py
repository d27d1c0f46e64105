"""The error report: a CSV of the rejected rows, streamed from the database, and signed links."""

import csv
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import aiofiles

from core.errors import NotFound
from core.settings import Settings
from db import imports
from db.engine import SessionFactory
from db.models import ImportJob
from importer.cells import neutralise

PAGE_ROWS = 1000
# Columns the report adds; an upload that already has them (a re-uploaded report) loses its old
# ones, so the report never carries two columns of the same name.
REPORT_COLUMNS = ("row", "error")


def report_file_name(job: ImportJob) -> str:
    """`<original stem>_errors.csv`."""
    stem = PurePath(job.file_name).stem or "import"
    return f"{stem}_errors.csv"


def _original_columns(names: list[str]) -> list[int]:
    return [i for i, name in enumerate(names) if name.strip().lower() not in REPORT_COLUMNS]


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([[neutralise(cell) for cell in row] for row in rows])
    return buffer.getvalue()


async def report_chunks(session_factory: SessionFactory, job: ImportJob) -> AsyncIterator[str]:
    """The report as CSV text, page by page (each page from its own short session)."""
    names: list[str] = json.loads(job.header) if job.header else []
    keep = _original_columns(names)
    yield _csv_text([[names[i] for i in keep] + list(REPORT_COLUMNS)])
    after = 0
    while True:
        async with session_factory() as session:
            page = await imports.error_rows(
                session=session, job_id=job.id, after_line=after, limit=PAGE_ROWS
            )
        if not page:
            return
        rows = []
        for error in page:
            cells: list[str] = json.loads(error.cells)
            original = [cells[i] if i < len(cells) else "" for i in keep]
            rows.append([*original, str(error.line), error.error])
        yield _csv_text(rows)
        after = page[-1].line


async def write_report(session_factory: SessionFactory, job: ImportJob, path: Path) -> None:
    """Write the job's error report to a file (the CLI's copy of the download)."""
    async with aiofiles.open(path, "w", encoding="utf-8", newline="") as out:
        async for chunk in report_chunks(session_factory, job):
            await out.write(chunk)


async def job_for_report(session_factory: SessionFactory, job_id: str) -> ImportJob:
    """The job whose report is asked for; NOT_FOUND for an unknown or malformed id."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise NotFound("No import job has this id.") from None
    async with session_factory() as session:
        job = await imports.get_job(session=session, job_id=job_id)
    if job is None:
        raise NotFound("No import job has this id.")
    return job


async def newest_job_of(session_factory: SessionFactory, user_id: int) -> ImportJob:
    """The newest job this user submitted; NOT_FOUND when there is none."""
    async with session_factory() as session:
        job = await imports.newest_job_for_user(session=session, user_id=user_id)
    if job is None:
        raise NotFound("You have not imported any file yet.")
    return job


def link_expiry(ttl_seconds: int, now: float | None = None) -> int:
    """When a signed link made now expires: `ttl_seconds` ahead, rounded down to the minute when
    the lifetime is two minutes or more, so that links to the same thing made within a minute
    are the same link (cacheable, and equal in two answers a moment apart)."""
    expires = int(now if now is not None else time.time()) + ttl_seconds
    return expires - expires % 60 if ttl_seconds >= 120 else expires


@dataclass(frozen=True, slots=True)
class ReportSigner:
    """Short-lived links to one job's report, for a browser that cannot send a bearer token."""

    secret: str
    ttl_seconds: int

    def _key(self) -> bytes:
        # A key of its own, derived from the JWT secret: a link signature is never a token one.
        return hmac.new(
            self.secret.encode(), b"taskql import error report", hashlib.sha256
        ).digest()

    def signature(self, job_id: str, expires: int) -> str:
        """HMAC-SHA256 of the job id and the expiry, hex."""
        message = f"{job_id}:{expires}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def url(self, job_id: str, *, now: float | None = None) -> str:
        """A relative URL, valid for about `ttl_seconds` (link_expiry), that downloads this job's
        report."""
        expires = link_expiry(self.ttl_seconds, now)
        signature = self.signature(job_id, expires)
        return f"/imports/{job_id}/errors.csv?expires={expires}&signature={signature}"

    def verify(
        self, job_id: str, expires: int, signature: str, *, now: float | None = None
    ) -> bool:
        """True when the signature is this job's and has not expired."""
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.signature(job_id, expires), signature)


def report_signer(settings: Settings) -> ReportSigner:
    """The signer for this deployment's report links (keyed by the JWT secret)."""
    return ReportSigner(
        secret=settings.jwt_secret_key, ttl_seconds=settings.import_report_url_ttl_seconds
    )
