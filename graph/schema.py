"""Schema assembly: one Query/Mutation per domain module, merged, with the configured limits."""

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from core.settings import Settings
from graph import auth, imports, projects, tasks, users
from graph.errors import MaskUnexpectedErrors
from graph.limits import limit_extensions

QUERY_TYPES: tuple[type, ...] = (
    auth.Query,
    users.Query,
    projects.Query,
    tasks.Query,
    imports.Query,
)
MUTATION_TYPES: tuple[type, ...] = (
    auth.Mutation,
    users.Mutation,
    projects.Mutation,
    tasks.Mutation,
    imports.Mutation,
)
SUBSCRIPTION_TYPES: tuple[type, ...] = (imports.Subscription,)

Query = merge_types("Query", QUERY_TYPES)
Mutation = merge_types("Mutation", MUTATION_TYPES)
Subscription = merge_types("Subscription", SUBSCRIPTION_TYPES)


class TaskQLSchema(strawberry.Schema):
    """Strawberry logs every error with a traceback; expected ones are not worth it, and the
    masker already logs the unexpected ones with their request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the limits, caches and masking that `settings` ask for."""
    # Factories, not instances: Strawberry builds fresh extensions for every operation.
    extensions: list[Callable[[], SchemaExtension]] = [
        MaskUnexpectedErrors,
        *limit_extensions(settings),
    ]
    return TaskQLSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )
