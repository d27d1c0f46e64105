"""Running compiled reads: plan once per operation shape, then one statement per request.

A plan is keyed by the query text, the operation name, the caller's role and the shape of the
variables (which are null, booleans and enums by value, list lengths), so everything that
changes the SQL is part of the key and everything else is a bound parameter. Plans live in a
bounded LRU cache, and so does the knowledge that an operation cannot be compiled.
"""

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
import sqlalchemy as sa
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry import Schema

from auth.policy import Person
from db.direct import fetch_row, supports_direct_reads
from db.engine import READ_OPTION
from db.models import Role, User
from graph.compiled.compiler import Binding, Build, role_of
from graph.compiled.errors import Fallback, Unsupported
from graph.compiled.jsonsql import JsonSql
from graph.compiled.roots import Root, root
from graph.compiled.selection import Collector

logger = logging.getLogger("taskql.compiled")

COMPILED = "compiled"
CALLER_HINTS = 4096
USER = User.__table__  # type: ignore[attr-defined]


def caller_guard() -> Any:
    """The caller's role if their account is active and the token's version is still theirs,
    else null: the statement's first column.

    A plan is made for a role; the statement itself checks, in its own snapshot, that the
    caller still has it and that the token is not revoked, so the caller needs no statement of
    their own (and no cached note of a caller can let a revoked token through)."""
    caller = sa.bindparam("caller_id", value=None, type_=sa.Integer)
    version = sa.bindparam("caller_token_version", value=None, type_=sa.Integer)
    active = sa.select(USER.c.role).where(
        USER.c.id == caller, USER.c.is_active.is_(True), USER.c.token_version == version
    )
    return sa.cast(active.scalar_subquery(), sa.Text).label("caller_role")


@dataclass(frozen=True, slots=True)
class Caller:
    """What planning and the caller check need of a caller: the id and the role."""

    id: int
    role: Role


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled operation: the statement's text and how to fill its parameters."""

    sql: str  # its first column is the caller's role now (see `caller_guard`)
    names: tuple[str, ...]
    constants: dict[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]
    roots: tuple[Root, ...]
    bindings: tuple[Binding, ...]

    def parameters(
        self, variables: VariableValues, caller_id: int, token_version: int
    ) -> list[Any]:
        """The statement's parameters for one request (Fallback when a value is refused)."""
        values: dict[str, Any] = {"caller_id": caller_id, "caller_token_version": token_version}
        for binding in self.bindings:
            values.update(binding.bind(get_argument_values(binding.field, binding.node, variables)))
        out: list[Any] = []
        for name in self.names:
            value = values[name] if name in values else self.constants[name]
            processor = self.processors.get(name)
            out.append(processor(value) if processor is not None and name in values else value)
        return out


@dataclass(frozen=True, slots=True)
class Answer:
    """A compiled response: the root keys and the JSON text the database built for each."""

    data: dict[str, orjson.Fragment]


class BoundedCache(OrderedDict[Hashable, Any]):
    """A least-recently-used mapping of at most `size` entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_fresh(self, key: Hashable) -> Any:
        if key not in self:
            return None
        self.move_to_end(key)
        return self[key]

    def put(self, key: Hashable, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def variables_shape(value: Any) -> Hashable:
    """What of a variable's value changes the SQL: nulls, booleans, enums, list lengths, which
    input fields are set, empty strings; not the ids and texts, which are bound."""
    if value is None or isinstance(value, bool | Enum):
        return value
    if isinstance(value, dict):
        return tuple((k, variables_shape(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(variables_shape(v) for v in value)
    if isinstance(value, str):
        return "S" if value else ""
    return type(value).__name__


class ReadPath:
    """Compiles and runs the queries it can; says why for the ones it cannot."""

    def __init__(
        self, schema: Schema, engine: AsyncEngine, *, max_page_size: int, cache_size: int
    ) -> None:
        self.schema = schema
        self.graphql: GraphQLSchema = schema._schema
        self.engine = engine
        self.direct = supports_direct_reads(engine)
        self.json = JsonSql(engine.dialect.name)
        self.max_page_size = max_page_size
        self.plans = BoundedCache(cache_size)
        # The role each recent caller had at a token version: a hint to plan with, which every
        # statement checks. A role change moves the version on, so a new token misses the hint.
        self.callers = BoundedCache(CALLER_HINTS)

    def caller_hint(self, user_id: int, token_version: int) -> "Caller | None":
        """The caller as last seen (id and role) with this token version, if recently seen."""
        seen = self.callers.get_fresh(user_id)
        if seen is None or seen[1] != token_version:
            return None
        return Caller(user_id, seen[0])

    def remember(self, caller: Person, token_version: int) -> None:
        """Note the role of a caller whose token carries `token_version`."""
        self.callers.put(caller.id, (caller.role, token_version))

    def plan(
        self,
        query: str,
        document: DocumentNode,
        operation_name: str | None,
        raw_variables: dict[str, Any] | None,
        caller: Person,
    ) -> tuple[Plan | str, VariableValues | None]:
        """The plan for this request (or why there is none), and its coerced variables."""
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return "no single operation to run", None
        if operation.operation != OperationType.QUERY:
            return f"a {operation.operation.value}", None
        coerced = get_variable_values(
            self.graphql, operation.variable_definitions or (), raw_variables or {}
        )
        if isinstance(coerced, list):
            return "variables the executor must report on", None
        key = (query, operation_name, role_of(caller), variables_shape(coerced.coerced))
        found = self.plans.get_fresh(key)
        if found is None:
            found = self._compile(document, operation, coerced, caller)
            self.plans.put(key, found)
        return found, coerced

    def _compile(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues,
        caller: Person,
    ) -> Plan | str:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        build = Build(
            json=self.json,
            graphql=self.graphql,
            strawberry=self.schema,
            collector=Collector(fragments, variables),
            variables=variables,
            caller=caller,
            max_page_size=self.max_page_size,
        )
        try:
            selected = build.collector.fields("Query", [operation.selection_set])
            if any(f.name.startswith("__") and f.name != "__typename" for f in selected):
                raise Unsupported("introspection")
            roots = tuple(root(build, field) for field in selected)
        except Unsupported as exc:
            return exc.reason
        return self._statement(roots, build.bindings)

    def _statement(self, roots: Sequence[Root], bindings: list[Binding]) -> Plan:
        # As text: the drivers would decode JSON columns, and the text goes out as it is.
        columns = [
            sa.cast(r.sql, sa.Text).label(f"r{i}") for i, r in enumerate(roots) if r.sql is not None
        ]
        statement = sa.select(caller_guard(), *columns)
        compiled = statement.compile(
            dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        names = tuple(compiled.positiontup or ())
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in names:
            # An expanded IN list's parameters (`status_1_1`) take their list's type.
            bind = compiled.binds.get(name)
            if bind is None:
                bind = compiled.binds[name.rsplit("_", 1)[0]]
            processor = bind.type.dialect_impl(self.engine.dialect).bind_processor(
                self.engine.dialect
            )
            if processor is not None:
                processors[name] = processor
        constants = {
            name: (processors[name](value) if name in processors else value)
            for name, value in compiled.params.items()
        }
        return Plan(compiled.string, names, constants, processors, tuple(roots), tuple(bindings))

    async def run(
        self, plan: Plan, variables: VariableValues, caller: Person, token_version: int
    ) -> Answer:
        """One statement; Fallback when the executor must answer instead (a value to report, a
        caller who is no longer what the plan was made for, or a revoked token)."""
        assert caller.id is not None
        parameters = plan.parameters(variables, caller.id, token_version)
        if self.direct:  # PostgreSQL: on the driver, from the engine's pool (db/direct.py)
            role, *row = await fetch_row(self.engine, plan.sql, parameters)
        else:
            async with self.engine.connect() as connection:
                # A read: no BEGIN/ROLLBACK round trips (db/engine.py).
                await connection.execution_options(**{READ_OPTION: True})
                result = await connection.exec_driver_sql(plan.sql, tuple(parameters))
                role, *row = tuple(result.one())
        if role != caller.role.value:
            self.callers.pop(caller.id, None)
            raise Fallback("the caller check refused the caller: revoked, deactivated or changed")
        values = iter(row)
        data: dict[str, orjson.Fragment] = {}
        for root_field in plan.roots:
            if root_field.sql is None:
                data[root_field.key] = orjson.Fragment(root_field.constant)
                continue
            value = next(values)
            if value is None:
                if root_field.null_is_error:
                    raise Fallback
                data[root_field.key] = orjson.Fragment(b"null")
            else:
                data[root_field.key] = orjson.Fragment(value)
        return Answer(data)
