"""Keyset pagination for every list: a page and its total in one statement, nested pages batched.

A page starts after a keyset (the sort value and id of the last row seen), never at an offset, so
page 1,000 costs what page 1 does. The id breaks ties and makes every position unique.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
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


def _order_by(sort: SortKey, id_column: sa.SQLColumnExpression[Any], descending: bool) -> list[Any]:
    columns = [id_column] if sort.expr is None else [sort.expr, id_column]
    return [c.desc() if descending else c.asc() for c in columns]


def _after(
    sort: SortKey, id_column: sa.SQLColumnExpression[Any], request: PageRequest
) -> list[ColumnElement[bool]]:
    key = request.after
    if key is None:
        return []
    if sort.expr is None:
        return [id_column < key.id if request.descending else id_column > key.id]
    if request.descending:
        beyond = sa.or_(sort.expr < key.value, sa.and_(sort.expr == key.value, id_column < key.id))
    else:
        beyond = sa.or_(sort.expr > key.value, sa.and_(sort.expr == key.value, id_column > key.id))
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
) -> Page[Any]:
    """One page of `entity` rows matching `conditions` (built by `shape` when given, else ORM
    entities); the total comes in the same statement, and so do the `joined` objects of each
    item (`Page.related`)."""
    query = sa.select(*shape.columns) if shape is not None else sa.select(entity)
    for related, onclause in joined:
        table = related.columns[0].table
        query = query.add_columns(*related.columns).outerjoin(table, onclause)
    query = query.where(*conditions, *_after(sort, id_column, request))
    if request.with_total:
        counted = sa.select(sa.func.count()).select_from(entity).where(*conditions)
        query = query.add_columns(counted.correlate(None).scalar_subquery())
    query = query.order_by(*_order_by(sort, id_column, request.descending))
    rows: Sequence[Any] = (await session.execute(query.limit(request.first + 1))).all()
    total: int | None = None
    if request.with_total:
        if rows:
            total = int(rows[0][-1])
        elif request.after is None:
            total = 0
        else:  # an empty page after a cursor says nothing about the rows before it
            total = int((await session.execute(counted)).scalar_one())
    if shape is None:
        return _page([row[0] for row in rows], sort, request, total)
    items, with_rows = _split(rows, shape, joined)
    return _page(items, sort, request, total, with_rows)


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
) -> dict[int, Page[Any]]:
    """The same page of the list of every parent, in one statement (a window per parent)."""
    order = _order_by(sort, nested.id_column, request.descending)
    columns: list[Any] = [
        nested.id_column.label("row_id"),
        nested.parent.label("parent_id"),
        sa.func.row_number().over(partition_by=nested.parent, order_by=order).label("position"),
    ]
    window_total = request.with_total and request.after is None
    if window_total:
        columns.append(sa.func.count().over(partition_by=nested.parent).label("total"))
    where = [nested.parent.in_(parent_ids), *conditions, *_after(sort, nested.id_column, request)]
    ranked = sa.select(*columns).select_from(nested.source).where(*where).subquery("ranked")
    query = (
        sa.select(nested.entity, ranked.c.parent_id, *([ranked.c.total] if window_total else []))
        .join(ranked, nested.id_column == ranked.c.row_id)
        .where(ranked.c.position <= request.first + 1)
        .order_by(ranked.c.parent_id, ranked.c.position)
    )
    grouped: dict[int, list[Any]] = {pid: [] for pid in parent_ids}
    totals: dict[int, int] = dict.fromkeys(parent_ids, 0)
    for row in (await session.execute(query)).all():
        grouped[row[1]].append(row[0])
        if window_total:
            totals[row[1]] = int(row[2])
    if request.with_total and not window_total:
        totals.update(await _count_per_parent(session, nested, parent_ids, conditions))
    return {
        pid: _page(rows, sort, request, totals[pid] if request.with_total else None)
        for pid, rows in grouped.items()
    }


async def _count_per_parent(
    session: AsyncSession,
    nested: Nested,
    parent_ids: Sequence[int],
    conditions: Sequence[ColumnElement[bool]],
) -> dict[int, int]:
    query = (
        sa.select(nested.parent, sa.func.count())
        .select_from(nested.source)
        .where(nested.parent.in_(parent_ids), *conditions)
        .group_by(nested.parent)
    )
    return {int(pid): int(n) for pid, n in (await session.execute(query)).all()}
