"""Error answers given outside GraphQL execution, in GraphQL's error shape."""

import logging
from http import HTTPStatus

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from core.errors import RETRY_AFTER_SECONDS, ServiceUnavailable
from core.request_id import current_request_id
from db.outage import describe, is_outage
from graph.http import error_body

logger = logging.getLogger("taskql.http")

CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


async def send_error(
    scope: Scope, receive: Receive, send: Send, *, status: int, message: str, code: str
) -> None:
    """Answer `status` with `{"errors": [{"message", "extensions": {"code"}}]}`."""
    await JSONResponse(error_body(message, code), status_code=status)(scope, receive, send)


async def http_exception_answer(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException (a REST route's refusal, an unknown path, a method
    a route does not take): the GraphQL error shape, with a code."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    code = CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
    return JSONResponse(error_body(message, code), status_code=status, headers=exc.headers)


def unavailable_answer(**fields: object) -> JSONResponse:
    """503 SERVICE_UNAVAILABLE with `Retry-After`: the database is down or timed out. `fields`
    go into the body beside `errors` (readiness's `status` and `reason`)."""
    coded = ServiceUnavailable()
    return JSONResponse(
        {**fields, **error_body(coded.message, coded.code)},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def outage_answer(request: Request, exc: Exception) -> Response:
    """A REST route met a database outage: 503 with `Retry-After`, and a warning without a
    traceback. Registered for `db.outage.OUTAGE_BASES`; any other exception of those classes is
    a bug, and goes on as one."""
    if not is_outage(exc):
        raise exc
    logger.warning(
        "database unavailable in %s %s (request %s): %s",
        request.method,
        request.url.path,
        current_request_id(),
        describe(exc),
    )
    return unavailable_answer()


async def invalid_parameters_answer(request: Request, exc: Exception) -> Response:
    """A REST route's parameters that do not fit their types: 400 BAD_REQUEST naming them
    (FastAPI's default is a 422 in a shape of its own)."""
    assert isinstance(exc, RequestValidationError)
    names = sorted(
        {
            ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
            for error in exc.errors()
        }
    )
    message = f"Invalid request parameters: {', '.join(names)}."
    return JSONResponse(error_body(message, "BAD_REQUEST"), status_code=400)
