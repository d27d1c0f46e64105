"""What resolvers share: a DataLoader's value without a coroutine when it is at hand, and the
classes that `strawberry.lazy` references name."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types.lazy_type import LazyType

M = TypeVar("M")
R = TypeVar("R")


def loaded(value: Awaitable[M], convert: Callable[[M], R]) -> R | Awaitable[R]:
    """`convert` of a DataLoader's value: at once when the loader already holds it, else an
    awaitable of it (graphql-core accepts either from a resolver)."""
    if isinstance(value, asyncio.Future) and value.done():
        return convert(value.result())

    async def later() -> R:
        return convert(await value)

    return later()


def lazy_class(module: str, name: str) -> Any:
    """The class a `strawberry.lazy(module)` reference to `name` resolves to.

    A type that refers back up the domain order (User.projects, Project.tasks) builds its nodes
    through this, as its annotation does, instead of importing the module that imports it.
    """
    return LazyType(name, module).resolve_type()
