"""REST download of task exports: `GET /exports/tasks.csv`.

A thin HTTP adapter over importer/export.py. A signed-in caller sends `Authorization: Bearer` and
the filter and order as query parameters; a browser link carries the signed `user`, `expires`
and `signature` that the `exportTasks` mutation made instead.
"""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from core.errors import BadUserInput
from db.scopes import ReadScope
from importer.export import (
    EXPORT_FILE_NAME,
    EXPORT_PATH,
    ExportSpec,
    export_chunks,
    export_scope,
    export_signer,
    linked_scope,
)
from taskql.dependencies import NEED_BEARER, OptionalCaller, ServicesDep

router = APIRouter(tags=["exports"])

NEED_CREDENTIALS = (
    "Send `Authorization: Bearer <token>`, or use the signed link that exportTasks returns."
)
BAD_LINK = "This download link is invalid or has expired."
LINK_PARAMS = ("user", "expires", "signature")


def _spec(request: Request) -> ExportSpec:
    params = {k: v for k, v in request.query_params.items() if k not in LINK_PARAMS}
    try:
        return ExportSpec.from_params(params)
    except BadUserInput as exc:
        raise HTTPException(400, exc.message) from exc


async def _linked(request: Request, services: ServicesDep, spec: ExportSpec) -> ReadScope:
    query = request.query_params
    if not all(query.get(name) for name in LINK_PARAMS):
        raise HTTPException(401, NEED_CREDENTIALS, headers=NEED_BEARER)
    try:
        user_id, expires = int(query["user"]), int(query["expires"])
    except ValueError:
        raise HTTPException(403, BAD_LINK) from None
    signer = export_signer(services.settings)
    if not signer.verify(user_id, spec, expires, query["signature"]):
        raise HTTPException(403, BAD_LINK)
    scope = await linked_scope(services.session_factory, user_id)
    if scope is None:
        raise HTTPException(403, BAD_LINK)
    return scope


@router.get(EXPORT_PATH)
async def export_tasks(
    request: Request, caller: OptionalCaller, services: ServicesDep
) -> StreamingResponse:
    """The tasks the caller may read, as CSV in the import's columns plus id and timestamps."""
    spec = _spec(request)
    if caller is not None:
        scope = export_scope(caller)
    else:
        scope = await _linked(request, services, spec)
    return StreamingResponse(
        export_chunks(services.session_factory, scope, spec),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{EXPORT_FILE_NAME}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
