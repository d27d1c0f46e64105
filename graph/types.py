"""The object types: User, Project, Task, TaskCounts, and the orderings their lists take.

Relations resolve through the request's DataLoaders, so a page of N rows costs one query per
relation, not N.
"""

import asyncio
import enum
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeGuard, TypeVar

import strawberry
from strawberry.permission import PermissionExtension

from auth import policy
from core.errors import BadUserInput, NotFound
from db import models
from db.paging import BY_ID
from db.records import ProjectRecord, TaskRecord, UserRecord
from db.tasks import TASK_SORTS
from graph.context import Info
from graph.pagination import (
    DEFAULT_PAGE_SIZE,
    Connection,
    OrderDirection,
    page_request,
    to_connection,
)
from graph.permissions import CanSeeRelatedUser, CanSeeUserDetails, IsAuthenticated

# The domain enums are the GraphQL enums: registering them marks the same classes.
strawberry.enum(models.Role, name="Role", description="What a user may do.")
strawberry.enum(models.TaskStatus, name="TaskStatus", description="Where a task stands.")

BY_ID_ONLY = {"id": BY_ID}

T = TypeVar("T")


def given(value: T | None, field: str) -> TypeGuard[T]:
    """Whether an optional input field was sent; an explicit null is BAD_USER_INPUT."""
    if value is None:
        raise BadUserInput(f"`{field}` cannot be null.", field=field)
    return value is not strawberry.UNSET


@strawberry.enum(description="What a task list can be ordered by; the id breaks ties.")
class TaskOrderField(enum.Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    TITLE = "title"
    STATUS = strawberry.enum_value("status", description="Workflow order: PENDING first.")


@strawberry.input(description="How to order tasks. Without it: by id, oldest first.")
class TaskOrder:
    field: TaskOrderField
    direction: OrderDirection = OrderDirection.ASC


def _user_detail(description: str) -> Any:
    return strawberry.field(permission_classes=[CanSeeUserDetails], description=description)


@strawberry.type(name="User", description="A person who can log in.")
class UserType:
    id: int
    email: str
    full_name: str
    model: strawberry.Private[models.User | UserRecord]
    # True when handed to the person it describes (register, login), whose request has no token.
    handed_to_owner: strawberry.Private[bool] = False

    @classmethod
    def from_model(cls, user: models.User | UserRecord) -> "UserType":
        assert user.id is not None
        return cls(id=user.id, email=user.email, full_name=user.full_name, model=user)

    @classmethod
    def for_owner(cls, user: models.User) -> "UserType":
        """The user, as shown to themselves."""
        shown = cls.from_model(user)
        shown.handed_to_owner = True
        return shown

    @_user_detail("Admins and the user themselves only.")
    def role(self) -> models.Role | None:
        return self.model.role

    @_user_detail("Admins and the user themselves only.")
    def is_active(self) -> bool | None:
        return self.model.is_active

    @_user_detail("Admins and the user themselves only.")
    def created_at(self) -> datetime | None:
        return self.model.created_at

    @strawberry.field(
        permission_classes=[IsAuthenticated, CanSeeUserDetails],
        description="The projects the user is a member of, by id. Admins and the user only.",
    )
    async def projects(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> "Connection[ProjectType] | None":
        request = page_request(info, first=first, after=after, sorts=BY_ID_ONLY)
        page = await info.context.loaders.projects_by_member.load((self.id, request))
        return to_connection(page, request, ProjectType.from_model)


@strawberry.type(description="How many of a project's tasks (those the caller sees) are where.")
class TaskCounts:
    total: int
    pending: int
    in_progress: int
    done: int


M = TypeVar("M")
R = TypeVar("R")


def loaded(value: Awaitable[M], convert: Callable[[M], R]) -> R | Awaitable[R]:
    """`convert` of a DataLoader's value: at once when the loader already holds it, else an
    awaitable of it (graphql-core accepts either from a resolver)."""
    if isinstance(value, asyncio.Future) and value.done():
        return convert(value.result())

    async def later() -> R:
        return convert(await value)

    return later()


def _user_type(user: models.User | UserRecord | None) -> UserType | None:
    return None if user is None else UserType.from_model(user)


async def load_user(info: Info, user_id: int | None) -> UserType | None:
    """The user with this id through the request's loader; None for no id or no user."""
    user = None if user_id is None else await info.context.loaders.user_by_id.load(user_id)
    return _user_type(user)


def _creator_field() -> Any:
    return strawberry.field(
        extensions=[PermissionExtension([CanSeeRelatedUser()], fail_silently=True)],
        description="Who created it; null when gone or when the caller may not see them.",
    )


@strawberry.type(name="Project", description="A set of tasks and the people working on them.")
class ProjectType:
    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    created_by_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, project: models.Project | ProjectRecord) -> "ProjectType":
        assert project.id is not None
        return cls(
            id=project.id,
            name=project.name,
            description=project.description,
            created_at=project.created_at,
            updated_at=project.updated_at,
            created_by_id=project.created_by,
        )

    @_creator_field()
    async def created_by(self, info: Info) -> UserType | None:
        return await load_user(info, self.created_by_id)

    @strawberry.field(description="The project's members, by user id.")
    async def members(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[UserType]:
        request = page_request(info, first=first, after=after, sorts=BY_ID_ONLY)
        page = await info.context.loaders.members_by_project.load((self.id, request))
        return to_connection(page, request, UserType.from_model)

    @strawberry.field(description="The project's tasks that the caller sees.")
    async def tasks(
        self,
        info: Info,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        order_by: TaskOrder | None = None,
    ) -> "Connection[TaskType]":
        scope = policy.read_scope(await info.context.require_user())
        request = page_request(info, first=first, after=after, sorts=TASK_SORTS, order=order_by)
        page = await info.context.loaders.tasks_by_project.load((self.id, scope, request))
        return to_connection(page, request, TaskType.from_model)

    @strawberry.field(description="Task counts by status, over the tasks the caller sees.")
    async def task_counts(self, info: Info) -> TaskCounts:
        scope = policy.read_scope(await info.context.require_user())
        counts = await info.context.loaders.task_counts_by_project.load((self.id, scope))
        status = models.TaskStatus
        return TaskCounts(
            total=sum(counts.values()),
            pending=counts.get(status.PENDING, 0),
            in_progress=counts.get(status.IN_PROGRESS, 0),
            done=counts.get(status.DONE, 0),
        )


@strawberry.type(name="Task", description="A piece of work in a project.")
class TaskType:
    id: int
    title: str
    description: str
    status: models.TaskStatus
    created_at: datetime
    updated_at: datetime
    project_id: strawberry.Private[int]
    assignee_id: strawberry.Private[int | None]
    created_by_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, task: models.Task | TaskRecord) -> "TaskType":
        assert task.id is not None
        return cls(
            id=task.id,
            title=task.title,
            description=task.description,
            status=task.status,
            created_at=task.created_at,
            updated_at=task.updated_at,
            project_id=task.project_id,
            assignee_id=task.assigned_to,
            created_by_id=task.created_by,
        )

    # Sync resolvers: when the page already primed the loader (graph/tasks.py), the value comes
    # back at once, and graphql-core schedules no coroutine for each of the page's rows.
    @strawberry.field(description="The project the task belongs to.", graphql_type=ProjectType)
    def project(self, info: Info) -> ProjectType | Awaitable[ProjectType]:
        return loaded(info.context.loaders.project_by_id.load(self.project_id), self._project)

    def _project(self, project: models.Project | ProjectRecord | None) -> ProjectType:
        if project is None:  # deleted since the task was read (tasks go with their project)
            raise NotFound(f"No project has the id {self.project_id}.")
        return ProjectType.from_model(project)

    @strawberry.field(
        description="Who the task is assigned to, if anyone.", graphql_type=UserType | None
    )
    def assignee(self, info: Info) -> UserType | Awaitable[UserType | None] | None:
        if self.assignee_id is None:
            return None
        return loaded(info.context.loaders.user_by_id.load(self.assignee_id), _user_type)

    @_creator_field()
    async def created_by(self, info: Info) -> UserType | None:
        return await load_user(info, self.created_by_id)
