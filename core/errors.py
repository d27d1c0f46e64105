"""The coded errors every layer may raise; the API layers show `code` and `field` to the caller.

`field` names the offending input in Python's words (`assignee_id`); graph/ turns it into the
GraphQL name (`assigneeId`) for `extensions.field`.
"""

from typing import ClassVar


class TaskQLError(Exception):
    """An expected failure whose message is safe to show to the caller."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(TaskQLError):
    code = "UNAUTHENTICATED"


class NotFound(TaskQLError):
    code = "NOT_FOUND"


class BadUserInput(TaskQLError):
    code = "BAD_USER_INPUT"


class Conflict(TaskQLError):
    code = "CONFLICT"
