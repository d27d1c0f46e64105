"""Task export: the exportTasks mutation, which returns a signed link to the CSV download."""

from datetime import UTC, datetime

import strawberry

from graph.context import Info
from graph.pagination import OrderDirection
from graph.permissions import IsAuthenticated
from graph.tasks import TaskFilter, TaskOrder
from importer.export import ExportSpec, export_signer


@strawberry.type(description="A signed, short-lived link to a CSV of tasks.")
class TaskExport:
    url: str = strawberry.field(
        description="GET it without an Authorization header. Absolute when the server has a "
        "PUBLIC_BASE_URL, else relative to the server."
    )
    expires_at: datetime


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Export the tasks you may see (admins all, a user the tasks assigned to "
        "them), filtered and ordered as in `tasks`, as CSV in the import's columns plus id, "
        "createdAt and updatedAt. The link is bound to you and to this filter and order.",
    )
    async def export_tasks(
        self, info: Info, filter: TaskFilter | None = None, order_by: TaskOrder | None = None
    ) -> TaskExport:
        user = await info.context.require_user()
        assert user.id is not None
        spec = ExportSpec(
            task_filter=(filter or TaskFilter()).to_domain(),
            sort="id" if order_by is None else str(order_by.field.value),
            descending=order_by is not None and order_by.direction == OrderDirection.DESC,
        )
        settings = info.context.settings
        link, expires = export_signer(settings).url(user.id, spec)
        if settings.public_base_url:
            link = settings.public_base_url.rstrip("/") + link
        return TaskExport(url=link, expires_at=datetime.fromtimestamp(expires, UTC))
