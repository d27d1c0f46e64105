"""The object types in SQL: Task, Project, User and TaskCounts, built from a row's columns.

A to-one relation is an outer join on the row's FROM clause (compiler.RowSource); lists are
connections (graph/compiled/lists.py), correlated with the row they belong to. Fields guarded by
a permission class compile only when its rule is settled for this caller when planning.
"""

from typing import Any

import sqlalchemy as sa

from db.counters import TaskFilter, task_conditions, task_count, task_counts_by_status
from db.models import Project, ProjectMember, Task, TaskStatus, User
from db.paging import BY_ID
from db.projects import PROJECT_SORTS
from db.scopes import shares_a_project
from db.tasks import TASK_SORTS
from db.users import USER_SORTS
from graph import permissions as perms
from graph.compiled import arguments
from graph.compiled.compiler import Build, check_permissions, is_plain, plain_field, typename
from graph.compiled.errors import Unsupported
from graph.compiled.lists import ListSource, connection
from graph.compiled.selection import Selected

TASK = Task.__table__  # type: ignore[attr-defined]
PROJECT = Project.__table__  # type: ignore[attr-defined]
USER = User.__table__  # type: ignore[attr-defined]
MEMBER = ProjectMember.__table__  # type: ignore[attr-defined]

BY_ID_ONLY = {"id": BY_ID}
TASKS = ListSource("Task", TASK, TASK, TASK_SORTS)
PROJECTS = ListSource("Project", PROJECT, PROJECT, PROJECT_SORTS)
USERS = ListSource("User", USER, USER, USER_SORTS)
MEMBERS = ListSource("User", USER, USER.join(MEMBER, MEMBER.c.user_id == USER.c.id), BY_ID_ONLY)
MEMBER_PROJECTS = ListSource(
    "Project", PROJECT, PROJECT.join(MEMBER, MEMBER.c.project_id == PROJECT.c.id), BY_ID_ONLY
)
COUNT_KEYS = {
    "pending": TaskStatus.PENDING,
    "inProgress": TaskStatus.IN_PROGRESS,
    "done": TaskStatus.DONE,
}


def obj(
    build: Build, type_name: str, row: Any, selected: list[Selected], *, me: bool = False
) -> Any:
    """The JSON object of a `type_name` row. `me`: the row is the caller (for rules that let
    a user see their own details)."""
    pairs: list[tuple[str, Any]] = []
    for field in selected:
        if field.name == "__typename":
            pairs.append((field.key, typename(type_name)))
            continue
        special = SPECIAL.get((type_name, field.name))
        if special is not None:
            pairs.append((field.key, special(build, row, field, me)))
        elif is_plain(build, type_name, field.name):
            check_permissions(build, type_name, field, {})
            pairs.append((field.key, plain_field(build, type_name, field, row)))
        else:
            raise Unsupported(f"the field {type_name}.{field.name}")
    return build.json.object(pairs)


def _relation(
    parent: str, type_name: str, table: Any, key_column: str, *, checked: bool = False
) -> Any:
    """A to-one relation: the row of `table` whose id is in `key_column`, or null. `checked`:
    the caller has checked the field's permission classes already."""

    def compile_relation(build: Build, row: Any, field: Selected, me: bool) -> Any:
        if not checked:
            check_permissions(build, parent, field, {})
        related = row.related(table, getattr(row, key_column))
        value = obj(build, type_name, related, build.children(parent, field))
        return build.json.nested(sa.case((related.id.is_not(None), value)))

    return compile_relation


def _created_by(parent: str) -> Any:
    relation = _relation(parent, "User", USER, "created_by", checked=True)

    def compile_created_by(build: Build, row: Any, field: Selected, me: bool) -> Any:
        # CanSeeRelatedUser (fail_silently): null unless the caller may see the creator, which
        # is the row scope of users (db/scopes.py): admins see all, a USER themselves and the
        # users they share a project with.
        check_permissions(build, parent, field, {perms.CanSeeRelatedUser: lambda: True})
        creator = relation(build, row, field, me)
        if build.is_admin:
            return creator
        caller = build.caller_id
        visible = sa.or_(row.created_by == caller, shares_a_project(caller, row.created_by))
        return build.json.nested(sa.case((visible, creator)))

    return compile_created_by


def _user_detail(build: Build, row: Any, field: Selected, me: bool) -> Any:
    """role, isActive, createdAt: the column, once CanSeeUserDetails is settled for this plan."""
    check_permissions(build, "User", field, {perms.CanSeeUserDetails: lambda: build.is_admin or me})
    return plain_field(build, "User", field, row)


def _user_projects(build: Build, row: Any, field: Selected, me: bool) -> Any:
    check_permissions(build, "User", field, {perms.CanSeeUserDetails: lambda: build.is_admin or me})
    shape = arguments.page_shape(build, "User", field, MEMBER_PROJECTS)
    of_user = MEMBER.c.user_id == row.id
    return list_field(
        build, "User", field, MEMBER_PROJECTS, shape, [of_user], _membership_count(of_user)
    )


def _project_members(build: Build, row: Any, field: Selected, me: bool) -> Any:
    check_permissions(build, "Project", field, {})
    shape = arguments.page_shape(build, "Project", field, MEMBERS)
    of_project = MEMBER.c.project_id == row.id
    return list_field(
        build, "Project", field, MEMBERS, shape, [of_project], _membership_count(of_project)
    )


def _membership_count(condition: Any) -> Any:
    """totalCount of a list of memberships: the rows of `project_member` that pass `condition`."""

    def total() -> Any:
        counted = sa.select(sa.func.count()).select_from(MEMBER).where(condition)
        return counted.correlate_except(MEMBER).scalar_subquery()

    return total


def _project_tasks(build: Build, row: Any, field: Selected, me: bool) -> Any:
    check_permissions(build, "Project", field, {})
    shape = arguments.page_shape(build, "Project", field, TASKS)
    scope = build.scope
    conditions = [*task_conditions(scope, TaskFilter()), TASK.c.project_id == row.id]
    return list_field(
        build, "Project", field, TASKS, shape, conditions, lambda: _project_total(scope, row)
    )


def _project_total(scope: Any, row: Any) -> Any:
    return task_count(scope, TaskFilter(project_id=row.id))


def _task_counts(build: Build, row: Any, field: Selected, me: bool) -> Any:
    check_permissions(build, "Project", field, {})
    counts = task_counts_by_status(build.scope, row.id)
    pairs: list[tuple[str, Any]] = []
    for child in build.children("Project", field):
        if child.name == "__typename":
            pairs.append((child.key, typename("TaskCounts")))
        elif child.name == "total":
            pairs.append((child.key, _project_total(build.scope, row)))
        else:
            pairs.append((child.key, counts[COUNT_KEYS[child.name]]))
    return build.json.object(pairs)


def list_field(
    build: Build,
    parent: str,
    field: Selected,
    source: ListSource,
    shape: Any,
    conditions: list[Any],
    total: Any,
) -> Any:
    """A connection field of `parent`: a page of `source` rows that pass `conditions`."""
    connection_type = build.field_type_name(parent, field.name)
    node_type = source.type_name

    def children(name: str, selected: Selected) -> list[Selected]:
        # The keys under `edges`/`pageInfo` (fields of the connection) or `node` (of an edge).
        owner = {"edges": connection_type, "pageInfo": connection_type, "node": f"{node_type}Edge"}
        return build.children(owner[name], selected)

    return connection(
        build.json,
        source,
        shape,
        conditions,
        build.children(parent, field),
        children,
        lambda row, selected: obj(build, node_type, row, selected),
        total,
    )


SPECIAL: dict[tuple[str, str], Any] = {
    ("Task", "project"): _relation("Task", "Project", PROJECT, "project_id"),
    ("Task", "assignee"): _relation("Task", "User", USER, "assigned_to"),
    ("Task", "createdBy"): _created_by("Task"),
    ("Project", "createdBy"): _created_by("Project"),
    ("Project", "members"): _project_members,
    ("Project", "tasks"): _project_tasks,
    ("Project", "taskCounts"): _task_counts,
    ("User", "role"): _user_detail,
    ("User", "isActive"): _user_detail,
    ("User", "createdAt"): _user_detail,
    ("User", "projects"): _user_projects,
}
