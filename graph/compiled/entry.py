"""Where the compiled read path meets the server: asked first for every HTTP query, it answers
or says why not, and the executor answers what it does not.

In development the answer says which path it took in the `X-TaskQL-Read-Path` header
(`compiled`, or `executor; <reason>`), and a debug log line says the same.
"""

import logging
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from strawberry.types.execution import ExecutionResult

from core.errors import TaskQLError
from graph.compiled.errors import Fallback
from graph.compiled.runner import COMPILED, ReadPath
from graph.context import Context
from graph.limits import QueryChecks

logger = logging.getLogger("taskql.compiled")

HEADER = "X-TaskQL-Read-Path"


@dataclass(slots=True)
class CompiledReads:
    """The read path and the checks it shares with the executor."""

    path: ReadPath
    checks: QueryChecks
    show_path: bool  # the development header

    async def answer(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> ExecutionResult | None:
        """The compiled answer, or None for the executor to give."""
        data, reason = await self._try(query, variables, context, operation_name)
        logger.debug("read path for %r: %s", operation_name or "<unnamed>", reason)
        if self.show_path and context.response is not None:
            header = reason if data is not None else f"executor; {reason}"
            context.response.headers[HEADER] = header
        if data is None:
            return None
        return ExecutionResult(data=data, errors=None)

    async def _try(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> tuple[dict[str, Any] | None, str]:
        if not isinstance(context.request, Request):
            return None, "not an HTTP request"
        if not context.token:
            return None, "no caller"
        try:
            claims = context.authenticator.access_claims(context.token)
            caller = self.path.caller_hint(claims.user_id) or await context.current_user()
        except TaskQLError:
            return None, "the token is refused"
        except Exception:  # the executor meets it again, and masks it
            return None, "loading the caller failed"
        if caller is None or caller.id is None:
            return None, "no caller"
        self.path.remember(caller)
        document = self.checks.valid_document(self.path.graphql, query)
        if document is None:
            return None, "the document has errors to report"
        try:
            plan, coerced = self.path.plan(query, document, operation_name, variables, caller)
            if isinstance(plan, str):
                return None, plan
            assert coerced is not None
            answer = await self.path.run(plan, coerced, caller)
        except Fallback:
            return None, "this request's values are the executor's to report"
        except Exception:  # a failing statement must not cost the answer: the executor retries
            logger.exception("compiled read failed; the executor answers instead")
            return None, "the compiled read failed"
        return answer.data, COMPILED
