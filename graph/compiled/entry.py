"""Where the compiled read path meets the server: asked first for every HTTP query, it answers
or says why not, and the executor answers what it does not.

Two doors lead here: `taskql.front` for plain JSON POSTs (before FastAPI and Strawberry parse
anything), and the schema's `execute` for every other HTTP request. A request the front could
not answer carries its reason in the ASGI scope, so the schema does not try again.

In development the answer says which path it took in the `X-TaskQL-Read-Path` header
(`compiled`, or `executor; <reason>`), and a debug log line says the same.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from strawberry.types.execution import ExecutionResult

from auth.policy import Person
from auth.sessions import Authenticator
from core.errors import ServiceUnavailable, TaskQLError
from db.outage import is_outage
from graph.compiled.errors import Fallback
from graph.compiled.runner import COMPILED, ReadPath
from graph.context import Context
from graph.errors import log_outage, unavailable_error
from graph.limits import QueryChecks
from graph.observe import name_operation, remember_user

logger = logging.getLogger("taskql.compiled")

HEADER = "X-TaskQL-Read-Path"
TRIED = "taskql.read_path"  # the ASGI scope key of the front's reason
UNAVAILABLE = f"{COMPILED}; the database is unavailable"

CallerLoader = Callable[[], Awaitable[Person | None]]
Data = dict[str, Any]


@dataclass(frozen=True, slots=True)
class HttpRead:
    """One GraphQL request over HTTP, as the compiled path needs it."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    token: str | None
    authenticator: Authenticator
    load_caller: CallerLoader  # the caller in full, when no recent note of them is at hand


@dataclass(slots=True)
class CompiledReads:
    """The read path and the checks it shares with the executor."""

    path: ReadPath
    checks: QueryChecks
    show_path: bool  # the development header

    def header(self, data: Data | None, reason: str) -> str | None:
        """The development header's value, None in production."""
        if not self.show_path:
            return None
        return reason if data is not None else f"executor; {reason}"

    async def answer(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> ExecutionResult | None:
        """The compiled answer for the schema's `execute`, or None for the executor to give."""
        request = context.request
        if not isinstance(request, Request):
            return None  # WebSocket operations: their messages are encoded elsewhere
        tried = request.scope.get(TRIED)
        if tried is not None:
            data, reason = None, tried
        else:
            read = HttpRead(
                query,
                variables,
                operation_name,
                context.token,
                context.authenticator,
                context.current_user,
            )
            try:
                data, reason = await self.attempt(read)
            except ServiceUnavailable:
                # The executor would only wait for the same database again.
                if self.show_path and context.response is not None:
                    context.response.headers[HEADER] = UNAVAILABLE
                return ExecutionResult(data=None, errors=[unavailable_error()])
        header = self.header(data, reason)
        if header is not None and context.response is not None:
            context.response.headers[HEADER] = header
        return None if data is None else ExecutionResult(data=data, errors=None)

    async def attempt(self, read: HttpRead) -> tuple[Data | None, str]:
        """(the response's `data`, COMPILED), or (None, why the executor must answer).

        ServiceUnavailable when the database is down or timed out: the executor could only
        wait for it again, so the caller answers SERVICE_UNAVAILABLE at once."""
        data, reason = await self._try(read)
        logger.debug("read path for %r: %s", read.operation_name or "<unnamed>", reason)
        return data, reason

    async def _try(self, read: HttpRead) -> tuple[Data | None, str]:
        query, variables, operation_name = read.query, read.variables, read.operation_name
        token, authenticator, load_caller = read.token, read.authenticator, read.load_caller
        if not token:
            return None, "no caller"
        try:
            claims = authenticator.access_claims(token)
            hint = self.path.caller_hint(claims.user_id, claims.version)
            caller = hint or await load_caller()
        except TaskQLError:
            return None, "the token is refused"
        except Exception as exc:  # the executor meets it again, and masks it
            _raise_outage(exc, "loading the caller")
            return None, "loading the caller failed"
        if caller is None or caller.id is None:
            return None, "no caller"
        self.path.remember(caller, claims.version)
        remember_user(caller.id)
        document = self.checks.valid_document(self.path.graphql, query)
        if document is None:
            return None, "the document has errors to report"
        name_operation(operation_name, document)
        try:
            plan, coerced = self.path.plan(query, document, operation_name, variables, caller)
            if isinstance(plan, str):
                return None, plan
            assert coerced is not None
            answer = await self.path.run(plan, coerced, caller, claims.version)
        except Fallback as exc:
            return None, exc.reason
        except Exception as exc:
            # A failing statement must not cost the answer: the executor retries, unless the
            # database is down (it would only wait for it again).
            _raise_outage(exc, "the compiled read")
            logger.exception("compiled read failed; the executor answers instead")
            return None, "the compiled read failed"
        return answer.data, COMPILED


def _raise_outage(exc: Exception, where: str) -> None:
    """ServiceUnavailable instead of `exc` when the database is down or timed out."""
    if is_outage(exc):
        log_outage(where, exc)
        raise ServiceUnavailable from exc
