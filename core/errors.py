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

    def details(self) -> dict[str, object]:
        """Extra `extensions` entries for the caller, beside `code` and `field`."""
        return {}


class Unauthenticated(TaskQLError):
    code = "UNAUTHENTICATED"


class NotFound(TaskQLError):
    code = "NOT_FOUND"


class BadUserInput(TaskQLError):
    code = "BAD_USER_INPUT"


class Conflict(TaskQLError):
    code = "CONFLICT"


class TooManyRequests(TaskQLError):
    """Refused before doing the work, for now: `retry_after` says in how many seconds to retry."""

    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after

    def details(self) -> dict[str, object]:
        return {"retryAfter": self.retry_after}


UNAVAILABLE_MESSAGE = "The database is unavailable; retry shortly."
RETRY_AFTER_SECONDS = 5  # HTTP answers' `Retry-After` when the database is unavailable


class ServiceUnavailable(TaskQLError):
    """The database is down, refusing, or not answering within its timeouts: not a bug, and
    worth retrying (db/outage.py tells these failures apart)."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, message: str = UNAVAILABLE_MESSAGE) -> None:
        super().__init__(message)


class TooManySubscriptions(TaskQLError):
    """A WebSocket connection or a server process holds its maximum of subscriptions."""

    code = "TOO_MANY_SUBSCRIPTIONS"
