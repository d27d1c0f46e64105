"""Schema assembly: one Query/Mutation per domain module, merged, with the configured limits."""

import time
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StreamResult
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from core.settings import Settings
from graph import auth, events, exports, imports, observe, projects, tasks, users
from graph.compiled.entry import CompiledReads
from graph.compiled.runner import ReadPath
from graph.context import Context
from graph.errors import MaskUnexpectedErrors
from graph.limits import QueryChecks, query_checks

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
    exports.Mutation,
)
SUBSCRIPTION_TYPES: tuple[type, ...] = (imports.Subscription, events.Subscription)

Query = merge_types("Query", QUERY_TYPES)
Mutation = merge_types("Mutation", MUTATION_TYPES)
Subscription = merge_types("Subscription", SUBSCRIPTION_TYPES)


class TaskQLSchema(strawberry.Schema):
    """The schema, with the compiled read path in front of the executor when one is attached.

    Strawberry logs every error with a traceback; expected ones are not worth it, and the
    masker already logs the unexpected ones with their request id."""

    checks: QueryChecks
    compiled: CompiledReads | None = None

    def compile_reads(self, engine: AsyncEngine, settings: Settings) -> None:
        """Answer the queries the compiler knows with one statement on `engine`."""
        path = ReadPath(
            self,
            engine,
            max_page_size=settings.max_page_size,
            cache_size=settings.compiled_plan_cache_size,
        )
        self.compiled = CompiledReads(path, self.checks, show_path=not settings.is_production)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        queries_allowed = allowed_operation_types is None or (
            OperationType.QUERY in allowed_operation_types
        )
        compiled = self.compiled
        if (
            compiled is not None
            and query
            and queries_allowed
            and isinstance(context_value, Context)
        ):
            started = time.perf_counter()
            answer = await compiled.answer(query, variable_values, context_value, operation_name)
            if answer is not None:
                if answer.errors is None:
                    observe.compiled_answered(started)
                return answer
        return await super().execute(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types,
            operation_extensions=operation_extensions,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        results = await super().stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )
        if observe.counts_subscriptions() and query:
            document = self.checks.valid_document(self._schema, query)
            if observe.is_subscription(document, operation_name):
                return observe.counted_subscription(results)
        return results

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(settings: Settings) -> TaskQLSchema:
    """The schema with the limits, caches and masking that `settings` ask for."""
    # Factories, not instances: Strawberry builds fresh extensions for every operation.
    checks = query_checks(settings)
    # ObserveOperations first: its operation hook ends last, after masking and coding errors.
    extensions: list[Callable[[], SchemaExtension]] = [
        observe.ObserveOperations,
        MaskUnexpectedErrors,
        checks.extension,
    ]
    schema = TaskQLSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )
    schema.checks = checks
    return schema
