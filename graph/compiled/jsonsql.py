"""JSON-building SQL for both databases: objects, ordered arrays, booleans and timestamps.

`json`, never `jsonb`: objects keep the selection's key order. SQLite forgets that a subquery's
value is JSON, so nested values are re-marked with `json()` there.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

Pairs = Sequence[tuple[str, Any]]


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
        args: list[Any] = []
        for key, value in pairs:
            args += [sql_string(key), value]
        return (sa.func.json_build_object if self.postgres else sa.func.json_object)(*args)

    def nested(self, value: Any) -> Any:
        """A JSON value that comes out of a subquery, embeddable in an object or array."""
        return value if self.postgres else sa.func.json(value)

    def array(self, element: Any, *, order_by: Sequence[Any], where: Any) -> Any:
        """The JSON array of `element` over the rows that pass `where`, in `order_by` order
        (SQLite: in the order its ordered subquery delivers them); `[]` when there are none."""
        if self.postgres:
            aggregated = sa.func.json_agg(aggregate_order_by(element, *order_by)).filter(where)
            return sa.func.coalesce(aggregated, sa.literal_column("'[]'::json"))
        return sa.func.json_group_array(element).filter(where)

    def boolean(self, condition: Any) -> Any:
        """JSON true/false of a condition or a boolean column."""
        if self.postgres:
            return condition
        return sa.func.json(sa.case((condition, sql_string("true")), else_=sql_string("false")))

    def constant_boolean(self, value: bool) -> Any:
        """JSON true/false known when planning."""
        word = "true" if value else "false"
        return sa.literal_column(word) if self.postgres else sa.func.json(sql_string(word))

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
