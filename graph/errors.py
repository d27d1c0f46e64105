"""Error masking: coded errors keep their message and show their code (and the GraphQL name of
the offending input field) as extensions; anything unexpected is hidden and logged."""

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from core.errors import TaskQLError
from core.request_id import current_request_id

logger = logging.getLogger("taskql.graph")

INTERNAL_MESSAGE = "Internal server error."


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only exceptions raised by our code that are not coded errors.

    Errors without an original exception are parse and validation errors: they stay visible.
    """
    original = error.original_error
    return original is not None and not isinstance(original, (TaskQLError, GraphQLError))


def graphql_name(python_name: str) -> str:
    """The GraphQL (camelCase) name of a Python field name: `assignee_id` -> `assigneeId`."""
    head, *rest = python_name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def coded_extensions(error: TaskQLError) -> dict[str, object]:
    """`extensions` for a coded error: its code, and the input field it names, if any."""
    extensions: dict[str, object] = {"code": error.code}
    if error.field is not None:
        extensions["field"] = graphql_name(error.field)
    return extensions


class MaskUnexpectedErrors(MaskErrors):
    """Replace unexpected errors with a generic one carrying the request id, and log them."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
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
