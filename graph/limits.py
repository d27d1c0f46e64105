"""Query limits with coded errors: depth, aliases, tokens, introspection; parse/validation caches.

Every error that leaves parsing or validation carries an `extensions.code`: QUERY_TOO_DEEP,
TOO_MANY_ALIASES, TOO_MANY_TOKENS, QUERY_TOO_COMPLEX, INTROSPECTION_DISABLED,
GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, or OPERATION_RESOLUTION_FAILURE (several
operations and no `operationName`). Variables that do not fit their declared
types are BAD_USER_INPUT. The request body limit lives in `taskql.limits` (PAYLOAD_TOO_LARGE).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

from core.settings import Settings

ExtensionFactory = Callable[[], SchemaExtension]
Rules = tuple[type[ASTValidationRule], ...]
Counts = tuple[int, int]

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

CACHE_SIZE = 256
CACHEABLE_QUERY_CHARS = 64 * 1024
COMPLEXITY_BUDGET = 100_000
# graphql-core's wording when `max_tokens` stops the lexer, and when the parser's own nesting
# guard trips; both are syntax errors, but the caller hit a limit, not a typo.
TOKEN_LIMIT_MARK = "tokens. Parsing aborted."  # noqa: S105 - not a password
NESTING_LIMIT_MARK = "nested too deeply. Parsing aborted."
# graphql-core's suggestions end a message: " Did you mean 'id'?" or " Did you mean 'a' or 'b'?"
SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    """Give `error` a code unless it already has one (cached errors are shared: idempotent)."""
    if error.extensions is None:
        error.extensions = {}
    error.extensions.setdefault("code", code)
    return error


def parse_error_code(error: GraphQLError) -> str:
    """The code of an error raised while parsing."""
    if TOKEN_LIMIT_MARK in error.message:
        return "TOO_MANY_TOKENS"
    if NESTING_LIMIT_MARK in error.message:
        return "QUERY_TOO_DEEP"
    return "GRAPHQL_PARSE_FAILED"


@dataclass
class _Measure:
    """Walks a document for its depth and alias count, each fragment once.

    Fragments are memoized per spread context, so one spread many times costs nothing extra
    (its aliases still count once per spread), and a fragment cycle, which the standard rules
    report, counts as zero here.
    """

    fragments: dict[str, FragmentDefinitionNode]
    memo: dict[tuple[str, bool], tuple[int, int]] = field(default_factory=dict)

    def selections(self, selection_set: SelectionSetNode | None, introspecting: bool) -> Counts:
        """(depth in field levels, aliases) of a selection set."""
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                name = selection.name.value
                inner = introspecting or name in INTROSPECTION_ROOTS
                sub_depth, sub_aliases = self.selections(selection.selection_set, inner)
                # Type wrappers nest linearly, and GraphiQL's own query asks for eight of them.
                level = 0 if inner and name == "ofType" else 1
                depth = max(depth, level + sub_depth)
                aliases += (selection.alias is not None) + sub_aliases
            elif isinstance(selection, InlineFragmentNode):
                sub_depth, sub_aliases = self.selections(selection.selection_set, introspecting)
                depth, aliases = max(depth, sub_depth), aliases + sub_aliases
            elif isinstance(selection, FragmentSpreadNode):
                sub_depth, sub_aliases = self.fragment(selection.name.value, introspecting)
                depth, aliases = max(depth, sub_depth), aliases + sub_aliases
        return depth, aliases

    def fragment(self, name: str, introspecting: bool) -> Counts:
        key = (name, introspecting)
        if key not in self.memo:
            definition = self.fragments.get(name)
            if definition is None:  # unknown: KnownFragmentNamesRule reports it
                return 0, 0
            self.memo[key] = (0, 0)  # in progress: a cycle back here adds nothing
            self.memo[key] = self.selections(definition.selection_set, introspecting)
        return self.memo[key]


def _operations(document: DocumentNode) -> Iterator[OperationDefinitionNode]:
    return (d for d in document.definitions if isinstance(d, OperationDefinitionNode))


def _label(operation: OperationDefinitionNode) -> str:
    return f"Operation '{operation.name.value}'" if operation.name else "The operation"


def _limit_error(operation: OperationDefinitionNode, message: str, code: str) -> GraphQLError:
    return GraphQLError(message, [operation], extensions={"code": code})


@dataclass(frozen=True)
class DocumentLimits:
    """Depth and alias limits, checked on the parsed document before the standard rules."""

    max_depth: int
    max_aliases: int

    def check(self, document: DocumentNode) -> list[GraphQLError]:
        """One coded error per operation over a limit; empty when the document is within."""
        measure = _Measure(
            {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        )
        errors: list[GraphQLError] = []
        for operation in _operations(document):
            depth, aliases = measure.selections(operation.selection_set, introspecting=False)
            if depth > self.max_depth:
                message = (
                    f"{_label(operation)} is nested {depth} levels deep; "
                    f"the limit is {self.max_depth}."
                )
                errors.append(_limit_error(operation, message, "QUERY_TOO_DEEP"))
            if aliases > self.max_aliases:
                message = (
                    f"{_label(operation)} uses {aliases} aliases; the limit is {self.max_aliases}."
                )
                errors.append(_limit_error(operation, message, "TOO_MANY_ALIASES"))
        return errors


class NoIntrospectionRule(NoSchemaIntrospectionCustomRule):
    """graphql-core's rule against `__schema` and `__type`, with a code and a plain message."""

    reported = False

    def report_error(self, error: GraphQLError) -> None:
        # The rule flags every field of an introspection type; once per document is enough.
        if self.reported:
            return
        self.reported = True
        super().report_error(
            GraphQLError(
                "Introspection is disabled on this server.",
                error.nodes,
                extensions={"code": "INTROSPECTION_DISABLED"},
            )
        )


class PreparedQueries:
    """Parse and validate with the limits, caching both by query text (one cache per schema).

    Keys are the query strings, whose hash Python caches, rather than documents, which hash
    their whole tree on every lookup. Long queries are not cached, so a stream of distinct
    large queries cannot grow memory.
    """

    def __init__(
        self,
        *,
        max_tokens: int,
        limits: DocumentLimits,
        size: int = CACHE_SIZE,
        hide_suggestions: bool = False,
    ) -> None:
        self.max_tokens = max_tokens
        self.limits = limits
        self.hide_suggestions = hide_suggestions
        self._parse_cached = lru_cache(maxsize=size)(self._parse)
        self._validate_cached = lru_cache(maxsize=size)(self._validate)

    def parse(self, query: str) -> DocumentNode:
        """The document, or a coded GraphQLSyntaxError."""
        return self._document(query)

    def _document(self, query: str) -> DocumentNode:
        if len(query) <= CACHEABLE_QUERY_CHARS:
            return self._parse_cached(query)
        return self._parse(query)

    def _parse(self, query: str) -> DocumentNode:
        try:
            return parse(query, max_tokens=self.max_tokens)
        except GraphQLSyntaxError as error:
            raise _with_code(error, parse_error_code(error)) from None

    def validate(
        self, schema: GraphQLSchema, query: str | None, document: DocumentNode, rules: Rules
    ) -> list[GraphQLError]:
        """Coded errors: the limits first, then (only within them) the standard rules."""
        if query is not None and len(query) <= CACHEABLE_QUERY_CHARS:
            return list(self._validate_cached(schema, query, rules))
        return list(self._check(schema, document, rules))

    def _validate(
        self, schema: GraphQLSchema, query: str, rules: Rules
    ) -> tuple[GraphQLError, ...]:
        return self._check(schema, self._document(query), rules)

    def _check(
        self, schema: GraphQLSchema, document: DocumentNode, rules: Rules
    ) -> tuple[GraphQLError, ...]:
        # An abusive document is refused on the cheap measurements alone: the standard rules
        # (overlapping fields above all) are what costs time on a large document.
        errors = self.limits.check(document) or validate_document(schema, document, rules)
        return tuple(self.shown(_validation_error(e)) for e in errors)

    def shown(self, error: GraphQLError) -> GraphQLError:
        """`error` as the caller sees it: without "Did you mean ...?" when the schema is
        hidden (introspection off), as the suggestions would spell out its field names."""
        if not self.hide_suggestions or not SUGGESTION.search(error.message):
            return error
        return GraphQLError(
            SUGGESTION.sub("", error.message),
            error.nodes,
            error.source,
            error.positions,
            error.path,
            error.original_error,
            error.extensions,
        )


def _validation_error(error: GraphQLError) -> GraphQLError:
    if isinstance(error, ValidationAbortedError):
        return GraphQLError(
            "The query is too complex to validate: it repeats too many fields.",
            extensions={"code": "QUERY_TOO_COMPLEX"},
        )
    return _with_code(error, "GRAPHQL_VALIDATION_FAILED")


class QueryLimits(SchemaExtension):
    """Parse and validate through `PreparedQueries`; code the variable errors of execution."""

    def __init__(self, prepared: PreparedQueries, rules: Rules) -> None:
        super().__init__()
        self.prepared = prepared
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.prepared.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield
        result = context.result
        if isinstance(result, (ExecutionResult, StrawberryExecutionResult)) and result.errors:
            shown = self.prepared.shown
            result.errors = [
                shown(_variable_error(e) if _is_variable_error(e) else e) for e in result.errors
            ]

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            context.graphql_document = self.prepared.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            errors = self.prepared.validate(
                context.schema._schema, context.query, document, context.validation_rules
            )
            # Strawberry's `operation_name` falls back to the first operation; the spec says
            # the caller must choose when there are several. (If Strawberry renames the field
            # that keeps the caller's own, the fallback keeps today's behaviour.)
            provided = getattr(context, "_provided_operation_name", context.operation_name)
            if not errors and provided is None and _several_operations(document):
                errors = [_choose_operation_error()]
            context.pre_execution_errors = errors
        yield


def _several_operations(document: DocumentNode) -> bool:
    operations = _operations(document)
    return next(operations, None) is not None and next(operations, None) is not None


def _choose_operation_error() -> GraphQLError:
    return GraphQLError(
        "The document holds several operations: say which to run in `operationName`.",
        extensions={"code": "OPERATION_RESOLUTION_FAILURE"},
    )


def _is_variable_error(error: GraphQLError) -> bool:
    # graphql-core's wording for variables that do not fit their declared type.
    return error.path is None and error.message.startswith("Variable '$")


def _variable_error(error: GraphQLError) -> GraphQLError:
    """The caller's input, not a bug: coded, and without the original exception, so that the
    masker shows it even when a scalar's parser raised a plain ValueError."""
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        extensions={"code": "BAD_USER_INPUT"},
    )


@dataclass(frozen=True)
class QueryChecks:
    """The parse and validation checks of one schema: its cache, and the rules on top of the
    standard ones. The executor runs them through `extension`; the compiled read path asks
    `valid_document` before it plans, so both accept and refuse the same documents."""

    prepared: PreparedQueries
    rules: Rules

    def extension(self) -> SchemaExtension:
        """A fresh extension for one operation (Strawberry asks for one per operation)."""
        return QueryLimits(self.prepared, self.rules)

    def valid_document(self, schema: GraphQLSchema, query: str) -> DocumentNode | None:
        """The parsed document when it passes every check (cached), else None."""
        try:
            document = self.prepared.parse(query)
        except GraphQLError:
            return None
        rules = (*specified_rules, *self.rules)
        return None if self.prepared.validate(schema, query, document, rules) else document


def query_checks(settings: Settings) -> QueryChecks:
    """The checks that enforce the limits of `settings`, sharing one cache."""
    # graphql-core bounds the work of its overlapping-fields rule, which is quadratic in
    # same-named fields; its default lets one 20 KB query burn a second of CPU. A fifth of it
    # leaves ordinary documents plenty of room (see tests/test_limits.py).
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = COMPLEXITY_BUDGET
    prepared = PreparedQueries(
        max_tokens=settings.max_tokens,
        limits=DocumentLimits(max_depth=settings.max_query_depth, max_aliases=settings.max_aliases),
        hide_suggestions=not settings.introspection_enabled,
    )
    rules: Rules = () if settings.introspection_enabled else (NoIntrospectionRule,)
    return QueryChecks(prepared, rules)
