"""CORS for browser clients on other origins, with refusals that are GraphQL-shaped JSON."""

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

# What Apollo Client, urql, apollo-upload-client and the CSRF guard send.
ALLOWED_HEADERS = (
    "Accept",
    "Authorization",
    "Content-Type",
    "X-Request-ID",
    "Apollo-Require-Preflight",
    "GraphQL-Preflight",
    "X-Requested-With",
    "apollographql-client-name",
    "apollographql-client-version",
)
EXPOSED_HEADERS = ("X-Request-ID", "Content-Disposition", "Retry-After", "X-TaskQL-Read-Path")


class GraphQLCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflights answer
    `{"errors": [{"message", "extensions": {"code": "CORS_REFUSED"}}]}`."""

    def __init__(self, app: ASGIApp, *, allow_origins: list[str]) -> None:
        super().__init__(
            app,
            allow_origins=allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        refused = bytes(answer.body).decode("utf-8", "replace").removeprefix("Disallowed CORS ")
        origin = request_headers.get("origin", "")
        message = (
            f"Cross-origin request refused ({refused}). Allowed origins are set with "
            f"CORS_ORIGINS; the request came from {origin!r}, and may send the headers "
            f"{', '.join(ALLOWED_HEADERS)}."
        )
        body = {"errors": [{"message": message, "extensions": {"code": "CORS_REFUSED"}}]}
        headers = {
            name: value
            for name, value in answer.headers.items()
            if name not in ("content-length", "content-type")
        }
        return JSONResponse(body, status_code=answer.status_code, headers=headers)
