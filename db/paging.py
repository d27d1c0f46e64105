"""Keyset pagination for every list: a page and its total in one statement, nested pages batched.

A page starts after a keyset (the sort value and id of the last row seen), never at an offset, so
page 1,000 costs what page 1 does. The id breaks ties and makes every position unique.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

T = TypeVar("T")

SortKind = Literal["id", "datetime", "text", "int"]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One way to order a list: the SQL expression, the same value read from a row, its kind."""

    expr: sa.SQLColumnExpression[Any] | None  # None orders by id alone
    value: Callable[[Any], Any]
    kind: SortKind


BY_ID = SortKey(expr=None, value=lambda _row: None, kind="id")


@dataclass(frozen=True, slots=True)
class Keyset:
    """A position in an ordered list: the sort value and the id of a row."""

    value: Any
    id: int | str  # a UUID string for import jobs


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page to read. Hashable, so it can be part of a DataLoader key."""

    first: int
    sort: str = "id"
    kind: SortKind = "id"
    descending: bool = False
    after: Keyset | None = None
    with_total: bool = False


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    keys: list[Keyset]
    has_next: bool
    has_previous: bool
    total: int | None
    # Per item, the rows `fetch_page(joined=...)` read with it (None where an outer join missed).
    related: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Shape(Generic[T]):
    """Columns read as one object, `make(*values)`: plain rows, no ORM hydration."""

    columns: tuple[Any, ...]
    make: Callable[..., T]

    def build(self, values: Sequence[Any]) -> T | None:
        """The object, or None where an outer join found no row (a null id, its first column)."""
        return None if values[0] is None else self.make(*values)


# A related shape read with each row of a page, and how it joins (outer) to the page's entity.
Joined = tuple[Shape[Any], ColumnElement[bool]]


def order_columns(
    sort: SortKey, id_column: sa.SQLColumnExpression[Any], descending: bool
) -> list[Any]:
    """ORDER BY of a list: its sort expression, then the id that breaks ties."""
    columns = [id_column] if sort.expr is None else [sort.expr, id_column]
    return [c.desc() if descending else c.asc() for c in columns]


def after_conditions(
    sort: SortKey, id_column: sa.SQLColumnExpression[Any], request: PageRequest
) -> list[ColumnElement[bool]]:
    """The keyset condition: rows strictly beyond `request.after` in the list's order."""
    key = request.after
    if key is None:
        return []
    if sort.expr is None:
        return [id_column < key.id if request.descending else id_column > key.id]
    # A row comparison, not `a > x OR (a = x AND id > y)`: the database starts its index scan
    # at the cursor instead of walking (and filtering) every row before it.
    row = sa.tuple_(sort.expr, id_column)
    key_row = sa.tuple_(key.value, key.id)
    beyond = row < key_row if request.descending else row > key_row
    return [beyond]


def _page(
    rows: Sequence[Any],
    sort: SortKey,
    request: PageRequest,
    total: int | None,
    related: Sequence[tuple[Any, ...]] = (),
) -> Page[Any]:
    items = list(rows[: request.first])
    return Page(
        items=items,
        keys=[Keyset(sort.value(item), item.id) for item in items],
        has_next=len(rows) > request.first,
        has_previous=request.after is not None,
        total=total,
        related=list(related[: request.first]),
    )


async def fetch_page(
    session: AsyncSession,
    *,
    entity: type[Any],
    id_column: sa.SQLColumnExpression[Any],
    conditions: Sequence[ColumnElement[bool]],
    sort: SortKey,
    request: PageRequest,
    shape: Shape[Any] | None = None,
    joined: Sequence[Joined] = (),
    total: ColumnElement[int] | None = None,
) -> Page[Any]:
    """One page of `entity` rows matching `conditions` (built by `shape` when given, else ORM
    entities); the total comes in the same statement, and so do the `joined` objects of each
    item (`Page.related`).

    The total is `count(*)` of the rows matching `conditions`, unless `total` gives an
    uncorrelated scalar expression of the same number (from counters, say).
    """
    query = sa.select(*shape.columns) if shape is not None else sa.select(entity)
    for related, onclause in joined:
        table = related.columns[0].table
        query = query.add_columns(*related.columns).outerjoin(table, onclause)
    query = query.where(*conditions, *after_conditions(sort, id_column, request))
    if not request.with_total:
        total = None
    elif total is None:
        counted = sa.select(sa.func.count()).select_from(entity).where(*conditions)
        total = counted.correlate(None).scalar_subquery()
    if total is not None:
        query = query.add_columns(total)
    query = query.order_by(*order_columns(sort, id_column, request.descending))
    rows: Sequence[Any] = (await session.execute(query.limit(request.first + 1))).all()
    count: int | None = None
    if total is not None:
        if rows:
            count = int(rows[0][-1])
        elif request.after is None:
            count = 0
        else:  # an empty page after a cursor says nothing about the rows before it
            count = int((await session.execute(sa.select(total))).scalar_one())
    if shape is None:
        return _page([row[0] for row in rows], sort, request, count)
    items, with_rows = _split(rows, shape, joined)
    return _page(items, sort, request, count, with_rows)


def _split(
    rows: Sequence[Any], shape: Shape[Any], joined: Sequence[Joined]
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Each row's item and its joined objects, cut from the row by their column counts."""
    bounds, start = [], len(shape.columns)
    for other, _ in joined:
        bounds.append((other, start, start + len(other.columns)))
        start += len(other.columns)
    items = [shape.make(*row[: len(shape.columns)]) for row in rows]
    with_rows = [tuple(r.build(row[a:b]) for r, a, b in bounds) for row in rows] if joined else []
    return items, with_rows


@dataclass(frozen=True, slots=True)
class Nested:
    """A list that belongs to a parent row: `parent` is the parent's id column in `source`."""

    entity: type[Any]
    id_column: sa.SQLColumnExpression[Any]
    parent: sa.SQLColumnExpression[Any]
    source: FromClause


async def fetch_nested_pages(
    session: AsyncSession,
    *,
    nested: Nested,
    parent_ids: Sequence[int],
    conditions: Sequence[ColumnElement[bool]],
    sort: SortKey,
    request: PageRequest,
    totals: Callable[[Sequence[int]], sa.Select[int, int]] | None = None,
) -> dict[int, Page[Any]]:
    """The same page of the list of every parent, in one statement (a window per parent).

    Totals count the rows matching `conditions` per parent, in the same statement: a window
    count, or `totals(parent_ids)` joined in when given, a statement of (parent id, total) that
    knows the same numbers without counting rows (counters, say).
    """
    order = order_columns(sort, nested.id_column, request.descending)
    columns: list[Any] = [
        nested.parent.label("nested_parent_id"),
        sa.func.row_number()
        .over(partition_by=nested.parent, order_by=order)
        .label("nested_position"),
    ]
    window_total = request.with_total and totals is None and request.after is None
    if window_total:
        columns.append(sa.func.count().over(partition_by=nested.parent).label("nested_total"))
    where = [
        nested.parent.in_(parent_ids),
        *conditions,
        *after_conditions(sort, nested.id_column, request),
    ]
    # The rows come out of the window itself: joining them back to their table by id made
    # PostgreSQL hash-join a scan of the whole table (it cannot foresee the window's filter).
    ranked = (
        sa.select(nested.entity, *columns)
        .select_from(nested.source)
        .where(*where)
        .subquery("ranked")
    )
    parent, position = ranked.c.nested_parent_id, ranked.c.nested_position
    query = (
        sa.select(
            aliased(nested.entity, ranked),
            parent,
            *([ranked.c.nested_total] if window_total else []),
        )
        .where(position <= request.first + 1)
        .order_by(parent, position)
    )
    joined_total = request.with_total and totals is not None
    if joined_total:
        assert totals is not None
        given_parent, given_total = list(totals(parent_ids).subquery("totals").c)
        query = query.add_columns(given_total).outerjoin(given_parent.table, given_parent == parent)
    grouped: dict[int, list[Any]] = {pid: [] for pid in parent_ids}
    counts: dict[int, int] = dict.fromkeys(parent_ids, 0)
    for row in (await session.execute(query)).all():
        grouped[row[1]].append(row[0])
        if window_total or joined_total:
            counts[row[1]] = int(row[2] or 0)
    if request.with_total and request.after is not None:
        # Parents whose page after the cursor is empty may still have rows before it.
        unseen = [pid for pid, rows in grouped.items() if not rows] if joined_total else parent_ids
        if unseen:
            counts.update(await _count_per_parent(session, nested, unseen, conditions, totals))
    return {
        pid: _page(rows, sort, request, counts[pid] if request.with_total else None)
        for pid, rows in grouped.items()
    }


async def _count_per_parent(
    session: AsyncSession,
    nested: Nested,
    parent_ids: Sequence[int],
    conditions: Sequence[ColumnElement[bool]],
    totals: Callable[[Sequence[int]], sa.Select[int, int]] | None,
) -> dict[int, int]:
    if totals is not None:
        query = totals(parent_ids)
    else:
        query = (
            sa.select(nested.parent, sa.func.count())
            .select_from(nested.source)
            .where(nested.parent.in_(parent_ids), *conditions)
            .group_by(nested.parent)
        )
    return {int(pid): int(n) for pid, n in (await session.execute(query)).all()}
