"""Planning: an operation's selection, walked field by field into one SQL statement.

Each field is compiled from what the executor declares for it: plain fields read the column of
their Python name; the permission classes on a field are looked up and each must have a rule
here (or the operation falls back); relations and lists use the domains' row scopes, filters,
sort keys and cursor rules. A caller's role is fixed for a plan, so rules decide at planning time,
never per row.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

import sqlalchemy as sa
from graphql import GraphQLEnumType, GraphQLField, GraphQLSchema
from graphql.execution.values import VariableValues, get_argument_values
from strawberry import Schema
from strawberry.permission import PermissionExtension

from auth import policy
from auth.policy import Person
from db.models import Role
from db.scopes import ReadScope
from graph import permissions as perms
from graph.compiled.errors import Unsupported
from graph.compiled.jsonsql import JsonSql, sql_string
from graph.compiled.selection import Collector, Selected

# Computes the bound values of one field from its arguments (and the caller's id).
ArgumentBinder = Callable[[dict[str, Any]], dict[str, Any]]

DATETIME_SCALARS = frozenset({"DateTime"})
PLAIN_SCALARS = frozenset({"Int", "String", "ID", "Float"})
# Permission classes whose rule the compiler knows; any other one makes the operation fall back.
ALWAYS_TRUE_FOR_A_CALLER = (perms.IsAuthenticated,)


@dataclass(slots=True)
class Binding:
    """A field whose arguments feed bound parameters, evaluated again for every request."""

    field: GraphQLField
    node: Any
    bind: ArgumentBinder


@dataclass(slots=True)
class Build:
    """What one planning pass collects: bound parameters, and the fields that bind them."""

    json: JsonSql
    graphql: GraphQLSchema
    strawberry: Schema
    collector: Collector
    variables: VariableValues
    caller: Person
    max_page_size: int
    bindings: list[Binding] = field(default_factory=list)
    _names: "count[int]" = field(default_factory=count)

    @property
    def is_admin(self) -> bool:
        return policy.is_admin(self.caller)

    @property
    def scope(self) -> ReadScope:
        """The caller's row scope, with the caller's id as a bound parameter."""
        return ReadScope(user_id=None if self.is_admin else self.caller_id)

    @property
    def caller_id(self) -> Any:
        return sa.bindparam("caller_id", value=None, type_=sa.Integer)

    def parameter(self, stem: str, type_: Any = None) -> tuple[str, Any]:
        """A fresh bound parameter (name, expression) for a value known per request."""
        name = f"{stem}_{next(self._names)}"
        return name, sa.bindparam(name, value=None, type_=type_)

    def arguments(self, parent_type: str, selected: Selected) -> dict[str, Any]:
        """The field's arguments, coerced with this request's variables."""
        definition = self.field_definition(parent_type, selected.name)
        return get_argument_values(definition, selected.node, self.variables)

    def bind(self, parent_type: str, selected: Selected, binder: ArgumentBinder) -> None:
        """Register how this field's bound parameters are computed from its arguments."""
        definition = self.field_definition(parent_type, selected.name)
        self.bindings.append(Binding(definition, selected.node, binder))

    def field_definition(self, parent_type: str, name: str) -> GraphQLField:
        graphql_type: Any = self.graphql.get_type(parent_type)
        return graphql_type.fields[name]  # type: ignore[no-any-return]

    def children(self, parent_type: str, selected: Selected) -> list[Selected]:
        """The keys under a field, collected on the field's (named) type."""
        return self.collector.children(self.field_type_name(parent_type, selected.name), selected)

    def field_type_name(self, parent_type: str, name: str) -> str:
        graphql_type: Any = self.field_definition(parent_type, name).type
        while hasattr(graphql_type, "of_type"):
            graphql_type = graphql_type.of_type
        return str(graphql_type.name)

    def declared_permissions(self, parent_type: str, name: str) -> list[type]:
        """The permission classes the schema declares on a field, in order."""
        strawberry_field = self.strawberry.get_field_for_type(name, parent_type)
        if strawberry_field is None:
            return []
        found: list[type] = list(strawberry_field.permission_classes)
        for extension in strawberry_field.extensions:
            if isinstance(extension, PermissionExtension):
                found += [type(p) for p in extension.permissions if type(p) not in found]
        return found


class RowSource:
    """The columns of the row an object is built from (read as attributes), and the to-one
    relations joined to it: a relation is an outer join on the row's FROM clause, not a
    subquery per field, so each related row is found once however many of its fields are
    selected.

    On PostgreSQL the join is LATERAL, a lookup of the one row by its key (`LIMIT 1` keeps the
    planner from turning it back into a plain join). With plain joins PostgreSQL hashed the
    whole `project` and `user` tables for a page of 50 tasks whenever that looked cheaper than
    50 index lookups, so the page cost more as those tables grew: 945 against 791 µs a
    statement at 2,000 projects and 10,000 users, and the same (857 against 859 µs) at 200 and
    1,000. SQLite looks rows up by their key in any case."""

    __slots__ = ("columns", "joins", "lateral")

    def __init__(
        self, columns: Any, joins: list[tuple[Any, Any]] | None = None, *, lateral: bool
    ) -> None:
        self.columns = columns
        self.joins = [] if joins is None else joins
        self.lateral = lateral

    def __getattr__(self, name: str) -> Any:
        return getattr(self.columns, name)

    def related(self, table: Any, key: Any) -> "RowSource":
        """The row of `table` whose id is `key`, joined (outer) to this row's FROM clause."""
        if self.lateral:
            found = sa.select(*table.c).where(table.c.id == key).limit(1).lateral()
            self.joins.append((found, sa.true()))
        else:
            found = table.alias()
            self.joins.append((found, found.c.id == key))
        return RowSource(found.c, self.joins, lateral=self.lateral)

    def joined(self, base: Any) -> Any:
        """`base` with every relation joined to it."""
        for alias, on in self.joins:
            base = base.outerjoin(alias, on)
        return base


def check_permissions(
    build: Build, parent_type: str, selected: Selected, rules: Mapping[type, Callable[[], bool]]
) -> None:
    """Every permission class declared on the field must have a rule that lets it pass for this
    caller at planning time; otherwise the operation runs on the executor (which then gives
    today's error or null)."""
    for permission in build.declared_permissions(parent_type, selected.name):
        if permission in ALWAYS_TRUE_FOR_A_CALLER:
            continue
        if permission is perms.IsAdmin and build.is_admin:
            continue
        rule = rules.get(permission)
        if rule is None or not rule():
            raise Unsupported(f"{permission.__name__} on {parent_type}.{selected.name}")


def is_plain(build: Build, parent_type: str, name: str) -> bool:
    """A field the executor answers by reading an attribute: no resolver of its own."""
    strawberry_field = build.strawberry.get_field_for_type(name, parent_type)
    return strawberry_field is not None and strawberry_field.base_resolver is None


def scalar(build: Build, parent_type: str, name: str, column: Any) -> Any:
    """A column as the JSON of the field's GraphQL type."""
    type_name = build.field_type_name(parent_type, name)
    if type_name in DATETIME_SCALARS:
        return build.json.timestamp(column)
    if type_name == "Boolean":
        return build.json.boolean(column)
    if type_name in PLAIN_SCALARS or isinstance(build.graphql.get_type(type_name), GraphQLEnumType):
        return column
    raise Unsupported(f"the {type_name} field {parent_type}.{name}")


def plain_field(build: Build, parent_type: str, selected: Selected, row: Any) -> Any:
    """A plain field: the column named like its Python attribute."""
    strawberry_field = build.strawberry.get_field_for_type(selected.name, parent_type)
    assert strawberry_field is not None
    column = getattr(row, strawberry_field.python_name, None)
    if column is None:
        raise Unsupported(f"{parent_type}.{selected.name} has no column")
    return scalar(build, parent_type, selected.name, column)


def typename(type_name: str) -> Any:
    """`__typename`, known when planning."""
    return sql_string(type_name)


def role_of(user: Person) -> str:
    """The part of the caller a plan depends on."""
    return "admin" if user.role == Role.ADMIN else "user"
