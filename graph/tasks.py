"""Tasks: the Task type, task, tasks, createTask, updateTask and deleteTask."""

import enum
from collections.abc import Awaitable
from datetime import datetime

import strawberry

from auth import policy
from core.errors import NotFound
from db import models, tasks
from db.models import TaskStatus
from db.paging import Page
from db.records import ProjectRecord, TaskRecord
from graph.context import Info
from graph.inputs import given
from graph.pagination import (
    DEFAULT_PAGE_SIZE,
    Connection,
    OrderDirection,
    node_selects,
    page_request,
    to_connection,
)
from graph.permissions import (
    CanChangeTask,
    CanSeeInputTask,
    CanSeeNewTaskProject,
    CanSeeTask,
    IsAdmin,
    IsAuthenticated,
)
from graph.projects import ProjectType
from graph.resolving import loaded
from graph.users import UserType, creator_field, load_user, user_or_none

# The domain enum is the GraphQL enum: registering it marks the same class.
strawberry.enum(TaskStatus, name="TaskStatus", description="Where a task stands.")


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


@strawberry.type(name="Task", description="A piece of work in a project.")
class TaskType:
    id: int
    title: str
    description: str
    status: TaskStatus
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

    # Sync resolvers: when the page already primed the loader (Query.tasks below), the value
    # comes back at once, and graphql-core schedules no coroutine for each of the page's rows.
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
        return loaded(info.context.loaders.user_by_id.load(self.assignee_id), user_or_none)

    @creator_field()
    async def created_by(self, info: Info) -> UserType | None:
        return await load_user(info, self.created_by_id)


@strawberry.input(description="Every field narrows the list further.")
class TaskFilter:
    project_id: int | None = None
    status: list[TaskStatus] | None = strawberry.field(
        default=None, description="Any of these statuses."
    )
    assignee_id: int | None = None
    unassigned: bool | None = strawberry.field(
        default=None, description="true: only unassigned tasks; false: only assigned ones."
    )
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive, anywhere in the title or description."
    )

    def to_domain(self) -> tasks.TaskFilter:
        return tasks.TaskFilter(
            project_id=self.project_id,
            statuses=None if self.status is None else tuple(self.status),
            assignee_id=self.assignee_id,
            unassigned=self.unassigned,
            search=self.search or None,
        )


@strawberry.input
class CreateTaskInput:
    project_id: int
    title: str = strawberry.field(description="Trimmed; 1 to 255 characters.")
    description: str = strawberry.field(default="", description="At most 5000 characters.")
    status: TaskStatus = TaskStatus.PENDING
    assignee_id: int | None = strawberry.field(
        default=None, description="An active member of the project."
    )


@strawberry.input(
    description="Set only the fields to change. The assignee may set title, description and "
    "status; the rest is for admins."
)
class UpdateTaskInput:
    id: int
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    status: TaskStatus | None = strawberry.UNSET
    assignee_id: int | None = strawberry.field(
        default=strawberry.UNSET, description="null unassigns. An active member of the project."
    )
    project_id: int | None = strawberry.field(
        default=strawberry.UNSET, description="Move the task; its assignee must be a member there."
    )

    def changes(self) -> tasks.TaskChanges:
        """The fields that are set; only assigneeId takes null."""
        changes = tasks.TaskChanges()
        if given(self.title, "title"):
            changes["title"] = self.title
        if given(self.description, "description"):
            changes["description"] = self.description
        if given(self.status, "status"):
            changes["status"] = self.status
        if self.assignee_id is not strawberry.UNSET:
            changes["assignee_id"] = self.assignee_id
        if given(self.project_id, "projectId"):
            changes["project_id"] = self.project_id
        return changes


@strawberry.input
class DeleteTaskInput:
    id: int


@strawberry.type
class TaskPayload:
    task: TaskType


@strawberry.type
class DeleteTaskPayload:
    deleted_id: int


def prime_related(
    info: Info, page: Page[TaskRecord], *, with_project: bool, with_assignee: bool
) -> None:
    """Hand the rows joined to a page of tasks to the loaders of their relations."""
    loaders = info.context.loaders
    for related in page.related:
        if with_project and (project := related[0]) is not None:
            loaders.project_by_id.prime(project.id, project)
        if with_assignee and (assignee := related[-1]) is not None:
            loaders.user_by_id.prime(assignee.id, assignee)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[CanSeeTask],
        description="A task: admins see all, a user the tasks assigned to them.",
    )
    async def task(self, info: Info, id: int) -> TaskType | None:
        found = await info.context.loaders.task_by_id.load(id)
        return None if found is None else TaskType.from_model(found)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Tasks: admins see all, a user the tasks assigned to them.",
    )
    async def tasks(
        self,
        info: Info,
        filter: TaskFilter | None = None,
        order_by: TaskOrder | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[TaskType]:
        scope = policy.read_scope(await info.context.require_user())
        request = page_request(
            info, first=first, after=after, sorts=tasks.TASK_SORTS, order=order_by
        )
        task_filter = (filter or TaskFilter()).to_domain()
        # The page's projects and assignees come in the page's own statement when the query
        # asks for them, and prime the loaders that `Task.project`/`Task.assignee` read.
        with_project, with_assignee = node_selects(info, "project"), node_selects(info, "assignee")
        async with info.context.session_factory() as session:
            page = await tasks.list_tasks(
                session=session,
                scope=scope,
                task_filter=task_filter,
                request=request,
                with_project=with_project,
                with_assignee=with_assignee,
            )
        prime_related(info, page, with_project=with_project, with_assignee=with_assignee)
        return to_connection(page, request, TaskType.from_model)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[CanSeeNewTaskProject, IsAdmin], description="Admins only."
    )
    async def create_task(self, info: Info, input: CreateTaskInput) -> TaskPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            task = await tasks.create_task(
                session=session,
                project_id=input.project_id,
                title=input.title,
                description=input.description,
                status=input.status,
                assignee_id=input.assignee_id,
                created_by=user.id,
            )
        return TaskPayload(task=TaskType.from_model(task))

    @strawberry.mutation(
        permission_classes=[CanSeeInputTask, CanChangeTask],
        description="Change a task: its assignee may change title, description and status.",
    )
    async def update_task(self, info: Info, input: UpdateTaskInput) -> TaskPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            task = await tasks.update_task(
                session=session, task_id=input.id, changes=input.changes(), actor_id=user.id
            )
        if task is None:
            raise NotFound(f"No task has the id {input.id}.", field="id")
        info.context.loaders.task_by_id.clear(input.id)
        return TaskPayload(task=TaskType.from_model(task))

    @strawberry.mutation(permission_classes=[CanSeeInputTask, IsAdmin], description="Admins only.")
    async def delete_task(self, info: Info, input: DeleteTaskInput) -> DeleteTaskPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            deleted = await tasks.delete_task(session=session, task_id=input.id, actor_id=user.id)
        if not deleted:
            raise NotFound(f"No task has the id {input.id}.", field="id")
        info.context.loaders.task_by_id.clear(input.id)
        return DeleteTaskPayload(deleted_id=input.id)
