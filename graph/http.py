"""GraphQL over HTTP: the `/graphql` endpoint for GET and POST, after the current spec.

- **Media types.** The answer is `application/graphql-response+json` when the client's `Accept`
  prefers it, else `application/json` (also for `*/*` and for no `Accept` at all); a client that
  accepts neither gets 406.
- **Status codes.** A request that is not a GraphQL request (a body that is not JSON, a
  parameter of the wrong type, no query, an unsupported content type) is a 4xx whatever the
  media type. A GraphQL *request error* (the document does not parse or validate, the variables
  do not fit, the operation cannot be picked, a persisted query is unknown) answers without
  `data`: 200 with `application/json`, as that media type's clients expect, and 400 with
  `application/graphql-response+json`. Once execution starts, the answer is 200 with `data`.
- **GET runs queries only**: a mutation over GET is 405 with `Allow: POST`. Subscriptions are
  served over WebSocket (graphql-transport-ws) at the same path; over HTTP they are refused
  with `SUBSCRIPTION_NEEDS_WEBSOCKET`.
- **Batching**: a JSON array of operations runs them one after another and answers an array,
  up to `BATCH_MAX_OPERATIONS` (0 turns it off). Each operation meets the query limits alone.
- **Persisted queries**: see `graph.persisted`.
- Every error is a GraphQL response: `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.file_uploads.utils import replace_placeholders_with_files
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from core.errors import RETRY_AFTER_SECONDS, Unauthenticated
from graph import observe
from graph.context import Context, connection_init_token
from graph.errors import only_unavailable
from graph.persisted import PersistedQueries, PersistedQueryError

logger = logging.getLogger("taskql.http")

RESPONSE_JSON = "application/graphql-response+json"
LEGACY_JSON = "application/json"
CONTENT_TYPES = {
    RESPONSE_JSON: "application/graphql-response+json; charset=utf-8",
    LEGACY_JSON: "application/json",
}

BAD_REQUEST = "BAD_REQUEST"
QUERIES_ONLY = frozenset({OperationType.QUERY})
QUERIES_AND_MUTATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
MAX_UPLOAD_FILES = 10
MAX_FORM_FIELDS = 100


class HttpProblem(Exception):
    """A request refused before any GraphQL runs: the same status for every media type."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in for this `Accept` header, or None when neither is
    acceptable. Ties go to `application/graphql-response+json`; wildcards mean JSON."""
    if accept is None or not accept.strip():
        return LEGACY_JSON
    best: tuple[float, int] = (0.0, 0)
    chosen: str | None = None
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == RESPONSE_JSON:
            candidate, rank = RESPONSE_JSON, 3
        elif media == LEGACY_JSON:
            candidate, rank = LEGACY_JSON, 2
        elif media in ("*/*", "application/*"):
            candidate, rank = LEGACY_JSON, 1
        else:
            continue
        if quality > 0 and (quality, rank) > best:
            best, chosen = (quality, rank), candidate
    return chosen


@dataclass(frozen=True, slots=True)
class Params:
    """One operation's request parameters."""

    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def params_of(payload: object) -> Params:
    """The parameters in one decoded request, each of the type the spec gives it."""
    if not isinstance(payload, dict):
        raise HttpProblem(400, BAD_REQUEST, "A GraphQL request must be a JSON object.")
    query = payload.get("query")
    variables = payload.get("variables")
    name = payload.get("operationName")
    extensions = payload.get("extensions")
    if not isinstance(query, str | None):
        raise HttpProblem(400, BAD_REQUEST, "The `query` parameter must be a string.")
    if not isinstance(variables, dict | None):
        raise HttpProblem(400, BAD_REQUEST, "The `variables` parameter must be a JSON object.")
    if not isinstance(name, str | None):
        raise HttpProblem(400, BAD_REQUEST, "The `operationName` parameter must be a string.")
    if not isinstance(extensions, dict | None):
        raise HttpProblem(400, BAD_REQUEST, "The `extensions` parameter must be a JSON object.")
    return Params(query, variables, name, extensions)


def _json(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise HttpProblem(400, BAD_REQUEST, f"{what} is not valid JSON.") from None


def _query_params(request: Request) -> dict[str, Any]:
    params = request.query_params
    payload: dict[str, Any] = {}
    for name in ("query", "operationName"):
        if name in params:
            payload[name] = params[name] or None
    for name in ("variables", "extensions"):
        if params.get(name):
            payload[name] = _json(params[name], f"The `{name}` parameter")
    return payload


def _media(content_type: str) -> tuple[str, dict[str, str]]:
    media, *params = (part.strip() for part in content_type.split(";"))
    options = {}
    for param in params:
        name, _, value = param.partition("=")
        options[name.strip().lower()] = value.strip().strip('"').lower()
    return media.lower(), options


@dataclass(slots=True)
class Outcome:
    """One operation's answer: its body, and its status under each media type."""

    body: dict[str, Any]
    strict_status: int = 200  # with application/graphql-response+json
    legacy_status: int = 200  # with application/json
    headers: dict[str, str] = field(default_factory=dict)

    def status(self, media: str) -> int:
        return self.strict_status if media == RESPONSE_JSON else self.legacy_status


def error_body(message: str, code: str) -> dict[str, Any]:
    """The GraphQL error shape of every refusal: `{"errors": [{"message", "extensions"}]}`."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def problem_outcome(problem: HttpProblem) -> Outcome:
    return Outcome(
        error_body(problem.message, problem.code),
        strict_status=problem.status,
        legacy_status=problem.status,
        headers=problem.headers,
    )


def request_error(message: str, code: str, status: int = 400) -> Outcome:
    """A GraphQL request error: no `data`; 200 for application/json clients."""
    return Outcome(error_body(message, code), strict_status=status)


def result_outcome(result: ExecutionResult) -> Outcome:
    """The outcome of an executed (or refused) operation."""
    errors = result.errors or []
    body: dict[str, Any] = {}
    if result.data is None and errors and all(error.path is None for error in errors):
        # A request error: parsing, validation or variable coercion failed, nothing ran.
        body["errors"] = [error.formatted for error in errors]
        codes = {(error.extensions or {}).get("code") for error in errors}
        status = 500 if "INTERNAL_SERVER_ERROR" in codes else 400
        outcome = Outcome(body, strict_status=status)
    else:
        body["data"] = result.data
        if errors:
            body["errors"] = [error.formatted for error in errors]
        outcome = Outcome(body)
    if result.extensions:
        body["extensions"] = result.extensions
    if only_unavailable(result.data, errors):  # the database is down: nothing to show yet
        outcome.strict_status = outcome.legacy_status = 503
        outcome.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return outcome


IdePage = Callable[[], str]


class GraphQLHttp:
    """Answers GET and POST requests on the GraphQL path (module docstring)."""

    def __init__(
        self,
        schema: Any,
        *,
        persisted: PersistedQueries,
        batch_max_operations: int,
        ide_page: IdePage | None,
    ) -> None:
        self.schema = schema
        self.persisted = persisted
        self.batch_max_operations = batch_max_operations
        self.ide_page = ide_page

    async def handle(self, request: Request, context: Context | None) -> Response:
        media = negotiate(request.headers.get("accept"))
        try:
            if request.method == "GET" and self._wants_ide(request):
                return self._ide()
            if media is None:
                raise HttpProblem(
                    406,
                    "NOT_ACCEPTABLE",
                    f"This endpoint answers in {RESPONSE_JSON} or {LEGACY_JSON}; the Accept "
                    "header allows neither.",
                )
            payload = await self._payload(request)
            assert context is not None  # only other methods come without one, refused above
            if isinstance(payload, list):
                return await self._batch(request, context, payload, media)
            outcome = await self._one(request, context, params_of(payload))
        except HttpProblem as problem:
            outcome = problem_outcome(problem)
        return self._respond(
            request, context, outcome.body, outcome.status(media or ""), media, outcome.headers
        )

    # --- reading the request ------------------------------------------------------------------

    def _wants_ide(self, request: Request) -> bool:
        params = request.query_params
        return (
            "query" not in params
            and "extensions" not in params
            and "text/html" in request.headers.get("accept", "")
        )

    def _ide(self) -> Response:
        if self.ide_page is None:
            raise HttpProblem(
                404,
                "NOT_FOUND",
                "The GraphiQL playground is turned off on this server (GRAPHIQL=false). Send "
                "GraphQL requests with POST, or with GET and a `query` parameter.",
            )
        return HTMLResponse(self.ide_page())

    async def _payload(self, request: Request) -> object:
        if request.method == "GET":
            return _query_params(request)
        if request.method != "POST":
            raise HttpProblem(
                405,
                "METHOD_NOT_ALLOWED",
                "GraphQL requests use GET or POST.",
                {"Allow": "GET, POST"},
            )
        media, options = _media(request.headers.get("content-type", ""))
        if media == "application/json":
            charset = options.get("charset", "utf-8")
            if charset not in ("utf-8", "utf8"):
                raise HttpProblem(
                    415, "UNSUPPORTED_MEDIA_TYPE", "GraphQL request bodies must be UTF-8."
                )
            body = await request.body()
            if not body.strip():
                raise HttpProblem(400, BAD_REQUEST, "The request body is empty.")
            return _json(body, "The request body")
        if media == "multipart/form-data":
            return await self._multipart(request)
        raise HttpProblem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Send GraphQL requests as `Content-Type: application/json`, or as "
            "`multipart/form-data` for file uploads.",
        )

    async def _multipart(self, request: Request) -> object:
        """The operations of a GraphQL multipart request, with its files in place."""
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_FORM_FIELDS)
        except MultiPartException as exc:
            raise HttpProblem(400, BAD_REQUEST, f"Unreadable multipart body: {exc}.") from None
        operations, files_map = form.get("operations"), form.get("map", "{}")
        if not isinstance(operations, str) or not isinstance(files_map, str):
            raise HttpProblem(
                400,
                BAD_REQUEST,
                "A multipart GraphQL request needs `operations` and `map` form fields.",
            )
        payload = _json(operations, "The `operations` field")
        mapping = _json(files_map, "The `map` field")
        if not isinstance(payload, dict | list) or not isinstance(mapping, dict):
            raise HttpProblem(400, BAD_REQUEST, "`operations` and `map` must be JSON objects.")
        files: dict[str, UploadFile] = {}
        for name, paths in mapping.items():
            upload = form.get(name)
            if not isinstance(upload, UploadFile):
                raise HttpProblem(400, BAD_REQUEST, f"The file `{name}` named in `map` is missing.")
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise HttpProblem(400, BAD_REQUEST, "Each `map` entry must be a list of paths.")
            files[name] = upload
        try:
            if isinstance(payload, list):
                return [replace_placeholders_with_files(item, mapping, files) for item in payload]
            return replace_placeholders_with_files(payload, mapping, files)
        except (KeyError, IndexError, ValueError, TypeError):
            raise HttpProblem(
                400, BAD_REQUEST, "A `map` path does not point into `operations`."
            ) from None

    # --- running operations -------------------------------------------------------------------

    async def _batch(
        self, request: Request, context: Context, payload: list[Any], media: str
    ) -> Response:
        if request.method == "GET":
            raise HttpProblem(400, BAD_REQUEST, "Batches are sent with POST.")
        if self.batch_max_operations == 0:
            raise HttpProblem(
                400, "BATCHING_DISABLED", "Batched requests are turned off on this server."
            )
        if not payload:
            raise HttpProblem(400, BAD_REQUEST, "The batch holds no operations.")
        if len(payload) > self.batch_max_operations:
            raise HttpProblem(
                400,
                "BATCH_TOO_LARGE",
                f"A batch may hold at most {self.batch_max_operations} operations; this one "
                f"holds {len(payload)}.",
            )
        if not all(isinstance(item, dict) for item in payload):
            raise HttpProblem(400, BAD_REQUEST, "Each operation in a batch must be a JSON object.")
        bodies = []
        for item in payload:  # in order: a later mutation may depend on an earlier one
            try:
                outcome = await self._one(request, context, params_of(item))
            except HttpProblem as problem:
                outcome = problem_outcome(problem)
            bodies.append(outcome.body)
        return self._respond(request, context, bodies, 200, media, {})

    async def _one(self, request: Request, context: Context, params: Params) -> Outcome:
        pending = observe.operation_started()
        outcome = await self._operation(request, context, params)
        errors = outcome.body.get("errors")
        if errors and not pending.done:
            observe.unrecorded(pending, errors[0].get("extensions", {}).get("code", ""))
        return outcome

    async def _operation(self, request: Request, context: Context, params: Params) -> Outcome:
        try:
            query = self.persisted.resolve(params.query, params.extensions)
        except PersistedQueryError as exc:
            if exc.code == BAD_REQUEST:  # not a GraphQL request at all
                raise HttpProblem(400, exc.code, exc.message) from None
            return request_error(exc.message, exc.code)
        if query is None or not query.strip():
            raise HttpProblem(
                400, BAD_REQUEST, "The request has no GraphQL document in its `query` parameter."
            )
        allowed = QUERIES_ONLY if request.method == "GET" else QUERIES_AND_MUTATIONS
        try:
            result = await self.schema.execute(
                query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=params.extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type == OperationType.SUBSCRIPTION:
                outcome = request_error(
                    "Subscriptions are served over WebSocket: connect to this same path with "
                    "the graphql-transport-ws protocol (graphql-ws clients do).",
                    "SUBSCRIPTION_NEEDS_WEBSOCKET",
                )
                outcome.legacy_status = 400
                return outcome
            return Outcome(
                error_body(
                    "GET runs queries only: send mutations with POST.", "METHOD_NOT_ALLOWED"
                ),
                strict_status=405,
                legacy_status=405,
                headers={"Allow": "POST"},
            )
        except CannotGetOperationTypeError:
            message = (
                f"The document has no operation named '{params.operation_name}'."
                if params.operation_name
                else "The document holds several operations: say which to run in `operationName`."
            )
            return request_error(message, "OPERATION_RESOLUTION_FAILURE")
        return result_outcome(result)

    def _respond(
        self,
        request: Request,
        context: Context | None,
        body: object,
        status: int,
        media: str | None,
        headers: Mapping[str, str],
    ) -> Response:
        response = Response(
            orjson.dumps(body),
            status_code=status,
            media_type=CONTENT_TYPES[media or LEGACY_JSON],
            headers=dict(headers),
        )
        sub_response = context.response if context is not None else None
        if sub_response is not None:  # headers resolvers set (the read-path header, cookies)
            response.headers.raw.extend(
                (name, value)
                for name, value in sub_response.headers.raw
                if name not in (b"content-length", b"content-type")
            )
        if request.method == "GET":
            response.headers["Vary"] = "Accept, Authorization"
        return response


NO_ACK_PAYLOAD: UnsetType = UNSET


class TaskQLRouter(GraphQLRouter[Context, None]):
    """The GraphQL router: HTTP requests go to `GraphQLHttp`, WebSocket connections to
    Strawberry's graphql-transport-ws handler, and authenticate in their `connection_init`.

    Messages are encoded by orjson.
    """

    def __init__(self, schema: Any, *, http: GraphQLHttp, **options: Any) -> None:
        super().__init__(schema, **options)
        self.http = http

        async def other_methods(request: Request) -> Response:
            """PUT, PATCH, DELETE: 405 in the GraphQL error shape, allowing GET and POST."""
            return await http.handle(request, None)

        self.add_api_route(
            "", other_methods, methods=["PUT", "PATCH", "DELETE"], include_in_schema=False
        )

    def encode_json(self, data: object) -> str:
        # Used for WebSocket messages (HTTP answers are encoded by GraphQLHttp): text, because
        # Strawberry sends bytes as binary frames, which browsers' graphql-ws cannot read.
        return orjson.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def run(  # type: ignore[override]
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            return await super().run(request, context=context, root_value=root_value)
        return await self.http.handle(request, context)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        token = connection_init_token(context.connection_params)
        if token is None:
            return NO_ACK_PAYLOAD  # anonymous: fields that need a user answer UNAUTHENTICATED
        context.set_token(token)
        try:
            await context.current_user()
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message}) from exc
        return NO_ACK_PAYLOAD
