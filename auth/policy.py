"""Who may see and change what: pure functions over the caller and the thing, no I/O.

The GraphQL permission classes (graph/permissions.py) and the list queries' SQL filters
(read_scope, whose SQL shape is db/scopes.py) are built on these, so the rules live in one place.
"""

from collections.abc import Collection
from typing import Protocol

from db.models import Role, Task, User
from db.scopes import ReadScope


class Person(Protocol):
    """What the role rules read of a caller: a loaded User, or the compiled read path's note
    of one (its id and role)."""

    @property
    def id(self) -> int | None: ...

    @property
    def role(self) -> Role: ...


# What a USER may change on a task assigned to them; anything else needs an ADMIN.
ASSIGNEE_TASK_FIELDS = frozenset({"title", "description", "status"})
# What a USER may change on their own account through updateUser.
SELF_USER_FIELDS = frozenset({"full_name"})


def is_admin(user: Person) -> bool:
    """An ADMIN. Whether the account is active is checked earlier: inactive users' tokens are
    refused when the caller is loaded."""
    return user.role == Role.ADMIN


def read_scope(user: Person) -> ReadScope:
    """Admins read everything; a USER reads what ties to them."""
    return ReadScope(user_id=None if is_admin(user) else user.id)


def can_see_project(user: User, *, is_member: bool) -> bool:
    """Admins see every project; a USER sees the projects they are a member of."""
    return is_admin(user) or is_member


def can_see_task(user: User, task: Task) -> bool:
    """Admins see every task; a USER sees the tasks assigned to them."""
    return can_see_task_assigned_to(user, task.assigned_to)


def can_see_task_assigned_to(user: Person, assignee_id: int | None) -> bool:
    """can_see_task for a task known only by its assignee (a live event's payload)."""
    return is_admin(user) or (assignee_id is not None and assignee_id == user.id)


def can_change_task(user: User, task: Task, fields: Collection[str]) -> bool:
    """Admins change anything; the assignee changes only title, description and status."""
    if is_admin(user):
        return True
    return can_see_task(user, task) and set(fields) <= ASSIGNEE_TASK_FIELDS


def can_see_user(viewer: User, target_id: int, *, shares_project: bool) -> bool:
    """Admins see everyone; a USER sees themselves and the users who share a project with them."""
    return is_admin(viewer) or viewer.id == target_id or shares_project


def can_see_user_details(viewer: User | None, target_id: int, *, handed_to_owner: bool) -> bool:
    """Role, active flag, creation date and projects: for admins and the user themselves.

    `handed_to_owner` marks a user object given to the person it describes (register, login,
    refreshToken), whose request may carry no token yet.
    """
    if handed_to_owner:
        return True
    return viewer is not None and (is_admin(viewer) or viewer.id == target_id)


def can_update_user(viewer: User, target_id: int, fields: Collection[str]) -> bool:
    """Admins change anyone's role, active flag and name; a USER only their own name."""
    if is_admin(viewer):
        return True
    return viewer.id == target_id and set(fields) <= SELF_USER_FIELDS
