"""REST downloads of import error reports: `GET /imports/{job_id}/errors.csv`, `GET /upload/errors`.

An admin sends `Authorization: Bearer`; a browser link carries the signed `expires` and
`signature` from `ImportJob.errorReportUrl` instead.
"""

import uuid
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from auth import policy
from auth.sessions import Authenticator
from core.errors import Unauthenticated
from db import imports
from db.engine import SessionFactory
from db.models import ImportJob, User
from graph.context import bearer_token
from importer.report import report_chunks, report_file_name, report_signer

router = APIRouter(tags=["imports"])

NEED_CREDENTIALS = (
    "Send an admin's `Authorization: Bearer <token>`, or use the signed link in "
    "ImportJob.errorReportUrl."
)


async def _admin(request: Request, token: str) -> User:
    authenticator: Authenticator = request.app.state.authenticator
    try:
        user = await authenticator.user_for_access_token(token)
    except Unauthenticated as exc:
        raise HTTPException(401, exc.message, headers={"WWW-Authenticate": "Bearer"}) from exc
    if not policy.is_admin(user):
        raise HTTPException(403, "Only an admin may download import error reports.")
    return user


def _content_disposition(file_name: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def _report_response(request: Request, job: ImportJob) -> StreamingResponse:
    session_factory: SessionFactory = request.app.state.session_factory
    return StreamingResponse(
        report_chunks(session_factory, job),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": _content_disposition(report_file_name(job)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _job(request: Request, job_id: str) -> ImportJob:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise HTTPException(404, "No import job has this id.") from None
    session_factory: SessionFactory = request.app.state.session_factory
    async with session_factory() as session:
        job = await imports.get_job(session=session, job_id=job_id)
    if job is None:
        raise HTTPException(404, "No import job has this id.")
    return job


@router.get("/imports/{job_id}/errors.csv")
async def job_error_report(
    request: Request, job_id: str, expires: int | None = None, signature: str | None = None
) -> StreamingResponse:
    """One job's error report: its rejected rows with `row` and `error` columns."""
    token = bearer_token(request)
    if token is not None:
        await _admin(request, token)
    elif expires is not None and signature is not None:
        if not report_signer(request.app.state.settings).verify(job_id, expires, signature):
            raise HTTPException(403, "This download link is invalid or has expired.")
    else:
        raise HTTPException(401, NEED_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    return _report_response(request, await _job(request, job_id))


@router.get("/upload/errors")
async def newest_error_report(request: Request) -> StreamingResponse:
    """The error report of the calling admin's newest import."""
    token = bearer_token(request)
    if token is None:
        raise HTTPException(401, NEED_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    admin = await _admin(request, token)
    assert admin.id is not None
    session_factory: SessionFactory = request.app.state.session_factory
    async with session_factory() as session:
        job = await imports.newest_job_for_user(session=session, user_id=admin.id)
    if job is None:
        raise HTTPException(404, "You have not imported any file yet.")
    return _report_response(request, job)
