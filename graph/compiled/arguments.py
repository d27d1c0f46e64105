"""Arguments in a plan: what shapes the statement (orderings, which filters are set, booleans
and enums) is fixed when planning; ids, page sizes, cursors and search texts are bound
parameters, computed again for every request with the executor's own checks. A value those
checks refuse sends the request to the executor, which reports it as it always has.
"""

from typing import Any

import sqlalchemy as sa

from core.errors import BadUserInput
from db.counters import TaskFilter
from db.paging import Keyset
from db.projects import ProjectFilter
from db.text import search_pattern
from db.users import UserFilter
from graph.compiled.compiler import Build
from graph.compiled.errors import Fallback
from graph.compiled.lists import ListSource, PageShape
from graph.compiled.selection import Selected
from graph.pagination import CursorFormat, OrderDirection, decode_cursor


def page_shape(build: Build, parent: str, field: Selected, source: ListSource) -> PageShape:
    """The ordering and cursor of a list field, and the binder of its `first` and `after`."""
    args = build.arguments(parent, field)
    order = args.get("orderBy")
    sort = "id" if order is None else str(order["field"].value)
    descending = order is not None and order.get("direction") == OrderDirection.DESC
    form = CursorFormat(sort=sort, kind=source.sorts[sort].kind, descending=descending)
    first_name, first = build.parameter("first", sa.Integer)
    limit_name, limit = build.parameter("limit", sa.Integer)
    after: Keyset | None = None
    value_name = id_name = ""
    if args.get("after") is not None:
        sort_expr = source.sorts[sort].expr
        value_type = sa.Integer() if sort_expr is None else getattr(sort_expr, "type", None)
        value_name, value = build.parameter("after_value", value_type)
        id_name, row_id = build.parameter("after_id", sa.Integer)
        after = Keyset(value, row_id)
    max_size = build.max_page_size

    def bind(arguments: dict[str, Any]) -> dict[str, Any]:
        size = arguments["first"]
        if not 0 <= size <= max_size:
            raise Fallback
        values = {first_name: size, limit_name: size + 1}
        if after is not None:
            try:
                key = decode_cursor(arguments["after"], form)
            except BadUserInput:
                raise Fallback from None
            values[value_name] = key.value
            values[id_name] = key.id
        return values

    build.bind(parent, field, bind)
    return PageShape(sort=sort, descending=descending, first=first, limit=limit, after=after)


def object_id(build: Build, parent: str, field: Selected) -> Any:
    """The bound `id` argument of a by-id root field."""
    name, param = build.parameter("id", sa.Integer)
    build.bind(parent, field, lambda arguments: {name: arguments["id"]})
    return param


class _Search:
    """A search text as a bound LIKE pattern (None when there is no search)."""

    def __init__(self, build: Build, text: str | None) -> None:
        self.name, self.param = build.parameter("search", sa.String)
        self.used = bool(text)

    @property
    def value(self) -> Any:
        return self.param if self.used else None

    def bind(self, text: str | None) -> dict[str, Any]:
        if not self.used or text is None:
            return {}
        try:
            return {self.name: search_pattern(text)}
        except BadUserInput:
            raise Fallback from None


def _ids(build: Build, given: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """A bound parameter for each id filter that is set."""
    return {n: build.parameter(n, sa.Integer) for n in names if given.get(n) is not None}


def task_filter(build: Build, parent: str, field: Selected) -> TaskFilter:
    """The `filter` argument of `tasks` as the domain's TaskFilter, values bound."""
    given = build.arguments(parent, field).get("filter") or {}
    ids = _ids(build, given, ("projectId", "assigneeId"))
    search = _Search(build, given.get("search"))
    statuses = given.get("status")

    def bind(arguments: dict[str, Any]) -> dict[str, Any]:
        now = arguments.get("filter") or {}
        values = {name: now[key] for key, (name, _) in ids.items()}
        return values | search.bind(now.get("search"))

    build.bind(parent, field, bind)
    return TaskFilter(
        project_id=ids["projectId"][1] if "projectId" in ids else None,
        statuses=None if statuses is None else tuple(statuses),
        assignee_id=ids["assigneeId"][1] if "assigneeId" in ids else None,
        unassigned=given.get("unassigned"),
        search=search.value,
    )


def project_filter(build: Build, parent: str, field: Selected) -> ProjectFilter:
    """The `filter` argument of `projects`, values bound."""
    given = build.arguments(parent, field).get("filter") or {}
    ids = _ids(build, given, ("memberId",))
    search = _Search(build, given.get("search"))

    def bind(arguments: dict[str, Any]) -> dict[str, Any]:
        now = arguments.get("filter") or {}
        values = {name: now[key] for key, (name, _) in ids.items()}
        return values | search.bind(now.get("search"))

    build.bind(parent, field, bind)
    return ProjectFilter(
        search=search.value, member_id=ids["memberId"][1] if "memberId" in ids else None
    )


def user_filter(build: Build, parent: str, field: Selected) -> UserFilter:
    """The `filter` argument of `users`, values bound."""
    given = build.arguments(parent, field).get("filter") or {}
    search = _Search(build, given.get("search"))
    build.bind(parent, field, lambda a: search.bind((a.get("filter") or {}).get("search")))
    return UserFilter(search=search.value, role=given.get("role"), is_active=given.get("isActive"))
