"""A request id per HTTP request: logged with errors and echoed as `X-Request-ID`.

This is the outermost of TaskQL's middleware, so it is also where an exception nothing else
caught becomes a coded JSON 500 that carries the id, instead of a plain-text page.
"""

import logging
import re
import secrets

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.request_id import request_id_bound
from graph.errors import INTERNAL_MESSAGE
from graph.http import error_body

logger = logging.getLogger("taskql.http")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HEADER = b"x-request-id"
SCOPE_KEY = "taskql.request_id"  # set once a request has its id (the fast lane's, see taskql.app)


class RequestIdMiddleware:
    """Accept a caller's well-formed `X-Request-ID` or make one; set it for logs and the reply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given: str | None = scope.get(SCOPE_KEY)
        if given is None:
            incoming = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
            request_id = incoming if _SAFE_ID.match(incoming) else secrets.token_hex(16)
            scope[SCOPE_KEY] = request_id
        else:  # the fast lane's instance gave the id and adds the header (taskql.app)
            request_id = given
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if given is None:
                    headers = list(message.get("headers", []))
                    headers.append((HEADER, request_id.encode()))
                    message["headers"] = headers
            await send(message)

        with request_id_bound(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                logger.exception("unhandled error (request %s)", request_id)
                if scope["type"] != "http" or started:
                    raise
                await _send_internal_error(send_with_id, request_id)


async def _send_internal_error(send: Send, request_id: str) -> None:
    body = error_body(INTERNAL_MESSAGE, "INTERNAL_SERVER_ERROR")
    body["errors"][0]["extensions"]["requestId"] = request_id
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
