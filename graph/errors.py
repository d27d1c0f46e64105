"""Error masking: coded errors keep their message, anything unexpected is hidden and logged."""

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from taskql.errors import TaskQLError
from taskql.request_id import current_request_id

logger = logging.getLogger("taskql.graph")

INTERNAL_MESSAGE = "Internal server error."


def is_unexpected(error: GraphQLError) -> bool:
    """Mask only exceptions raised by our code that are not coded errors.

    Errors without an original exception are parse and validation errors: they stay visible.
    """
    original = error.original_error
    return original is not None and not isinstance(original, (TaskQLError, GraphQLError))


class MaskUnexpectedErrors(MaskErrors):
    """Replace unexpected errors with a generic one carrying the request id, and log them."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=INTERNAL_MESSAGE)

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
