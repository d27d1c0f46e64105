"""Row scopes: the SQL shape of what a caller may read.

auth/policy.py decides who gets which scope (pure functions over the caller); the data functions
here and in the domain modules filter by it, so list queries and loaders apply one rule.
"""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from db.models import Project, ProjectMember, Task, User


@dataclass(frozen=True, slots=True)
class ReadScope:
    """The rows a caller may read: everything (`user_id` None) or what ties to `user_id`.

    Tied means: tasks assigned to that user, projects that user is a member of, users who share a
    project with that user (and the user themselves).
    """

    user_id: int | None


def has_member(user_id: int) -> ColumnElement[bool]:
    """The project (in the enclosing query) has this user as a member."""
    return sa.exists().where(
        col(ProjectMember.project_id) == col(Project.id), col(ProjectMember.user_id) == user_id
    )


def visible_projects(scope: ReadScope) -> list[ColumnElement[bool]]:
    """Conditions on `project` rows: none for everything, membership otherwise."""
    return [] if scope.user_id is None else [has_member(scope.user_id)]


def visible_tasks(scope: ReadScope) -> list[ColumnElement[bool]]:
    """Conditions on `task` rows: none for everything, assigned to the user otherwise."""
    return [] if scope.user_id is None else [col(Task.assigned_to) == scope.user_id]


def shares_a_project(viewer_id: Any, user_id: Any) -> ColumnElement[bool]:
    """Both users are members of at least one common project."""
    mine, theirs = aliased(ProjectMember), aliased(ProjectMember)
    return sa.exists().where(
        col(mine.user_id) == viewer_id,
        col(theirs.project_id) == col(mine.project_id),
        col(theirs.user_id) == user_id,
    )


def visible_users(scope: ReadScope) -> list[ColumnElement[bool]]:
    """Conditions on `user` rows: none for everything; otherwise the user themselves and the
    users who share a project with them."""
    if scope.user_id is None:
        return []
    return [sa.or_(col(User.id) == scope.user_id, shares_a_project(scope.user_id, col(User.id)))]
