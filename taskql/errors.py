"""The coded errors every layer may raise. GraphQL shows their code as `extensions.code`."""

from typing import ClassVar


class TaskQLError(Exception):
    """An expected failure whose message is safe to show to the caller."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, object]:
        # graphql-core copies an original error's `extensions` onto the GraphQL error.
        ext: dict[str, object] = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        return ext


class Unauthenticated(TaskQLError):
    code = "UNAUTHENTICATED"


class Forbidden(TaskQLError):
    code = "FORBIDDEN"


class NotFound(TaskQLError):
    code = "NOT_FOUND"


class BadUserInput(TaskQLError):
    code = "BAD_USER_INPUT"


class Conflict(TaskQLError):
    code = "CONFLICT"
