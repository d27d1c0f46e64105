"""What mutation inputs share: telling an unset field from an explicit null."""

from typing import TypeGuard, TypeVar

import strawberry

from core.errors import BadUserInput

T = TypeVar("T")


def given(value: T | None, field: str) -> TypeGuard[T]:
    """Whether an optional input field was sent; an explicit null is BAD_USER_INPUT."""
    if value is None:
        raise BadUserInput(f"`{field}` cannot be null.", field=field)
    return value is not strawberry.UNSET
