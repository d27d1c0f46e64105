"""Relay-style connections over keyset pages: opaque cursors, `first`/`after`, `totalCount`."""

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from core.errors import BadUserInput
from db.cursors import encode_cursor, parse_cursor, parse_value
from db.paging import BY_ID, Keyset, Page, PageRequest, SortKey, SortKind
from graph.context import Info

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")

DEFAULT_PAGE_SIZE = 20
BY_ID_ONLY = {"id": BY_ID}  # the sorts of a list that only runs by id


@strawberry.enum(description="Which way an ordering runs.")
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when the page starts after a cursor."
    )
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One item of a list, with the cursor that points at it.")
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type(description="A page of a list.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="How many items the whole list holds, across all pages."
    )


@dataclass(frozen=True, slots=True)
class CursorFormat:
    """What the cursors of one ordering hold: its sort and direction, the kind of the sort's
    value, and the type of the row ids."""

    sort: str
    kind: SortKind
    descending: bool = False
    id_type: type[int] | type[str] = int
    # A list that takes an orderBy can tell the caller that a cursor came from another ordering.
    orderable: bool = True


def decode_cursor(cursor: str, form: CursorFormat) -> Keyset:
    """The keyset a cursor points at; BAD_USER_INPUT on `after` when it is not one of ours."""
    try:
        sort, descending, row_id, value = parse_cursor(cursor)
        if sort != form.sort or descending != form.descending:
            if not form.orderable:
                raise ValueError(sort)
            raise BadUserInput(
                "This cursor belongs to another ordering: repeat the orderBy it came with.",
                field="after",
            )
        if form.id_type is int and not row_id.isdigit():
            raise ValueError(row_id)
        return Keyset(parse_value(form.kind, value), form.id_type(row_id))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise BadUserInput("Invalid cursor.", field="after") from exc


def _children(selections: Iterable[Selection], name: str) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _children(selection.selections, name)


def node_selects(info: Info, name: str) -> bool:
    """Whether the query asks for `edges { node { <name> } }` of this connection field."""
    level = [f for f in info.selected_fields if isinstance(f, SelectedField)]
    for step in ("edges", "node", name):
        level = [child for parent in level for child in _children(parent.selections, step)]
    return bool(level)


def check_first(info: Info, first: int) -> None:
    """`first` must lie between 0 and the configured page size, else BAD_USER_INPUT."""
    limit = info.context.settings.max_page_size
    if not 0 <= first <= limit:
        raise BadUserInput(f"`first` must be between 0 and {limit}.", field="first")


class Ordering(Protocol):
    """An `orderBy` input: a field whose value names a sort, and a direction."""

    @property
    def field(self) -> enum.Enum: ...

    @property
    def direction(self) -> OrderDirection: ...


def keyset_request(info: Info, *, first: int, after: str | None, form: CursorFormat) -> PageRequest:
    """Check `first` and `after` for a list in one ordering; count the whole list only when
    `totalCount` is asked for."""
    check_first(info, first)
    keyset = None if after is None else decode_cursor(after, form)
    with_total = any(
        next(_children(field.selections, "totalCount"), None) is not None
        for field in info.selected_fields
    )
    return PageRequest(
        first=first,
        sort=form.sort,
        kind=form.kind,
        descending=form.descending,
        after=keyset,
        with_total=with_total,
    )


def page_request(
    info: Info,
    *,
    first: int,
    after: str | None,
    sorts: Mapping[str, SortKey],
    order: Ordering | None = None,
) -> PageRequest:
    """The page request of a list with an `orderBy`; without `order` it runs by id, ascending."""
    sort = "id" if order is None else str(order.field.value)
    descending = order is not None and order.direction == OrderDirection.DESC
    form = CursorFormat(sort=sort, kind=sorts[sort].kind, descending=descending)
    return keyset_request(info, first=first, after=after, form=form)


def to_connection(
    page: Page[RowT], request: PageRequest, node: Callable[[RowT], NodeT]
) -> Connection[NodeT]:
    """Map a page of rows onto a connection of GraphQL nodes."""
    cursors = [
        encode_cursor(request.sort, request.descending, request.kind, key) for key in page.keys
    ]
    return Connection(
        edges=[Edge(cursor=c, node=node(row)) for c, row in zip(cursors, page.items, strict=True)],
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
        total_count=page.total or 0,
    )
