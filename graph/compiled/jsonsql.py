"""JSON-building SQL for both databases: objects, ordered arrays, booleans and timestamps.

Objects keep the selection's key order. SQLite builds them with its JSON functions, and forgets
that a subquery's value is JSON, so nested values are re-marked with `json()` there.

PostgreSQL writes the JSON as text: each object is its keys, written into the statement, joined
with `||` to each value's JSON (`to_json` quotes and escapes strings, integers are their digits),
and each array a `string_agg` of its elements. `json_build_object` and `json_agg` build the
same values at 1.1 to 1.25 times the database's CPU (they work out each argument's type on every
call), and put spaces after colons. Expressions that are JSON text already carry the `JsonText`
type, so that they are embedded as they are rather than quoted again.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

Pairs = Sequence[tuple[str, Any]]


class JsonText(sa.types.TypeDecorator[str]):
    """Text that is JSON already (PostgreSQL): embedded in an object or array as it is, or
    as `null` where it is SQL NULL."""

    impl = sa.Text
    cache_ok = True


class BuiltJson(JsonText):
    """JSON text built by `object` or `array`: never NULL, so embedded without a `coalesce`.
    Anything that may turn it NULL (a CASE, a subquery) goes through `nested`, which makes it
    plain `JsonText` again."""


JSON_NULL = "'null'"


def _json_literal(text: str) -> Any:
    """JSON text known when planning (keys, punctuation), written into the SQL."""
    assert "'" not in text
    return sa.literal_column(f"'{text}'", BuiltJson())


def _as_json(value: Any) -> Any:
    """PostgreSQL: the JSON text of a value, `null` for SQL NULL."""
    value_type = getattr(value, "type", None)
    if isinstance(value_type, BuiltJson):
        return value
    if isinstance(value_type, JsonText):
        return sa.func.coalesce(value, sa.literal_column(JSON_NULL))
    if isinstance(value_type, sa.Integer):
        text = sa.cast(value, sa.Text)
    elif isinstance(value_type, sa.String):
        # Typed, so that a constant ('PageInfo') is text to to_json, not a literal of unknown
        # type, which PostgreSQL cannot resolve its polymorphic argument from.
        text = sa.cast(sa.func.to_json(sa.cast(value, sa.Text)), sa.Text)
    else:
        text = sa.cast(sa.func.to_json(value), sa.Text)
    return sa.func.coalesce(text, sa.literal_column(JSON_NULL))


def _joined(parts: Sequence[Any]) -> Any:
    """The parts' texts in a row (`||`), as JSON text (each part is not NULL)."""
    joined = parts[0]
    for part in parts[1:]:
        joined = sa.type_coerce(joined, sa.Text) + sa.type_coerce(part, sa.Text)
    return sa.type_coerce(joined, BuiltJson())


def sql_string(text: str) -> Any:
    """A constant string written into the SQL (response keys and type names are GraphQL names,
    so they hold no quote)."""
    assert "'" not in text
    return sa.literal_column(f"'{text}'", sa.Text)


def sql_int(number: int) -> Any:
    """A constant integer written into the SQL."""
    return sa.literal_column(str(int(number)), sa.Integer)


@dataclass(frozen=True, slots=True)
class JsonSql:
    """The JSON functions of one database: `postgresql` or `sqlite`."""

    dialect: str

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def object(self, pairs: Pairs) -> Any:
        """A JSON object with these keys, in this order."""
        if self.postgres:
            parts: list[Any] = []
            for index, (key, value) in enumerate(pairs):
                opening = "{" if index == 0 else ","
                parts += [_json_literal(f'{opening}"{key}":'), _as_json(value)]
            parts.append(_json_literal("}" if pairs else "{}"))
            return _joined(parts)
        args: list[Any] = []
        for key, value in pairs:
            args += [sql_string(key), value]
        return sa.func.json_object(*args)

    def nested(self, value: Any) -> Any:
        """A JSON value that comes out of a subquery or a CASE (so may be NULL), embeddable in
        an object or array."""
        return sa.type_coerce(value, JsonText()) if self.postgres else sa.func.json(value)

    def array(self, element: Any, *, order_by: Sequence[Any], where: Any) -> Any:
        """The JSON array of `element` over the rows that pass `where`, in `order_by` order
        (SQLite: in the order its ordered subquery delivers them); `[]` when there are none."""
        if self.postgres:
            separator: Any = aggregate_order_by(sa.literal_column("','"), *order_by)
            aggregated = sa.func.string_agg(_as_json(element), separator).filter(where)
            inside = sa.func.coalesce(aggregated, sa.literal_column("''"))
            return _joined([_json_literal("["), inside, _json_literal("]")])
        return sa.func.json_group_array(element).filter(where)

    def boolean(self, condition: Any) -> Any:
        """JSON true/false of a condition or a boolean column."""
        if self.postgres:
            return condition
        return sa.func.json(sa.case((condition, sql_string("true")), else_=sql_string("false")))

    def constant_boolean(self, value: bool) -> Any:
        """JSON true/false known when planning."""
        word = "true" if value else "false"
        return _json_literal(word) if self.postgres else sa.func.json(sql_string(word))

    def timestamp(self, column: Any) -> Any:
        """The ISO 8601 text that Python's `isoformat()` gives a UTC timestamp (the GraphQL
        DateTime scalar): microseconds only when there are any, then `+00:00`."""
        if self.postgres:
            utc = sa.func.timezone(sql_string("UTC"), column)
            seconds = sa.func.to_char(utc, sql_string('YYYY-MM-DD"T"HH24:MI:SS'))
            micros = sa.func.to_char(utc, sql_string("US"))
        else:
            seconds = sa.func.replace(
                sa.func.substr(column, sql_int(1), sql_int(19)), sql_string(" "), sql_string("T")
            )
            micros = sa.func.coalesce(
                sa.func.nullif(sa.func.substr(column, sql_int(21), sql_int(6)), sql_string("")),
                sql_string("000000"),
            )
        fraction = sa.case(
            (micros == sql_string("000000"), sql_string("")), else_=sql_string(".") + micros
        )
        return seconds + fraction + sql_string("+00:00")
