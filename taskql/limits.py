"""Request size limits, enforced before a large body is read into memory or a query is parsed."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskql.http_errors import send_error

TOO_LARGE = "PAYLOAD_TOO_LARGE"


class _TooLarge(Exception):
    pass


def _body_message(limit: int) -> str:
    return f"Request body is larger than the limit of {limit} bytes."


class BodySizeLimitMiddleware:
    """Answer 413 to bodies over the limit, 414 to query strings over it (GraphQL over GET).

    Multipart uploads have their own, larger limit.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_multipart_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_multipart_bytes = max_multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string") or b"") > self.max_bytes:
            message = f"Request URL is longer than the limit of {self.max_bytes} bytes."
            await send_error(scope, receive, send, status=414, message=message, code=TOO_LARGE)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = (
            self.max_multipart_bytes
            if content_type.startswith("multipart/form-data")
            else self.max_bytes
        )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(
                scope, receive, send, status=413, message=_body_message(limit), code=TOO_LARGE
            )
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_error(
                    scope, receive, send, status=413, message=_body_message(limit), code=TOO_LARGE
                )
