"""The root fields of Query in SQL: me, user, users, project, projects, task, tasks.

A by-id root whose row the caller may not see (or that does not exist) comes back null from the
statement; the executor then answers that request, with its NOT_FOUND error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from db.counters import task_conditions, task_count
from db.projects import project_conditions
from db.scopes import ReadScope, visible_projects, visible_tasks, visible_users
from db.users import user_conditions
from graph import permissions as perms
from graph.compiled import arguments
from graph.compiled.compiler import Build, RowSource, check_permissions
from graph.compiled.errors import Unsupported
from graph.compiled.nodes import (
    PROJECT,
    PROJECTS,
    TASK,
    TASKS,
    USER,
    USERS,
    list_field,
    obj,
)
from graph.compiled.selection import Selected

QUERY = "Query"


@dataclass(frozen=True, slots=True)
class Root:
    """One compiled root field: its SQL, and whether a null from it means an error."""

    key: str
    sql: Any  # None for a constant
    null_is_error: bool
    constant: bytes = b"null"


def root(build: Build, field: Selected) -> Root:
    """The SQL of one root field of a query."""
    if field.name == "__typename":
        return Root(field.key, None, null_is_error=False, constant=b'"Query"')
    compile_root = ROOTS.get(field.name)
    if compile_root is None:
        raise Unsupported(f"the root field {field.name}")
    sql, null_is_error = compile_root(build, field)
    return Root(field.key, sql, null_is_error)


def _single(
    build: Build,
    type_name: str,
    table: Any,
    conditions: list[Any],
    field: Selected,
    *,
    me: bool = False,
) -> Any:
    found = sa.select(table).where(*conditions).correlate(None).subquery()
    row = RowSource(found.c, lateral=build.json.postgres)
    value = obj(build, type_name, row, build.children(QUERY, field), me=me)
    return sa.select(value).select_from(row.joined(found)).scalar_subquery()


def _me(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    return _single(build, "User", USER, [USER.c.id == build.caller_id], field, me=True), True


def _by_id(
    type_name: str, table: Any, permission: type, visible: Callable[[ReadScope], list[Any]]
) -> Callable[[Build, Selected], tuple[Any, bool]]:
    """A root that reads one row by its `id` argument, within the caller's row scope. The
    permission class that guards it (NOT_FOUND when invisible) is what the scope expresses: a
    null answer goes to the executor, which reports it."""

    def compile_root(build: Build, field: Selected) -> tuple[Any, bool]:
        check_permissions(build, QUERY, field, {permission: lambda: True})
        object_id = arguments.object_id(build, QUERY, field)
        conditions = [table.c.id == object_id, *visible(build.scope)]
        return _single(build, type_name, table, conditions, field), True

    return compile_root


def _tasks(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    task_filter = arguments.task_filter(build, QUERY, field)
    shape = arguments.page_shape(build, QUERY, field, TASKS)
    conditions = task_conditions(build.scope, task_filter)
    total = lambda: task_count(build.scope, task_filter)  # noqa: E731
    return list_field(build, QUERY, field, TASKS, shape, conditions, total), False


def _projects(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    project_filter = arguments.project_filter(build, QUERY, field)
    shape = arguments.page_shape(build, QUERY, field, PROJECTS)
    conditions = project_conditions(build.scope, project_filter)
    return list_field(
        build, QUERY, field, PROJECTS, shape, conditions, _count(PROJECT, conditions)
    ), False


def _users(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    user_filter = arguments.user_filter(build, QUERY, field)
    shape = arguments.page_shape(build, QUERY, field, USERS)
    conditions = user_conditions(user_filter)
    return list_field(
        build, QUERY, field, USERS, shape, conditions, _count(USER, conditions)
    ), False


def _count(table: Any, conditions: list[Any]) -> Callable[[], Any]:
    def total() -> Any:
        counted = sa.select(sa.func.count()).select_from(table).where(*conditions)
        return counted.correlate(None).scalar_subquery()

    return total


ROOTS: dict[str, Callable[[Build, Selected], tuple[Any, bool]]] = {
    "me": _me,
    "user": _by_id("User", USER, perms.CanSeeUser, visible_users),
    "users": _users,
    "project": _by_id("Project", PROJECT, perms.CanSeeProject, visible_projects),
    "projects": _projects,
    "task": _by_id("Task", TASK, perms.CanSeeTask, visible_tasks),
    "tasks": _tasks,
}
