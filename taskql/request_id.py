"""A request id per HTTP request: logged with errors and echoed as `X-Request-ID`."""

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.request_id import request_id_bound

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = b"x-request-id"


class RequestIdMiddleware:
    """Accept a caller's well-formed `X-Request-ID` or make one; set it for logs and the reply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        with request_id_bound(request_id):
            await self.app(scope, receive, send_with_id)
