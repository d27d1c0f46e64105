"""Data functions for projects and their members."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from core.errors import BadUserInput, Conflict
from db import events
from db.models import NAME_MAX, Project, ProjectMember, Task, User, utcnow
from db.paging import (
    BY_ID,
    Nested,
    Page,
    PageRequest,
    SortKey,
    fetch_nested_pages,
    fetch_page,
)
from db.scopes import ReadScope, has_member, shares_a_project, visible_projects
from db.text import clean_description, clean_text, search_condition

PROJECT_SORTS: dict[str, SortKey] = {
    "id": BY_ID,
    "created_at": SortKey(col(Project.created_at), lambda p: p.created_at, "datetime"),
    "updated_at": SortKey(col(Project.updated_at), lambda p: p.updated_at, "datetime"),
    "name": SortKey(col(Project.name), lambda p: p.name, "text"),
}

_member_table = ProjectMember.__table__  # type: ignore[attr-defined]
_MEMBERS = Nested(
    entity=User,
    id_column=col(User.id),
    parent=col(ProjectMember.project_id),
    source=sa.join(User, _member_table, col(User.id) == col(ProjectMember.user_id)),
)
_PROJECTS_OF_MEMBER = Nested(
    entity=Project,
    id_column=col(Project.id),
    parent=col(ProjectMember.user_id),
    source=sa.join(Project, _member_table, col(Project.id) == col(ProjectMember.project_id)),
)


@dataclass(frozen=True, slots=True)
class ProjectFilter:
    search: Any = None  # the caller's text, or a bound parameter holding its search_pattern
    member_id: Any = None


class ProjectChanges(TypedDict, total=False):
    name: str
    description: str


def clean_name(name: str) -> str:
    """Trimmed, 1 to NAME_MAX characters, else BAD_USER_INPUT on `name`."""
    return clean_text(
        name, field="name", what="A project name", min_length=1, max_length=NAME_MAX, trim=True
    )


def project_conditions(
    scope: ReadScope, project_filter: ProjectFilter
) -> list[ColumnElement[bool]]:
    """What the scope may read and the filter matches, on `project` rows (values may be bound
    parameters)."""
    conditions = visible_projects(scope)
    if project_filter.member_id is not None:
        conditions.append(has_member(project_filter.member_id))
    if project_filter.search is not None:
        search = project_filter.search
        conditions.append(search_condition(search, col(Project.name), col(Project.description)))
    return conditions


async def get_projects(*, session: AsyncSession, project_ids: Sequence[int]) -> list[Project]:
    """The projects with these ids that exist, in any order."""
    result = await session.execute(sa.select(Project).where(col(Project.id).in_(project_ids)))
    return list(result.scalars())


async def list_projects(
    *, session: AsyncSession, scope: ReadScope, project_filter: ProjectFilter, request: PageRequest
) -> Page[Project]:
    """The projects the scope may read that match the filter, one page of them."""
    return await fetch_page(
        session,
        entity=Project,
        id_column=col(Project.id),
        conditions=project_conditions(scope, project_filter),
        sort=PROJECT_SORTS[request.sort],
        request=request,
    )


async def list_members(
    *, session: AsyncSession, project_ids: Sequence[int], request: PageRequest
) -> dict[int, Page[User]]:
    """The same page of several projects' members (by user id), in one statement."""
    return await fetch_nested_pages(
        session, nested=_MEMBERS, parent_ids=project_ids, conditions=[], sort=BY_ID, request=request
    )


async def list_projects_of_members(
    *, session: AsyncSession, user_ids: Sequence[int], request: PageRequest
) -> dict[int, Page[Project]]:
    """The same page of several users' projects (by project id), in one statement."""
    return await fetch_nested_pages(
        session,
        nested=_PROJECTS_OF_MEMBER,
        parent_ids=user_ids,
        conditions=[],
        sort=BY_ID,
        request=request,
    )


async def memberships(
    *, session: AsyncSession, user_id: int, project_ids: Sequence[int]
) -> set[int]:
    """Which of `project_ids` the user is a member of."""
    query = sa.select(col(ProjectMember.project_id)).where(
        col(ProjectMember.user_id) == user_id, col(ProjectMember.project_id).in_(project_ids)
    )
    return set((await session.execute(query)).scalars())


async def member_ids(
    *, session: AsyncSession, project_ids: Sequence[int]
) -> dict[int, frozenset[int]]:
    """The ids of each project's members, in one statement."""
    query = sa.select(col(ProjectMember.project_id), col(ProjectMember.user_id)).where(
        col(ProjectMember.project_id).in_(project_ids)
    )
    found: dict[int, set[int]] = {project_id: set() for project_id in project_ids}
    for project_id, user_id in (await session.execute(query)).all():
        found[project_id].add(user_id)
    return {project_id: frozenset(ids) for project_id, ids in found.items()}


async def users_sharing_a_project(
    *, session: AsyncSession, user_id: int, other_ids: Sequence[int]
) -> set[int]:
    """Which of `other_ids` are members of at least one project `user_id` is a member of."""
    query = sa.select(col(User.id)).where(
        col(User.id).in_(other_ids), shares_a_project(user_id, col(User.id))
    )
    return {found for found in (await session.execute(query)).scalars() if found is not None}


async def ensure_active_member(
    *, session: AsyncSession, project_id: int, user_id: int, field: str = "assignee_id"
) -> None:
    """BAD_USER_INPUT on `field` unless the user exists and is an active member of the project.

    The membership row is locked (PostgreSQL) so it cannot be removed before the caller commits.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise BadUserInput(f"No user has the id {user_id}.", field=field)
    member = await session.execute(
        sa.select(col(ProjectMember.user_id))
        .where(col(ProjectMember.project_id) == project_id, col(ProjectMember.user_id) == user_id)
        .with_for_update(read=True)
    )
    if member.first() is None or not user.is_active:
        raise BadUserInput(
            f"User {user_id} is not an active member of project {project_id}.", field=field
        )


def _project_event(
    kind: events.Kind,
    project_id: int,
    actor_id: int | None,
    *,
    fields: tuple[str, ...] = (),
    members: tuple[int, ...] | None = None,
) -> events.Event:
    return events.Event(
        topic=events.Topic.PROJECT,
        kind=kind,
        subject=project_id,
        at=utcnow(),
        actor_id=actor_id,
        fields=fields,
        members=members,
    )


async def create_project(
    *, session: AsyncSession, name: str, description: str, created_by: int | None
) -> Project:
    """Insert a project after checking its name and description."""
    project = Project(
        name=clean_name(name), description=clean_description(description), created_by=created_by
    )
    session.add(project)
    await session.flush()
    assert project.id is not None
    created = _project_event(
        events.Kind.CREATED, project.id, created_by, fields=("name", "description")
    )
    await events.publish(session, [created])
    return project


async def update_project(
    *,
    session: AsyncSession,
    project_id: int,
    changes: ProjectChanges,
    actor_id: int | None = None,
) -> Project | None:
    """Apply `changes` to a project; None when it is gone."""
    project = await session.get(Project, project_id, with_for_update=True)
    if project is None:
        return None
    values: dict[str, Any] = dict(changes)
    if "name" in changes:
        values["name"] = clean_name(changes["name"])
    if "description" in changes:
        values["description"] = clean_description(changes["description"])
    changed = tuple(n for n, v in values.items() if getattr(project, n) != v)
    for name, value in values.items():
        setattr(project, name, value)
    project.updated_at = utcnow()
    session.add(project)
    await session.flush()
    updated = _project_event(events.Kind.UPDATED, project_id, actor_id, fields=changed)
    await events.publish(session, [updated])
    return project


async def delete_project(
    *, session: AsyncSession, project_id: int, actor_id: int | None = None
) -> bool:
    """Delete a project with its tasks and memberships; False when there was none.

    Two events go with the transaction: the project's DELETED (naming its members) and one
    PROJECT_DELETED task event (its tasks per assignee), not one event per task."""
    per_assignee = await session.execute(
        sa.select(col(Task.assigned_to), sa.func.count())
        .where(col(Task.project_id) == project_id)
        .group_by(col(Task.assigned_to))
    )
    counts = {assignee or 0: int(n) for assignee, n in per_assignee.all()}
    members = await session.execute(
        sa.select(col(ProjectMember.user_id)).where(col(ProjectMember.project_id) == project_id)
    )
    member_ids = tuple(members.scalars())
    result = await session.execute(sa.delete(Project).where(col(Project.id) == project_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    tasks_gone = events.Event(
        topic=events.Topic.TASK,
        kind=events.Kind.PROJECT_DELETED,
        subject=project_id,
        at=utcnow(),
        actor_id=actor_id,
        before=(project_id, None),
        counts=counts,
    )
    deleted = _project_event(events.Kind.DELETED, project_id, actor_id, members=member_ids)
    await events.publish(session, [tasks_gone, deleted])
    return True


async def add_member(
    *, session: AsyncSession, project_id: int, user_id: int, actor_id: int | None = None
) -> User:
    """Make an active user a member: unknown or inactive is BAD_USER_INPUT, twice is CONFLICT."""
    user = await session.get(User, user_id)
    if user is None:
        raise BadUserInput(f"No user has the id {user_id}.", field="user_id")
    if not user.is_active:
        raise BadUserInput(f"User {user_id} is deactivated.", field="user_id")
    if await session.get(ProjectMember, (project_id, user_id)) is not None:
        raise Conflict(
            f"User {user_id} is already a member of project {project_id}.", field="user_id"
        )
    session.add(ProjectMember(project_id=project_id, user_id=user_id))
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent add won the race
        raise Conflict(
            f"User {user_id} is already a member of project {project_id}.", field="user_id"
        ) from exc
    added = _project_event(events.Kind.MEMBER_ADDED, project_id, actor_id, members=(user_id,))
    await events.publish(session, [added])
    return user


async def remove_member(
    *, session: AsyncSession, project_id: int, user_id: int, actor_id: int | None = None
) -> int:
    """End a membership and unassign the user's tasks in the project; how many were unassigned.

    A MEMBER_REMOVED event and an UPDATED event per unassigned task go with the transaction."""
    if await session.get(User, user_id) is None:
        raise BadUserInput(f"No user has the id {user_id}.", field="user_id")
    removed = await session.execute(
        sa.delete(ProjectMember).where(
            col(ProjectMember.project_id) == project_id, col(ProjectMember.user_id) == user_id
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise BadUserInput(
            f"User {user_id} is not a member of project {project_id}.", field="user_id"
        )
    at = utcnow()
    unassigned = await session.execute(
        sa.update(Task)
        .where(col(Task.project_id) == project_id, col(Task.assigned_to) == user_id)
        .values(assigned_to=None, updated_at=at)
        .returning(col(Task.id))
    )
    task_ids = list(unassigned.scalars())
    changed = [
        events.Event(
            topic=events.Topic.TASK,
            kind=events.Kind.UPDATED,
            subject=task_id,
            at=at,
            actor_id=actor_id,
            fields=("assigneeId",),
            before=(project_id, user_id),
            after=(project_id, None),
        )
        for task_id in task_ids
        if task_id is not None
    ]
    removed_event = _project_event(
        events.Kind.MEMBER_REMOVED, project_id, actor_id, members=(user_id,)
    )
    await events.publish(session, [*changed, removed_event])
    return len(task_ids)
