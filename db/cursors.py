"""Keyset cursors: one text format, written by Python for executed pages and by SQL for compiled
ones, so both read paths hand out the same cursor for the same row.

A cursor is the upper-case hex of the UTF-8 text `<sort>:<a|d>:<id>:<value>`, where the value is
empty for the id ordering, an integer for ranks, the text itself for text orderings, and the
microseconds since the Unix epoch for timestamps. Every part can be produced by SQLite and
PostgreSQL alike (hex, integer arithmetic, concatenation), and parsing needs no JSON.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from db.paging import Keyset, SortKind

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
_MILLION = sa.literal_column("1000000", sa.BigInteger)


def _value_text(kind: SortKind, value: Any) -> str:
    if kind == "id":
        return ""
    if kind == "datetime":
        return str((value - EPOCH) // MICROSECOND)
    return str(value)


def encode_cursor(sort: str, descending: bool, kind: SortKind, key: Keyset) -> str:
    """The cursor of the row at `key` in the ordering `sort`."""
    text = f"{sort}:{'d' if descending else 'a'}:{key.id}:{_value_text(kind, key.value)}"
    return text.encode().hex().upper()


def parse_cursor(cursor: str) -> tuple[str, bool, str, str]:
    """(sort, descending, id text, value text); ValueError when it is not a cursor of ours."""
    if len(cursor) % 2 or not cursor.isalnum():
        raise ValueError(cursor)
    sort, direction, row_id, value = bytes.fromhex(cursor).decode().split(":", 3)
    if direction not in ("a", "d") or not row_id:
        raise ValueError(cursor)
    return sort, direction == "d", row_id, value


def parse_value(kind: SortKind, text: str) -> Any:
    """The sort value a cursor carries, typed for the ordering's kind; ValueError otherwise."""
    if kind == "id":
        if text:
            raise ValueError(text)
        return None
    if kind == "text":
        return text
    if not text.lstrip("-").isdigit():
        raise ValueError(text)
    number = int(text)
    return EPOCH + number * MICROSECOND if kind == "datetime" else number


def _sql_text(dialect: str, expr: Any, kind: SortKind) -> Any:
    if kind == "id":
        return sa.literal_column("''")
    if kind == "datetime":
        return sa.cast(epoch_microseconds(dialect, expr), sa.Text)
    return sa.cast(expr, sa.Text)


def epoch_microseconds(dialect: str, expr: Any) -> Any:
    """Microseconds since the Unix epoch of a stored timestamp, exactly, as an integer."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", expr) * _MILLION, sa.BigInteger)
    # SQLite stores `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC. The whole seconds are read without the
    # fraction: SQLite's date functions keep milliseconds, so `%s` of `…:12.999520` says 13.
    whole = sa.func.substr(expr, sa.literal_column("1"), sa.literal_column("19"))
    seconds = sa.cast(sa.func.strftime(sa.literal_column("'%s'"), whole), sa.Integer)
    fraction = sa.case(
        (
            sa.func.length(expr) > sa.literal_column("19"),
            sa.cast(
                sa.func.substr(expr, sa.literal_column("21"), sa.literal_column("6")), sa.Integer
            ),
        ),
        else_=sa.literal_column("0"),
    )
    return seconds * _MILLION + fraction


def cursor_sql(
    dialect: str, sort: str, descending: bool, kind: SortKind, id_expr: Any, value_expr: Any
) -> Any:
    """The same cursor as `encode_cursor`, computed by the database."""
    prefix = f"{sort}:{'d' if descending else 'a'}:"
    text = (
        sa.literal(prefix) + sa.cast(id_expr, sa.Text) + ":" + _sql_text(dialect, value_expr, kind)
    )
    if dialect == "postgresql":
        return sa.func.upper(sa.func.encode(sa.func.convert_to(text, "UTF8"), "hex"))
    return sa.func.hex(text)
