"""Connections in SQL: a keyset page, its edges, cursors, pageInfo and totalCount, as one JSON
value built by the database.

The page reads `first + 1` rows after the cursor (the extra row only says whether there is a next
page), numbers them in their order, and aggregates the first `first` into `edges`. The rows, the
order, the keyset condition and the cursors come from the same declarations as the executor's
pages (db/paging.py, db/cursors.py and each domain's sort keys and conditions).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.selectable import FromClause

from db.cursors import cursor_sql
from db.paging import Keyset, PageRequest, SortKey, after_conditions, order_columns
from graph.compiled.compiler import RowSource
from graph.compiled.jsonsql import JsonSql, sql_int, sql_string
from graph.compiled.selection import Selected

# Builds a node's JSON from its row (the page subquery's columns, and the relations joined).
NodeBuilder = Callable[[Any, list[Selected]], Any]


@dataclass(frozen=True, slots=True)
class ListSource:
    """Where a list's rows come from: the table whose columns make its nodes, the FROM clause
    (the table, or a join that relates it to a parent), and the orderings it takes."""

    type_name: str
    table: sa.Table
    source: FromClause
    sorts: Mapping[str, SortKey]

    @property
    def id_column(self) -> Any:
        return self.table.c.id


@dataclass(frozen=True, slots=True)
class PageShape:
    """What planning fixed about one list field: the ordering, and whether a cursor is given.

    `first`, `limit` (first + 1) and the cursor's parts are bound parameters.
    """

    sort: str
    descending: bool
    first: Any
    limit: Any
    after: Keyset | None


def connection(
    json: JsonSql,
    source: ListSource,
    shape: PageShape,
    conditions: Sequence[Any],
    selected: list[Selected],
    children: Callable[[str, Selected], list[Selected]],
    node: NodeBuilder,
    total: Callable[[], Any],
) -> Any:
    """The JSON of a connection field (`edges`, `pageInfo`, `totalCount`, `__typename`)."""
    sort = source.sorts[shape.sort]
    request = PageRequest(first=0, sort=shape.sort, descending=shape.descending, after=shape.after)
    order = order_columns(sort, source.id_column, shape.descending)
    sort_value = source.id_column if sort.expr is None else sort.expr
    limited = (
        sa.select(*source.table.c, sort_value.label("_sort"))
        .select_from(source.source)
        .where(*conditions, *after_conditions(sort, source.id_column, request))
        .order_by(*order)
        .limit(shape.limit)
        .correlate_except(source.table)
        .subquery()
    )
    keys = [limited.c._sort, limited.c.id] if sort.expr is not None else [limited.c.id]
    position_order = [c.desc() if shape.descending else c.asc() for c in keys]
    numbered: list[Any] = [
        limited,
        sa.func.row_number().over(order_by=position_order).label("_pos"),
    ]
    if any(field.name == "pageInfo" for field in selected):
        # The rows read, for `endCursor`: a window over the whole page, which the database must
        # hold before it hands out the first row; only a page with `pageInfo` pays for it.
        numbered.append(sa.func.count().over().label("_cnt"))
    page = sa.select(*numbered).order_by(*position_order).subquery()
    cursor = cursor_sql(
        json.dialect, shape.sort, shape.descending, sort.kind, page.c.id, page.c._sort
    )
    # The relations its nodes select are joined to the page.
    row = RowSource(page.c, lateral=json.postgres)
    pairs: list[tuple[str, Any]] = []
    for field in selected:
        if field.name == "edges":
            edge = _edge(json, source, cursor, row, children("edges", field), children, node)
            pairs.append(
                (
                    field.key,
                    json.array(edge, order_by=[page.c._pos], where=page.c._pos <= shape.first),
                )
            )
        elif field.name == "pageInfo":
            pairs.append(
                (field.key, _page_info(json, shape, cursor, page, children("pageInfo", field)))
            )
        elif field.name == "totalCount":
            pairs.append((field.key, total()))
        else:  # __typename: the validator allows nothing else
            pairs.append((field.key, sql_string(f"{source.type_name}Connection")))
    # An aggregate query answers one row even for an empty page, whatever was selected.
    value = sa.case((sa.func.count() >= sql_int(0), json.object(pairs)))
    return json.nested(sa.select(value).select_from(row.joined(page)).scalar_subquery())


def _edge(
    json: JsonSql,
    source: ListSource,
    cursor: Any,
    row: RowSource,
    selected: list[Selected],
    children: Callable[[str, Selected], list[Selected]],
    node: NodeBuilder,
) -> Any:
    pairs: list[tuple[str, Any]] = []
    for field in selected:
        if field.name == "cursor":
            pairs.append((field.key, cursor))
        elif field.name == "node":
            pairs.append((field.key, node(row, children("node", field))))
        else:
            pairs.append((field.key, sql_string(f"{source.type_name}Edge")))
    return json.object(pairs)


def _page_info(
    json: JsonSql, shape: PageShape, cursor: Any, page: Any, selected: list[Selected]
) -> Any:
    last = sa.case((page.c._cnt < shape.first, page.c._cnt), else_=shape.first)
    values = {
        "hasNextPage": json.boolean(sa.func.count() > shape.first),
        "hasPreviousPage": json.constant_boolean(shape.after is not None),
        "startCursor": sa.func.max(
            sa.case((sa.and_(page.c._pos == sql_int(1), page.c._pos <= shape.first), cursor))
        ),
        "endCursor": sa.func.max(sa.case((page.c._pos == last, cursor))),
        "__typename": sql_string("PageInfo"),
    }
    return json.object([(field.key, values[field.name]) for field in selected])
