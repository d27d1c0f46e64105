"""REST downloads of import error reports: `GET /imports/{job_id}/errors.csv`, `GET /upload/errors`.

Thin HTTP adapters over importer/report.py. An admin sends `Authorization: Bearer`; a browser
link carries the signed `expires` and `signature` from `ImportJob.errorReportUrl` instead.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse

from core.errors import NotFound
from db.models import ImportJob, User
from importer.report import (
    job_for_report,
    newest_job_of,
    report_chunks,
    report_file_name,
    report_signer,
)
from taskql.dependencies import NEED_BEARER, OptionalCaller, ServicesDep, admin_only

router = APIRouter(tags=["imports"])

NEED_CREDENTIALS = (
    "Send an admin's `Authorization: Bearer <token>`, or use the signed link in "
    "ImportJob.errorReportUrl."
)
ADMINS_ONLY = "Only an admin may download import error reports."
BAD_LINK = "This download link is invalid or has expired."


async def report_admin(caller: OptionalCaller) -> User:
    """An admin's bearer token: 401 without one, 403 for a USER."""
    if caller is None:
        raise HTTPException(401, NEED_CREDENTIALS, headers=NEED_BEARER)
    return admin_only(caller, ADMINS_ONLY)


async def report_reader(
    job_id: str,
    caller: OptionalCaller,
    services: ServicesDep,
    expires: int | None = None,
    signature: str | None = None,
) -> None:
    """An admin's bearer token, or an unexpired link signed for this very job."""
    if caller is not None:
        admin_only(caller, ADMINS_ONLY)
    elif expires is not None and signature is not None:
        if not report_signer(services.settings).verify(job_id, expires, signature):
            raise HTTPException(403, BAD_LINK)
    else:
        raise HTTPException(401, NEED_CREDENTIALS, headers=NEED_BEARER)


ReportAdmin = Annotated[User, Depends(report_admin)]
ReportReader = Depends(report_reader)


def _content_disposition(file_name: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def _report_response(services: ServicesDep, job: ImportJob) -> StreamingResponse:
    return StreamingResponse(
        report_chunks(services.session_factory, job),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": _content_disposition(report_file_name(job)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/imports/{job_id}/errors.csv", dependencies=[ReportReader])
async def job_error_report(job_id: str, services: ServicesDep) -> StreamingResponse:
    """One job's error report: its rejected rows with `row` and `error` columns."""
    try:
        job = await job_for_report(services.session_factory, job_id)
    except NotFound as exc:
        raise HTTPException(404, exc.message) from exc
    return _report_response(services, job)


@router.get("/upload/errors")
async def newest_error_report(admin: ReportAdmin, services: ServicesDep) -> StreamingResponse:
    """The error report of the calling admin's newest import."""
    assert admin.id is not None
    try:
        job = await newest_job_of(services.session_factory, admin.id)
    except NotFound as exc:
        raise HTTPException(404, exc.message) from exc
    return _report_response(services, job)
