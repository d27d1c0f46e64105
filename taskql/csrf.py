"""CSRF guard for multipart GraphQL requests (file uploads).

A browser sends a cross-site `multipart/form-data` POST without a CORS preflight, with the
victim's cookies. Requiring a custom header forces the preflight, which CORS then refuses.
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from taskql.http_errors import send_error

PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-requested-with", b"graphql-preflight")
MESSAGE = (
    "Multipart requests must carry an `Apollo-Require-Preflight` (or `X-Requested-With`) "
    "header, which protects uploads against cross-site request forgery."
)


class MultipartCsrfGuard:
    """Answer 400 to a multipart POST under `path_prefix` that lacks a preflight-forcing header."""

    def __init__(self, app: ASGIApp, *, path_prefix: str = "/graphql") -> None:
        self.app = app
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._refused(scope):
            await send_error(
                scope, receive, send, status=400, message=MESSAGE, code="CSRF_PREVENTION"
            )
            return
        await self.app(scope, receive, send)

    def _refused(self, scope: Scope) -> bool:
        if scope.get("method") != "POST" or not str(scope.get("path", "")).startswith(
            self.path_prefix
        ):
            return False
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not content_type.startswith("multipart/"):
            return False
        return not any(headers.get(name, b"").strip() for name in PREFLIGHT_HEADERS)
