"""Permission classes: thin adapters from a GraphQL field to the caller, the thing, and auth/policy.

Order matters on a field: visibility classes first (an invisible thing is NOT_FOUND, so nobody can
probe which ids exist), then the classes that decide what the caller may do to it (FORBIDDEN).
"""

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from strawberry.permission import BasePermission

from auth import policy
from core.errors import NotFound
from db.models import User
from graph.context import Info

UNAUTHENTICATED_MESSAGE = (
    "Authentication required: send an access token as `Authorization: Bearer <token>`."
)


class HasChanges(Protocol):
    """A mutation input that can say which fields it sets."""

    def changes(self) -> Mapping[str, object]: ...


def _argument(kwargs: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = kwargs
    for part in path:
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


async def _sees_project(info: Info, user: User, project_id: int) -> bool:
    if policy.can_see_project(user, is_member=False):
        return True
    assert user.id is not None
    is_member = await info.context.loaders.membership_by_user_project.load((user.id, project_id))
    return policy.can_see_project(user, is_member=is_member)


async def _sees_user(info: Info, viewer: User, target_id: int) -> bool:
    if policy.can_see_user(viewer, target_id, shares_project=False):
        return True
    assert viewer.id is not None
    shares = await info.context.loaders.shared_project_by_user_pair.load((viewer.id, target_id))
    return policy.can_see_user(viewer, target_id, shares_project=shares)


class IsAuthenticated(BasePermission):
    """Any active user with a valid access token."""

    message = UNAUTHENTICATED_MESSAGE
    error_extensions = {"code": "UNAUTHENTICATED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return await info.context.current_user() is not None


class IsAdmin(BasePermission):
    """An ADMIN. Anonymous callers are told to authenticate, users that they may not."""

    message = "Only an admin may do this."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return policy.is_admin(await info.context.require_user())


class CanSeeProject(BasePermission):
    """The project named by the `id` argument exists and the caller may see it, else NOT_FOUND."""

    path: ClassVar[tuple[str, ...]] = ("id",)
    field: ClassVar[str] = "id"
    # False: an admin naming an unknown project passes, for validation to report it.
    unknown_is_not_found: ClassVar[bool] = True

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        project_id = int(_argument(kwargs, self.path))
        exists = await info.context.loaders.project_by_id.load(project_id) is not None
        hide_unknown = self.unknown_is_not_found or not policy.is_admin(user)
        if (hide_unknown and not exists) or not await _sees_project(info, user, project_id):
            raise NotFound(f"No project has the id {project_id}.", field=self.field)
        return True


class CanSeeInputProject(CanSeeProject):
    """The project named by `input.id`."""

    path = ("input", "id")


class CanSeeMembershipProject(CanSeeProject):
    """The project named by `input.projectId` (adding and removing members)."""

    path = ("input", "project_id")
    field = "projectId"


class CanSeeNewTaskProject(CanSeeMembershipProject):
    """The project a new task goes into; an admin's unknown id is a validation error instead."""

    unknown_is_not_found = False


class CanSeeTask(BasePermission):
    """The task named by `id` exists and the caller may see it, else NOT_FOUND."""

    path: ClassVar[tuple[str, ...]] = ("id",)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        task_id = int(_argument(kwargs, self.path))
        task = await info.context.loaders.task_by_id.load(task_id)
        if task is None or not policy.can_see_task(user, task):
            raise NotFound(f"No task has the id {task_id}.", field="id")
        return True


class CanSeeInputTask(CanSeeTask):
    """The task named by `input.id`."""

    path = ("input", "id")


class CanChangeTask(BasePermission):
    """The caller may make the changes `input` asks of the task `input.id` (after CanSeeTask)."""

    message = "Only an admin may do this: the assignee changes only title, description and status."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        changes: HasChanges = kwargs["input"]
        task = await info.context.loaders.task_by_id.load(int(_argument(kwargs, ("input", "id"))))
        return task is not None and policy.can_change_task(user, task, changes.changes().keys())


class CanSeeUser(BasePermission):
    """The user named by `id` exists and the caller may see them, else NOT_FOUND."""

    path: ClassVar[tuple[str, ...]] = ("id",)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.require_user()
        user_id = int(_argument(kwargs, self.path))
        target = await info.context.loaders.user_by_id.load(user_id)
        if target is None or not await _sees_user(info, viewer, user_id):
            raise NotFound(f"No user has the id {user_id}.", field="id")
        return True


class CanSeeInputUser(CanSeeUser):
    """The user named by `input.id`."""

    path = ("input", "id")


class CanUpdateUser(BasePermission):
    """The caller may make the changes `input` asks of the user `input.id` (after CanSeeUser)."""

    message = "Only an admin may do this: a user changes only their own fullName."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.require_user()
        changes: HasChanges = kwargs["input"]
        target_id = int(_argument(kwargs, ("input", "id")))
        return policy.can_update_user(viewer, target_id, changes.changes().keys())


class CanSeeUserDetails(BasePermission):
    """On a User's role, isActive, createdAt and projects: admins and the user themselves."""

    message = "Only an admin or the user themselves may see this field."
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.current_user()
        return policy.can_see_user_details(
            viewer, source.id, handed_to_owner=source.handed_to_owner
        )


class CanSeeRelatedUser(BasePermission):
    """On createdBy: the user shows only to callers who may see them (null otherwise)."""

    attribute: ClassVar[str] = "created_by_id"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = await info.context.current_user()
        target_id: int | None = getattr(source, self.attribute)
        if viewer is None or target_id is None:
            return False
        return await _sees_user(info, viewer, target_id)


class CanSeeActor(CanSeeRelatedUser):
    """On a live event's actor: who made the change, for callers who may see them."""

    attribute = "actor_id"


class CanSeeEventMember(CanSeeRelatedUser):
    """On a project event's member: the user added or removed, for callers who may see them."""

    attribute = "member_id"
