"""The root fields of Query in SQL: me, user, users, project, projects, task, tasks.

A by-id root whose row the caller may not see (or that does not exist) comes back null from the
statement; the executor then answers that request, with its NOT_FOUND error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from db.counters import task_conditions
from db.projects import project_conditions
from db.scopes import visible_projects, visible_tasks, visible_users
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
    task_list_total,
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
    row = RowSource(found.c)
    value = obj(build, type_name, row, build.children(QUERY, field), me=me)
    return sa.select(value).select_from(row.joined(found)).scalar_subquery()


def _me(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    return _single(build, "User", USER, [USER.c.id == build.caller_id], field, me=True), True


def _user(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {perms.CanSeeUser: lambda: True})
    conditions = [
        USER.c.id == arguments.object_id(build, QUERY, field),
        *visible_users(build.scope),
    ]
    return _single(build, "User", USER, conditions, field), True


def _project(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {perms.CanSeeProject: lambda: True})
    conditions = [
        PROJECT.c.id == arguments.object_id(build, QUERY, field),
        *visible_projects(build.scope),
    ]
    return _single(build, "Project", PROJECT, conditions, field), True


def _task(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {perms.CanSeeTask: lambda: True})
    conditions = [
        TASK.c.id == arguments.object_id(build, QUERY, field),
        *visible_tasks(build.scope),
    ]
    return _single(build, "Task", TASK, conditions, field), True


def _tasks(build: Build, field: Selected) -> tuple[Any, bool]:
    check_permissions(build, QUERY, field, {})
    task_filter = arguments.task_filter(build, QUERY, field)
    shape = arguments.page_shape(build, QUERY, field, TASKS)
    conditions = task_conditions(build.scope, task_filter)
    total = lambda: task_list_total(build, task_filter)  # noqa: E731
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
    "user": _user,
    "users": _users,
    "project": _project,
    "projects": _projects,
    "task": _task,
    "tasks": _tasks,
}
