"""Live events: the taskEvents and projectEvents subscriptions.

Events arrive from the process's hub (db/listener.py) as compact payloads. Each subscriber keeps
only what the policy lets it see (auth/policy.py, decided per event from the payload's ids), in
the subscriber's view: a task that enters what it may see (created, or assigned to a USER)
arrives as CREATED, one that leaves it (deleted, or assigned away) as DELETED. The rows are then
read through loaders that every subscriber of the process shares for that event, so a thousand
subscribers cost one fetch.
"""

import enum
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

import strawberry
from strawberry.permission import PermissionExtension

from auth import policy
from db import events as ev
from db.listener import OVERFLOW, RECONNECTED, Item, Missed
from db.models import User
from graph.context import Info
from graph.loaders import Loaders
from graph.permissions import CanSeeActor, CanSeeEventMember, IsAuthenticated
from graph.projects import ProjectType
from graph.tasks import TaskType
from graph.users import UserType, load_user

RESYNC_MESSAGES = {
    OVERFLOW: "This subscription fell behind and its pending events were dropped: read the "
    "current state again.",
    RECONNECTED: "The server lost its event connection to the database and may have missed "
    "events: read the current state again.",
    "partial": "A change touched too many tasks or members to list: read the current state again.",
}


@strawberry.enum(description="What a task event means for the subscriber's view.")
class TaskEventKind(enum.Enum):
    CREATED = strawberry.enum_value(
        "CREATED", description="A task appeared: created, or now assigned to you / in your filter."
    )
    UPDATED = strawberry.enum_value("UPDATED", description="A task you see changed.")
    DELETED = strawberry.enum_value(
        "DELETED", description="A task disappeared: deleted, or assigned away / out of your filter."
    )
    IMPORTED = strawberry.enum_value(
        "IMPORTED", description="An import batch committed `taskCount` tasks in `projectId`."
    )
    PROJECT_DELETED = strawberry.enum_value(
        "PROJECT_DELETED", description="`projectId` was deleted with its `taskCount` tasks."
    )
    RESYNC = strawberry.enum_value(
        "RESYNC", description="Events may have been missed: read the current state again."
    )


@strawberry.enum(description="What a project event means for the subscriber's view.")
class ProjectEventKind(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"
    MEMBER_ADDED = "MEMBER_ADDED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    RESYNC = "RESYNC"


@strawberry.type(description="A change to the tasks the subscriber may see.")
class TaskEvent:
    kind: TaskEventKind
    task_id: int | None = strawberry.field(description="The task; null for batch events.")
    project_id: int | None
    changed_fields: list[str] = strawberry.field(
        description="The fields whose values changed (GraphQL names)."
    )
    at: datetime | None = strawberry.field(description="When the change was made.")
    task_count: int | None = strawberry.field(
        description="IMPORTED and PROJECT_DELETED: how many of the tasks you may see."
    )
    message: str | None = strawberry.field(description="RESYNC: why.")
    actor_id: strawberry.Private[int | None]

    @strawberry.field(
        description="The task as it is now, as you may see it; null when deleted or gone from "
        "your view, and for batch events."
    )
    async def task(self, info: Info) -> TaskType | None:
        if self.task_id is None or self.kind not in (TaskEventKind.CREATED, TaskEventKind.UPDATED):
            return None
        user = await info.context.require_user()
        found = await info.context.loaders.task_by_id.load(self.task_id)
        if found is None or not policy.can_see_task(user, found):
            return None
        return TaskType.from_model(found)

    @strawberry.field(
        extensions=[PermissionExtension([CanSeeActor()], fail_silently=True)],
        description="Who made the change; null when unknown or when you may not see them.",
    )
    async def actor(self, info: Info) -> UserType | None:
        return await load_user(info, self.actor_id)


@strawberry.type(description="A change to the projects (or memberships) the subscriber may see.")
class ProjectEvent:
    kind: ProjectEventKind
    project_id: int | None
    changed_fields: list[str]
    at: datetime | None
    message: str | None = strawberry.field(description="RESYNC: why.")
    actor_id: strawberry.Private[int | None]
    member_id: strawberry.Private[int | None]

    @strawberry.field(description="The project now; null when deleted or gone from your view.")
    async def project(self, info: Info) -> ProjectType | None:
        if self.project_id is None or self.kind in (
            ProjectEventKind.DELETED,
            ProjectEventKind.RESYNC,
        ):
            return None
        found = await info.context.loaders.project_by_id.load(self.project_id)
        return None if found is None else ProjectType.from_model(found)

    @strawberry.field(
        extensions=[PermissionExtension([CanSeeEventMember()], fail_silently=True)],
        description="MEMBER_ADDED, MEMBER_REMOVED: the member.",
    )
    async def member(self, info: Info) -> UserType | None:
        return await load_user(info, self.member_id)

    @strawberry.field(
        extensions=[PermissionExtension([CanSeeActor()], fail_silently=True)],
        description="Who made the change; null when unknown or when you may not see them.",
    )
    async def actor(self, info: Info) -> UserType | None:
        return await load_user(info, self.actor_id)


def _resync_reason(item: Item) -> str:
    return item.reason if isinstance(item, Missed) else "partial"


@dataclass(frozen=True, slots=True)
class TaskView:
    """What one taskEvents subscriber sees: the policy, then its filter."""

    user: User
    project_id: int | None
    assignee_id: int | None

    def shows(self, place: ev.Place) -> bool:
        project, assignee = place
        if project is None or self.project_id not in (None, project):
            return False
        if self.assignee_id is not None and assignee != self.assignee_id:
            return False
        return policy.can_see_task_assigned_to(self.user, assignee)

    def count(self, event: ev.Event) -> int | None:
        """Of a batch event's tasks, how many this subscriber sees (None: not listed)."""
        if event.counts is None:
            return None
        project = event.after[0] if event.after[0] is not None else event.before[0]
        return sum(n for a, n in event.counts.items() if self.shows((project, a or None)))

    def kind(self, event: ev.Event) -> TaskEventKind | None:
        if event.kind in (ev.Kind.IMPORTED, ev.Kind.PROJECT_DELETED):
            project = event.after[0] if event.after[0] is not None else event.before[0]
            if self.project_id not in (None, project):
                return None
            n = self.count(event)
            if n is None:  # too many assignees to list: admins see it, users must re-read
                if policy.is_admin(self.user):
                    return TaskEventKind(event.kind.value)
                return TaskEventKind.RESYNC
            return TaskEventKind(event.kind.value) if n else None
        before, after = self.shows(event.before), self.shows(event.after)
        if before and after:
            return TaskEventKind.UPDATED
        if after:
            return TaskEventKind.CREATED
        if before:
            return TaskEventKind.DELETED
        return None

    def wants(self, event: ev.Event) -> bool:
        return self.kind(event) is not None

    def render(self, item: Item) -> TaskEvent | None:
        kind = TaskEventKind.RESYNC if isinstance(item, Missed) else self.kind(item)
        if kind is None:
            return None
        if kind == TaskEventKind.RESYNC or isinstance(item, Missed):
            return TaskEvent(
                kind=TaskEventKind.RESYNC,
                task_id=None,
                project_id=None,
                changed_fields=[],
                at=None,
                task_count=None,
                message=RESYNC_MESSAGES[_resync_reason(item)],
                actor_id=None,
            )
        batch = kind in (TaskEventKind.IMPORTED, TaskEventKind.PROJECT_DELETED)
        place = item.after if item.after[0] is not None else item.before
        return TaskEvent(
            kind=kind,
            task_id=None if batch else int(item.subject),
            project_id=place[0],
            changed_fields=list(item.fields),
            at=item.at,
            task_count=self.count(item) if batch else None,
            message=None,
            actor_id=item.actor_id,
        )


def _use_event_loaders(info: Info, item: Item) -> None:
    """Read this event's rows through loaders shared by every subscriber of the process (and
    never through the connection's own, which would serve rows cached by earlier events)."""
    if isinstance(item, Missed):
        info.context.loaders = Loaders(info.context.session_factory)
        return
    loaders = item.shared.get("loaders")
    if loaders is None:
        loaders = item.shared["loaders"] = Loaders(info.context.session_factory)
    info.context.loaders = loaders


@dataclass(frozen=True, slots=True)
class ProjectView:
    """What one projectEvents subscriber sees: admins every project, a USER their projects."""

    user: User
    project_id: int | None

    def wants(self, event: ev.Event) -> bool:
        """The part decided from the payload alone; `member_now` settles the rest."""
        if self.project_id not in (None, event.subject):
            return False
        # A new project has no members yet: only admins hear of it.
        return policy.is_admin(self.user) or event.kind != ev.Kind.CREATED

    async def render(self, info: Info, item: Item) -> ProjectEvent | None:
        if isinstance(item, Missed) or item.partial:
            return ProjectEvent(
                kind=ProjectEventKind.RESYNC,
                project_id=None,
                changed_fields=[],
                at=None,
                message=RESYNC_MESSAGES[_resync_reason(item)],
                actor_id=None,
                member_id=None,
            )
        if not await self._sees(info, item):
            return None
        member = item.members[0] if item.members and item.kind != ev.Kind.DELETED else None
        return ProjectEvent(
            kind=ProjectEventKind(item.kind.value),
            project_id=int(item.subject),
            changed_fields=list(item.fields),
            at=item.at,
            message=None,
            actor_id=item.actor_id,
            member_id=member,
        )

    async def _sees(self, info: Info, event: ev.Event) -> bool:
        if policy.is_admin(self.user):
            return True
        me = self.user.id
        if event.kind == ev.Kind.DELETED:
            return me in (event.members or ())
        if event.kind in (ev.Kind.MEMBER_ADDED, ev.Kind.MEMBER_REMOVED) and me in (
            event.members or ()
        ):
            return True  # the project appears for, or disappears from, the member themselves
        members = await info.context.loaders.member_ids_by_project.load(int(event.subject))
        return policy.can_see_project(self.user, is_member=me in members)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Live changes to the tasks you may see (admins: all; a user: the tasks "
        "assigned to them), optionally only in one project or of one assignee.",
    )
    async def task_events(
        self, info: Info, project_id: int | None = None, assignee_id: int | None = None
    ) -> AsyncGenerator[TaskEvent, None]:
        view = TaskView(await info.context.require_user(), project_id, assignee_id)
        async with info.context.inbox([ev.Topic.TASK], view.wants) as inbox:
            while True:
                item = await inbox.next()
                rendered = view.render(item)
                if rendered is not None:
                    _use_event_loaders(info, item)
                    yield rendered

    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Live changes to the projects you may see and their members (admins: all; "
        "a user: the projects they are a member of, and their own joining and leaving).",
    )
    async def project_events(
        self, info: Info, project_id: int | None = None
    ) -> AsyncGenerator[ProjectEvent, None]:
        view = ProjectView(await info.context.require_user(), project_id)
        async with info.context.inbox([ev.Topic.PROJECT], view.wants) as inbox:
            while True:
                item = await inbox.next()
                _use_event_loaders(info, item)
                rendered = await view.render(info, item)
                if rendered is not None:
                    yield rendered
