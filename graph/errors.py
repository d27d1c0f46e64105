"""Error masking: coded errors keep their message and show their code (and the GraphQL name of
the offending input field) as extensions; a database outage is SERVICE_UNAVAILABLE; anything
else unexpected is hidden and logged."""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from core.errors import ServiceUnavailable, TaskQLError
from core.request_id import current_request_id
from db.outage import describe, is_outage

logger = logging.getLogger("taskql.graph")

INTERNAL_MESSAGE = "Internal server error."


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only exceptions raised by our code that are not coded errors.

    Errors without an original exception are parse and validation errors: they stay visible.
    """
    original = error.original_error
    return original is not None and not isinstance(original, (TaskQLError, GraphQLError))


def is_outage_error(error: GraphQLError) -> bool:
    """Whether an error comes from the database being down, refusing or too slow (db.outage)."""
    original = error.original_error
    return is_unexpected(error) and original is not None and is_outage(original)


def unavailable_error(error: GraphQLError | None = None) -> GraphQLError:
    """SERVICE_UNAVAILABLE, in the place of `error` (or for the whole operation)."""
    coded = ServiceUnavailable()
    return GraphQLError(
        message=coded.message,
        nodes=error.nodes if error else None,
        source=error.source if error else None,
        positions=error.positions if error else None,
        path=error.path if error else None,
        original_error=coded,
        extensions={"code": coded.code},
    )


def log_outage(where: str, exc: BaseException) -> None:
    """One warning line, no traceback: an outage is the database's state, not our bug."""
    logger.warning(
        "database unavailable in %s (request %s): %s", where, current_request_id(), describe(exc)
    )


def only_unavailable(data: Mapping[str, Any] | None, errors: Sequence[GraphQLError]) -> bool:
    """Whether an answer says only that the database is unavailable: a SERVICE_UNAVAILABLE
    error and nothing to show (no data, or every root field null). HTTP answers it 503."""
    if not any((e.extensions or {}).get("code") == ServiceUnavailable.code for e in errors):
        return False
    return data is None or all(value is None for value in data.values())


def graphql_name(python_name: str) -> str:
    """The GraphQL (camelCase) name of a Python field name: `assignee_id` -> `assigneeId`."""
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def coded_extensions(error: TaskQLError) -> dict[str, object]:
    """`extensions` for a coded error: its code, and the input field it names, if any."""
    extensions: dict[str, object] = {"code": error.code}
    if error.field is not None:
        extensions["field"] = graphql_name(error.field)
    extensions.update(error.details())
    return extensions


class MaskUnexpectedErrors(MaskErrors):
    """Replace unexpected errors with a generic one carrying the request id, and log them."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        outages = [error for error in errors if is_outage_error(error)]
        if outages:
            where = ", ".join(".".join(map(str, e.path or [])) or "operation" for e in outages)
            assert outages[0].original_error is not None
            log_outage(where, outages[0].original_error)
            ids = {id(e) for e in outages}
            errors = [unavailable_error(e) if id(e) in ids else e for e in errors]
        for error in errors:
            if isinstance(error.original_error, TaskQLError):
                error.extensions = {
                    **(error.extensions or {}),
                    **coded_extensions(error.original_error),
                }
        return super()._process_errors(errors)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = current_request_id()
        logger.error(
            "unexpected error in %s (request %s)",
            ".".join(str(p) for p in error.path or []) or "operation",
            request_id,
            exc_info=error.original_error,
        )
        return GraphQLError(
            message=INTERNAL_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
