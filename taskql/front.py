"""The front door for compiled reads: a plain JSON POST to /graphql that the compiled read path
can answer is answered here, before FastAPI routes it and Strawberry parses it again.

Anything else (another method or content type, a body that is not a plain GraphQL request, an
operation the compiler does not know, any error to report) goes on to the GraphQL router with
its body intact, and with the reason in the scope so the schema does not try a second time.
The answer is what the router would send: 200, `application/json`, `{"data": ...}`.
"""

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.sessions import Authenticator
from auth.tokens import bearer_token
from graph.compiled.entry import HEADER, TRIED, CompiledReads, HttpRead
from graph.compiled.runner import COMPILED

JSON_TYPES = (b"application/json",)


class _NotPlain(Exception):
    """The body is not a plain GraphQL-over-HTTP request: the router decides."""


def _request_fields(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _NotPlain from None
    if not isinstance(payload, dict) or set(payload) - {"query", "variables", "operationName"}:
        raise _NotPlain
    query, variables, name = (
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
    )
    if not isinstance(query, str) or not isinstance(variables, dict | None):
        raise _NotPlain
    if not isinstance(name, str | None):
        raise _NotPlain
    return query, variables, name


class CompiledReadsFront:
    """ASGI middleware in front of the GraphQL router (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, reads: CompiledReads, authenticator: Authenticator, path: str
    ) -> None:
        self.app = app
        self.reads = reads
        self.authenticator = authenticator
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._candidate(scope):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if not complete:  # the client went away
            return
        answer = await self._answer(scope, body)
        if answer is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        await _send_json(send, answer, self.reads.header({}, COMPILED))

    def _candidate(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return False
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        return (
            content_type in JSON_TYPES
            and bearer_token(headers.get(b"authorization", b"").decode("latin-1")) is not None
        )

    async def _answer(self, scope: Scope, body: bytes) -> bytes | None:
        try:
            query, variables, name = _request_fields(body)
        except _NotPlain:
            return None
        headers = dict(scope.get("headers") or [])
        token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        authenticator = self.authenticator

        async def load_caller() -> Any:
            assert token is not None
            return await authenticator.user_for_access_token(token)

        read = HttpRead(query, variables, name, token, authenticator, load_caller)
        data, reason = await self.reads.attempt(read)
        if data is None:
            scope[TRIED] = reason
            return None
        return orjson.dumps({"data": data})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the body over again, then whatever comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Send, body: bytes, path_header: str | None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if path_header is not None:
        headers.append((HEADER.lower().encode(), path_header.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
