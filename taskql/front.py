"""The front door for compiled reads: a plain JSON POST to /graphql that the compiled read path
can answer is answered here, before FastAPI and Strawberry see it (the app's fast lane, see
taskql.app.TaskQLApp).

Anything else (another method or content type, a body that is not a plain GraphQL request, an
operation the compiler does not know, any error to report) goes on to the GraphQL router with
its body intact, and with the reason in the scope so the schema does not try a second time.
The answer is what the router would send: 200, `{"data": ...}`, in the media type the
client's `Accept` asks for (graph.http.negotiate). A persisted-query hash is looked up in the
same store the router uses. When the database is down or timed out, the door answers 503
SERVICE_UNAVAILABLE with `Retry-After` itself: the executor would only wait for it again.
"""

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.sessions import Authenticator
from auth.tokens import bearer_token
from core.errors import RETRY_AFTER_SECONDS, ServiceUnavailable
from graph.compiled.entry import HEADER, TRIED, UNAVAILABLE, CompiledReads, HttpRead
from graph.compiled.runner import COMPILED
from graph.errors import unavailable_error
from graph.http import CONTENT_TYPES, negotiate
from graph.observe import REQUEST_ERROR, compiled_answered, finished
from graph.persisted import PersistedQueries, PersistedQueryError

JSON_TYPES = (b"application/json",)


class _NotPlain(Exception):
    """The body is not a plain GraphQL-over-HTTP request: the router decides."""


FIELDS = frozenset({"query", "variables", "operationName", "extensions"})


def _request_fields(
    body: bytes, persisted: PersistedQueries
) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _NotPlain from None
    if not isinstance(payload, dict) or set(payload) - FIELDS:
        raise _NotPlain
    query, variables, name, extensions = (
        payload.get("query"),
        payload.get("variables"),
        payload.get("operationName"),
        payload.get("extensions"),
    )
    if not isinstance(query, str | None) or not isinstance(variables, dict | None):
        raise _NotPlain
    if not isinstance(name, str | None) or not isinstance(extensions, dict | None):
        raise _NotPlain
    try:
        query = persisted.resolve(query, extensions)
    except PersistedQueryError:
        raise _NotPlain from None
    if query is None:
        raise _NotPlain
    return query, variables, name


class CompiledReadsFront:
    """ASGI middleware in front of the GraphQL router (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: CompiledReads,
        authenticator: Authenticator,
        persisted: PersistedQueries,
        path: str,
        max_bytes: int,
        cors: bool = False,
    ) -> None:
        self.app = app
        self.reads = reads
        self.authenticator = authenticator
        self.persisted = persisted
        self.path = path
        self.max_bytes = max_bytes  # a larger body goes on, for the size limit to refuse
        self.cors = cors  # cross-origin requests then go on, for the CORS middleware to answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        candidate = self._candidate(scope)
        if candidate is None:
            await self.app(scope, receive, send)
            return
        media, token = candidate
        body, state = await _read_body(receive, self.max_bytes)
        if state is GONE:
            return
        if state is LARGE:  # on to the size limit, which refuses it
            await self.app(scope, _replaying(body, receive, more=True), send)
            return
        started = time.perf_counter()
        try:
            answer = await self._answer(scope, body, token)
        except ServiceUnavailable:
            await self._unavailable(send, media)
            seconds = time.perf_counter() - started
            finished(None, "query", REQUEST_ERROR, "SERVICE_UNAVAILABLE", seconds, "compiled")
            return
        if answer is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        await _send_json(send, answer, CONTENT_TYPES[media], self.reads.header({}, COMPILED))

    async def _unavailable(self, send: Send, media: str) -> None:
        body = orjson.dumps({"errors": [unavailable_error().formatted]})
        header = UNAVAILABLE if self.reads.show_path else None
        retry = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
        await _send_json(send, body, CONTENT_TYPES[media], header, status=503, extra=retry)

    def _candidate(self, scope: Scope) -> tuple[str, str] | None:
        """The media type to answer in and the bearer token, when the request is one this door
        may answer."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return None
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            return None
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return None  # for the size limit to refuse
        if self.cors and b"origin" in headers:
            return None
        token = bearer_token(headers.get(b"authorization", b"").decode("latin-1"))
        if token is None:
            return None
        accept = headers.get(b"accept")
        media = negotiate(accept.decode("latin-1") if accept is not None else None)
        return None if media is None else (media, token)

    async def _answer(self, scope: Scope, body: bytes, token: str) -> bytes | None:
        started = time.perf_counter()
        try:
            query, variables, name = _request_fields(body, self.persisted)
        except _NotPlain:
            return None
        authenticator = self.authenticator

        async def load_caller() -> Any:
            return await authenticator.user_for_access_token(token)

        read = HttpRead(query, variables, name, token, authenticator, load_caller)
        data, reason = await self.reads.attempt(read)
        if data is None:
            scope[TRIED] = reason
            return None
        answer = orjson.dumps({"data": data})
        compiled_answered(started)
        return answer


COMPLETE, LARGE, GONE = "complete", "larger than the limit", "the client went away"


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, str]:
    """The body (or what was read of it) and COMPLETE, LARGE or GONE."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", GONE
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), COMPLETE
        if size > limit:
            return b"".join(chunks), LARGE


def _replaying(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A receive that hands over again what was read (`more`: the start of the body, whose
    rest follows), then whatever comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


async def _send_json(
    send: Send,
    body: bytes,
    content_type: str,
    path_header: str | None,
    *,
    status: int = 200,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    if path_header is not None:
        headers.append((HEADER.lower().encode(), path_header.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
