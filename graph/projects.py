"""Projects and their members: the Project type, project, projects, and the project mutations."""

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from auth import policy
from core.errors import NotFound
from db import models, projects
from db.records import ProjectRecord
from db.tasks import TASK_SORTS
from graph.context import Info
from graph.inputs import given
from graph.pagination import (
    BY_ID_ONLY,
    DEFAULT_PAGE_SIZE,
    Connection,
    OrderDirection,
    page_request,
    to_connection,
)
from graph.permissions import (
    CanSeeInputProject,
    CanSeeMembershipProject,
    CanSeeProject,
    IsAdmin,
    IsAuthenticated,
)
from graph.resolving import lazy_class
from graph.users import UserType, creator_field, load_user

if TYPE_CHECKING:
    from graph.tasks import TaskOrder, TaskType


@strawberry.type(description="How many of a project's tasks (those the caller sees) are where.")
class TaskCounts:
    total: int
    pending: int
    in_progress: int
    done: int


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

    @creator_field()
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
        order_by: Annotated["TaskOrder", strawberry.lazy("graph.tasks")] | None = None,
    ) -> Connection[Annotated["TaskType", strawberry.lazy("graph.tasks")]]:
        # Through strawberry.lazy, as in the annotation: graph.tasks imports this module.
        task_type = lazy_class("graph.tasks", "TaskType")
        scope = policy.read_scope(await info.context.require_user())
        request = page_request(info, first=first, after=after, sorts=TASK_SORTS, order=order_by)
        page = await info.context.loaders.tasks_by_project.load((self.id, scope, request))
        return to_connection(page, request, task_type.from_model)

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


@strawberry.input(description="Every field narrows the list further.")
class ProjectFilter:
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive, anywhere in the name or description."
    )
    member_id: int | None = strawberry.field(
        default=None, description="Only projects this user is a member of."
    )


@strawberry.enum(description="What a project list can be ordered by; the id breaks ties.")
class ProjectOrderField(enum.Enum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    NAME = "name"


@strawberry.input(description="How to order projects. Without it: by id, oldest first.")
class ProjectOrder:
    field: ProjectOrderField
    direction: OrderDirection = OrderDirection.ASC


@strawberry.input
class CreateProjectInput:
    name: str = strawberry.field(description="Trimmed; 1 to 200 characters.")
    description: str = strawberry.field(default="", description="At most 5000 characters.")


@strawberry.input(description="Set only the fields to change.")
class UpdateProjectInput:
    id: int
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET

    def changes(self) -> projects.ProjectChanges:
        changes = projects.ProjectChanges()
        if given(self.name, "name"):
            changes["name"] = self.name
        if given(self.description, "description"):
            changes["description"] = self.description
        return changes


@strawberry.input
class DeleteProjectInput:
    id: int


@strawberry.input
class ProjectMemberInput:
    project_id: int
    user_id: int


@strawberry.type
class ProjectPayload:
    project: ProjectType


@strawberry.type
class DeleteProjectPayload:
    deleted_id: int = strawberry.field(description="The deleted project; its tasks went with it.")


@strawberry.type
class ProjectMemberPayload:
    project: ProjectType
    user: UserType


@strawberry.type
class RemoveProjectMemberPayload:
    project: ProjectType
    user: UserType
    unassigned_task_count: int = strawberry.field(
        description="How many of the project's tasks were assigned to the user and no longer are."
    )


async def _project(info: Info, project_id: int) -> ProjectType:
    found = await info.context.loaders.project_by_id.load(project_id)
    if found is None:
        raise NotFound(f"No project has the id {project_id}.", field="id")
    return ProjectType.from_model(found)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[CanSeeProject],
        description="A project: admins see all, a user the projects they are a member of.",
    )
    async def project(self, info: Info, id: int) -> ProjectType | None:
        return await _project(info, id)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Projects: admins see all, a user the projects they are a member of.",
    )
    async def projects(
        self,
        info: Info,
        filter: ProjectFilter | None = None,
        order_by: ProjectOrder | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[ProjectType]:
        scope = policy.read_scope(await info.context.require_user())
        request = page_request(
            info,
            first=first,
            after=after,
            sorts=projects.PROJECT_SORTS,
            order=order_by,
        )
        f = filter or ProjectFilter()
        project_filter = projects.ProjectFilter(search=f.search or None, member_id=f.member_id)
        async with info.context.session_factory() as session:
            page = await projects.list_projects(
                session=session, scope=scope, project_filter=project_filter, request=request
            )
        return to_connection(page, request, ProjectType.from_model)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAdmin], description="Admins only.")
    async def create_project(self, info: Info, input: CreateProjectInput) -> ProjectPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            project = await projects.create_project(
                session=session, name=input.name, description=input.description, created_by=user.id
            )
        return ProjectPayload(project=ProjectType.from_model(project))

    @strawberry.mutation(
        permission_classes=[CanSeeInputProject, IsAdmin], description="Admins only."
    )
    async def update_project(self, info: Info, input: UpdateProjectInput) -> ProjectPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            project = await projects.update_project(
                session=session, project_id=input.id, changes=input.changes(), actor_id=user.id
            )
        if project is None:
            raise NotFound(f"No project has the id {input.id}.", field="id")
        info.context.loaders.project_by_id.clear(input.id)
        return ProjectPayload(project=ProjectType.from_model(project))

    @strawberry.mutation(
        permission_classes=[CanSeeInputProject, IsAdmin],
        description="Admins only. Deletes the project's tasks too.",
    )
    async def delete_project(self, info: Info, input: DeleteProjectInput) -> DeleteProjectPayload:
        user = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            deleted = await projects.delete_project(
                session=session, project_id=input.id, actor_id=user.id
            )
        if not deleted:
            raise NotFound(f"No project has the id {input.id}.", field="id")
        return DeleteProjectPayload(deleted_id=input.id)

    @strawberry.mutation(
        permission_classes=[CanSeeMembershipProject, IsAdmin], description="Admins only."
    )
    async def add_project_member(
        self, info: Info, input: ProjectMemberInput
    ) -> ProjectMemberPayload:
        actor = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            user = await projects.add_member(
                session=session,
                project_id=input.project_id,
                user_id=input.user_id,
                actor_id=actor.id,
            )
        return ProjectMemberPayload(
            project=await _project(info, input.project_id), user=UserType.from_model(user)
        )

    @strawberry.mutation(
        permission_classes=[CanSeeMembershipProject, IsAdmin],
        description="Admins only. Unassigns the user's tasks in the project.",
    )
    async def remove_project_member(
        self, info: Info, input: ProjectMemberInput
    ) -> RemoveProjectMemberPayload:
        actor = await info.context.require_user()
        async with info.context.session_factory.begin() as session:
            unassigned = await projects.remove_member(
                session=session,
                project_id=input.project_id,
                user_id=input.user_id,
                actor_id=actor.id,
            )
        user = await info.context.loaders.user_by_id.load(input.user_id)
        if user is None:
            raise NotFound(f"No user has the id {input.user_id}.", field="userId")
        return RemoveProjectMemberPayload(
            project=await _project(info, input.project_id),
            user=UserType.from_model(user),
            unassigned_task_count=unassigned,
        )
