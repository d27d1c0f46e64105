"""Schema assembly: one Query/Mutation per domain module, merged, with the configured limits."""

from collections.abc import Callable

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.disable_introspection import DisableIntrospection
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from graph import auth
from graph.errors import MaskUnexpectedErrors
from taskql.settings import Settings

QUERY_TYPES: tuple[type, ...] = (auth.Query,)
MUTATION_TYPES: tuple[type, ...] = (auth.Mutation,)

Query = merge_types("Query", QUERY_TYPES)
Mutation = merge_types("Mutation", MUTATION_TYPES)


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
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=256),
        lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return TaskQLSchema(query=Query, mutation=Mutation, extensions=extensions)
