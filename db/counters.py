"""Task counts without scanning tasks: the `task_count` counters, kept exact by triggers
(migration 0004), asked the same question as a TaskFilter asks of `task` rows.

Every count is an SQL expression or statement, so it can ride in the statement of a page (or of
a whole response). The filter lives here, beside both of its translations (conditions on `task`
rows and on counter rows), so the two cannot drift apart; db/tasks re-exports it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from db.models import Task, TaskCount, TaskStatus
from db.scopes import ReadScope, visible_tasks
from db.text import search_condition

UNASSIGNED = 0  # the assignee_key of tasks without an assignee (user ids start at 1)
ALL_PROJECTS = 0  # the project_id of the roll-up rows (project ids start at 1)
ASSIGNED = -1  # the roll-up rows' assignee_key for tasks with any assignee

ProjectId = int | sa.SQLColumnExpression[Any]  # a value, or a column to correlate with


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Every field narrows the list further; None means no condition (an empty `statuses`
    matches nothing)."""

    project_id: int | None = None
    statuses: tuple[TaskStatus, ...] | None = None
    assignee_id: int | None = None
    unassigned: bool | None = None
    search: Any = None  # the caller's text, or a bound parameter holding its search_pattern


def task_conditions(scope: ReadScope, task_filter: TaskFilter) -> list[ColumnElement[bool]]:
    """Conditions on `task` rows: what the scope may read and the filter matches."""
    conditions = visible_tasks(scope)
    f = task_filter
    if f.project_id is not None:
        conditions.append(col(Task.project_id) == f.project_id)
    if f.statuses is not None:
        conditions.append(col(Task.status).in_(f.statuses))
    if f.assignee_id is not None:
        conditions.append(col(Task.assigned_to) == f.assignee_id)
    if f.unassigned is not None:
        assigned = col(Task.assigned_to)
        conditions.append(assigned.is_(None) if f.unassigned else assigned.is_not(None))
    if f.search is not None:
        conditions.append(search_condition(f.search, col(Task.title), col(Task.description)))
    return conditions


def counters_answer(task_filter: TaskFilter) -> bool:
    """The counters know every filter but `search` (they do not count words)."""
    return task_filter.search is None


def task_count(scope: ReadScope, task_filter: TaskFilter) -> ColumnElement[int]:
    """How many tasks the scope may read match the filter, as a scalar subquery: a sum over the
    counters when they can answer, else `count(*)` over `task`."""
    if counters_answer(task_filter):
        return _sum(_counter_conditions(scope, task_filter))
    counted = sa.select(sa.func.count()).select_from(Task)
    return counted.where(*task_conditions(scope, task_filter)).correlate(None).scalar_subquery()


def task_counts_by_status(
    scope: ReadScope, project_id: ProjectId
) -> dict[TaskStatus, ColumnElement[int]]:
    """Per status, how many of a project's tasks the scope may read: scalar subqueries, correlated
    with the enclosing statement when `project_id` is one of its columns."""
    in_project = _project_conditions(scope, project_id)
    return {s: _sum([*in_project, col(TaskCount.status) == s]) for s in TaskStatus}


def project_status_counts(
    scope: ReadScope, project_ids: Sequence[int]
) -> sa.Select[int, TaskStatus, int]:
    """(project id, status, count) of the tasks the scope may read, for every project and status
    that has any: one statement for many projects."""
    project, status = col(TaskCount.project_id), col(TaskCount.status)
    return (
        sa.select(project, status, sa.func.sum(col(TaskCount.n)))
        .where(project.in_(project_ids), *_project_conditions(scope, None))
        .group_by(project, status)
    )


def project_totals(scope: ReadScope, project_ids: Sequence[int]) -> sa.Select[int, int]:
    """(project id, count) of the tasks the scope may read, for every project that has any."""
    project = col(TaskCount.project_id)
    return (
        sa.select(project, sa.func.sum(col(TaskCount.n)))
        .where(project.in_(project_ids), *_project_conditions(scope, None))
        .group_by(project)
    )


def _sum(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[int]:
    total: ColumnElement[Any] = sa.func.coalesce(sa.func.sum(col(TaskCount.n)), 0)
    return sa.select(total).where(*conditions).correlate_except(TaskCount).scalar_subquery()


def _counter_conditions(scope: ReadScope, f: TaskFilter) -> list[ColumnElement[bool]]:
    """Conditions on counter rows that sum to the count of `task_conditions(scope, f)`."""
    key = col(TaskCount.assignee_key)
    conditions: list[ColumnElement[bool]] = []
    if f.statuses is not None:
        conditions.append(col(TaskCount.status).in_(f.statuses))
    if scope.user_id is None and f.project_id is None and f.assignee_id is None:
        # Across all projects and assignees: the roll-up rows, a few whatever the table's size.
        conditions.append(col(TaskCount.project_id) == ALL_PROJECTS)
        if f.unassigned is not None:
            conditions.append(key == (UNASSIGNED if f.unassigned else ASSIGNED))
        return conditions
    conditions += _project_conditions(scope, f.project_id)
    if f.assignee_id is not None:
        conditions.append(_assigned_to(f.assignee_id))
    if f.unassigned is not None:
        conditions.append(key == UNASSIGNED if f.unassigned else key != UNASSIGNED)
    return conditions


def _project_conditions(
    scope: ReadScope, project_id: ProjectId | None
) -> list[ColumnElement[bool]]:
    """Per-project counter rows (never the roll-ups) of one project or any, in the scope."""
    project = col(TaskCount.project_id)
    conditions: list[ColumnElement[bool]] = [project != ALL_PROJECTS]
    if project_id is not None:
        conditions.append(project == project_id)
    if scope.user_id is not None:
        conditions.append(_assigned_to(scope.user_id))
    return conditions


def _assigned_to(user_id: Any) -> ColumnElement[bool]:
    # Key 0 means unassigned, and no user has the id 0: like `assigned_to = 0`, it matches none.
    # (A bound parameter, as the compiled read path passes, never holds 0: ids start at 1.)
    if isinstance(user_id, int) and user_id == UNASSIGNED:
        return sa.false()
    matches: ColumnElement[bool] = col(TaskCount.assignee_key) == user_id
    return matches
