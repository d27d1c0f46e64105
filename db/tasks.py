"""Data functions for tasks: reads filtered by the caller's scope in SQL, and validated writes."""

from collections.abc import Sequence
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.errors import BadUserInput
from db import counters, events, projects
from db.counters import TaskFilter as TaskFilter  # re-exported: the filter of task lists
from db.counters import task_conditions
from db.models import TITLE_MAX, Project, Task, TaskStatus, User, utcnow
from db.paging import (
    BY_ID,
    Joined,
    Keyset,
    Nested,
    Page,
    PageRequest,
    SortKey,
    after_conditions,
    fetch_nested_pages,
    fetch_page,
    order_columns,
)
from db.records import PROJECT_SHAPE, TASK_SHAPE, USER_SHAPE, TaskRecord
from db.scopes import ReadScope
from db.text import clean_description, clean_text

# Statuses sort in workflow order, not alphabetically.
STATUS_ORDER = {TaskStatus.PENDING: 0, TaskStatus.IN_PROGRESS: 1, TaskStatus.DONE: 2}
_STATUS_RANK = sa.case(STATUS_ORDER, value=col(Task.status))

TASK_SORTS: dict[str, SortKey] = {
    "id": BY_ID,
    "created_at": SortKey(col(Task.created_at), lambda t: t.created_at, "datetime"),
    "updated_at": SortKey(col(Task.updated_at), lambda t: t.updated_at, "datetime"),
    "title": SortKey(col(Task.title), lambda t: t.title, "text"),
    "status": SortKey(_STATUS_RANK, lambda t: STATUS_ORDER[t.status], "int"),
}

_BY_PROJECT = Nested(
    entity=Task,
    id_column=col(Task.id),
    parent=col(Task.project_id),
    source=Task.__table__,  # type: ignore[attr-defined]
)


# The columns of an export, in the order of its CSV.
EXPORT_COLUMNS = (
    col(Task.id),
    col(Task.project_id),
    col(Task.title),
    col(Task.description),
    col(Task.status),
    col(Task.assigned_to),
    col(Task.created_at),
    col(Task.updated_at),
)


class TaskChanges(TypedDict, total=False):
    title: str
    description: str
    status: TaskStatus
    assignee_id: int | None
    project_id: int


def clean_title(title: str) -> str:
    """Trimmed, 1 to TITLE_MAX characters, else BAD_USER_INPUT on `title`."""
    return clean_text(
        title, field="title", what="A title", min_length=1, max_length=TITLE_MAX, trim=True
    )


async def get_tasks(
    *, session: AsyncSession, task_ids: Sequence[int]
) -> list[tuple[Task, Project | None, User | None]]:
    """The tasks with these ids that exist, in any order, each with its project and assignee
    (None when it has none), in one statement."""
    query = (
        sa.select(Task, Project, User)
        .outerjoin(Project, col(Project.id) == col(Task.project_id))
        .outerjoin(User, col(User.id) == col(Task.assigned_to))
        .where(col(Task.id).in_(task_ids))
    )
    return [(task, project, user) for task, project, user in (await session.execute(query)).all()]


async def list_tasks(
    *,
    session: AsyncSession,
    scope: ReadScope,
    task_filter: TaskFilter,
    request: PageRequest,
    with_project: bool = False,
    with_assignee: bool = False,
) -> Page[TaskRecord]:
    """The tasks the scope may read that match the filter, one page of them, as plain records.

    With `with_project`/`with_assignee`, each item's ProjectRecord / assignee UserRecord (or None)
    comes in the same statement, in `Page.related`, in that order.
    """
    joined: list[Joined] = []
    if with_project:
        joined.append((PROJECT_SHAPE, col(Project.id) == col(Task.project_id)))
    if with_assignee:
        joined.append((USER_SHAPE, col(User.id) == col(Task.assigned_to)))
    return await fetch_page(
        session,
        entity=Task,
        id_column=col(Task.id),
        conditions=task_conditions(scope, task_filter),
        sort=TASK_SORTS[request.sort],
        request=request,
        shape=TASK_SHAPE,
        joined=joined,
        total=counters.task_count(scope, task_filter) if request.with_total else None,
    )


async def export_rows(
    *, session: AsyncSession, scope: ReadScope, task_filter: TaskFilter, request: PageRequest
) -> tuple[list[Any], Keyset | None]:
    """One keyset page of plain rows (EXPORT_COLUMNS) in the `tasks` list's scope, filter and
    order, and the keyset to continue after it (None at the end)."""
    sort = TASK_SORTS[request.sort]
    query = (
        sa.select(*EXPORT_COLUMNS)
        .where(*task_conditions(scope, task_filter), *after_conditions(sort, col(Task.id), request))
        .order_by(*order_columns(sort, col(Task.id), request.descending))
        .limit(request.first)
    )
    rows = list((await session.execute(query)).all())
    if len(rows) < request.first:
        return rows, None
    last = rows[-1]
    return rows, Keyset(sort.value(last), last.id)


async def count_tasks(*, session: AsyncSession, scope: ReadScope, task_filter: TaskFilter) -> int:
    """How many tasks the scope may read match the filter (from the counters when they can)."""
    return int(
        (await session.execute(sa.select(counters.task_count(scope, task_filter)))).scalar_one()
    )


async def list_project_tasks(
    *, session: AsyncSession, scope: ReadScope, project_ids: Sequence[int], request: PageRequest
) -> dict[int, Page[Task]]:
    """The same page of several projects' tasks, with their totals from the counters, in one
    statement."""
    return await fetch_nested_pages(
        session,
        nested=_BY_PROJECT,
        parent_ids=project_ids,
        conditions=task_conditions(scope, TaskFilter()),
        sort=TASK_SORTS[request.sort],
        request=request,
        totals=lambda ids: counters.project_totals(scope, ids),
    )


async def count_by_status(
    *, session: AsyncSession, scope: ReadScope, project_ids: Sequence[int]
) -> dict[int, dict[TaskStatus, int]]:
    """Per project, how many of the tasks the scope may read are in each status (counters)."""
    query = counters.project_status_counts(scope, project_ids)
    counts: dict[int, dict[TaskStatus, int]] = {pid: {} for pid in project_ids}
    for project_id, status, n in (await session.execute(query)).all():
        counts[project_id][TaskStatus(status)] = int(n)
    return counts


async def create_task(
    *,
    session: AsyncSession,
    project_id: int,
    title: str,
    description: str,
    status: TaskStatus,
    assignee_id: int | None,
    created_by: int | None,
) -> Task:
    """Insert a task after checking its project and assignee (BAD_USER_INPUT otherwise); its
    CREATED event goes with the transaction."""
    task = Task(
        project_id=project_id,
        title=clean_title(title),
        description=clean_description(description),
        status=status,
        assigned_to=assignee_id,
        created_by=created_by,
    )
    if await session.get(Project, project_id) is None:
        raise BadUserInput(f"No project has the id {project_id}.", field="project_id")
    if assignee_id is not None:
        await projects.ensure_active_member(
            session=session, project_id=project_id, user_id=assignee_id
        )
    session.add(task)
    await session.flush()
    assert task.id is not None
    created = events.Event(
        topic=events.Topic.TASK,
        kind=events.Kind.CREATED,
        subject=task.id,
        at=task.created_at,
        actor_id=created_by,
        fields=tuple(EVENT_FIELDS.values()),
        after=(project_id, assignee_id),
    )
    await events.publish(session, [created])
    return task


# A task's columns as events name them (the GraphQL field names).
EVENT_FIELDS = {
    "title": "title",
    "description": "description",
    "status": "status",
    "assigned_to": "assigneeId",
    "project_id": "projectId",
}


async def update_task(
    *, session: AsyncSession, task_id: int, changes: TaskChanges, actor_id: int | None = None
) -> Task | None:
    """Apply `changes` to a task (None when it is gone), keeping its assignee a member; an
    UPDATED event naming the fields whose values changed goes with the transaction."""
    task = await session.get(Task, task_id, with_for_update=True)
    if task is None:
        return None
    before = (task.project_id, task.assigned_to)
    values: dict[str, Any] = dict(changes)
    if "title" in changes:
        values["title"] = clean_title(changes["title"])
    if "description" in changes:
        values["description"] = clean_description(changes["description"])
    if "assignee_id" in values:
        values["assigned_to"] = values.pop("assignee_id")
    await _check_placement(session, task, changes)
    changed = tuple(EVENT_FIELDS[n] for n, v in values.items() if getattr(task, n) != v)
    for name, value in values.items():
        setattr(task, name, value)
    task.updated_at = utcnow()
    session.add(task)
    await session.flush()
    updated = events.Event(
        topic=events.Topic.TASK,
        kind=events.Kind.UPDATED,
        subject=task_id,
        at=task.updated_at,
        actor_id=actor_id,
        fields=changed,
        before=before,
        after=(task.project_id, task.assigned_to),
    )
    await events.publish(session, [updated])
    return task


async def _check_placement(session: AsyncSession, task: Task, changes: TaskChanges) -> None:
    """A task's assignee must be an active member of the project it ends up in."""
    project_id = changes.get("project_id", task.project_id)
    if "project_id" in changes and await session.get(Project, project_id) is None:
        raise BadUserInput(f"No project has the id {project_id}.", field="project_id")
    assignee_id = changes.get("assignee_id", task.assigned_to)
    if assignee_id is None or ("assignee_id" not in changes and "project_id" not in changes):
        return
    field = "assignee_id" if "assignee_id" in changes else "project_id"
    await projects.ensure_active_member(
        session=session, project_id=project_id, user_id=assignee_id, field=field
    )


async def delete_task(*, session: AsyncSession, task_id: int, actor_id: int | None = None) -> bool:
    """Delete a task; False when there was none. Its DELETED event goes with the transaction."""
    result = await session.execute(
        sa.delete(Task)
        .where(col(Task.id) == task_id)
        .returning(col(Task.project_id), col(Task.assigned_to))
    )
    row = result.one_or_none()
    if row is None:
        return False
    deleted = events.Event(
        topic=events.Topic.TASK,
        kind=events.Kind.DELETED,
        subject=task_id,
        at=utcnow(),
        actor_id=actor_id,
        before=(row[0], row[1]),
    )
    await events.publish(session, [deleted])
    return True
