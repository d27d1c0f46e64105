"""Task export: who sees which rows, the signed link, filters and orderings as in `tasks`, keyset
pages, formula cells, and an export that imports again into the same tasks."""

import csv
import io
from typing import Any

import httpx
import sqlalchemy as sa

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportJob, Task, TaskStatus, User, utcnow
from db.scopes import ReadScope
from importer.export import EXPORT_HEADER, ExportSpec, export_chunks, export_signer
from importer.runner import ImportRunner
from tests.support.graphql import Gql, bearer
from tests.support.imports import task_rows, upload_job
from tests.support.world import ImportWorld, World, pk

EXPORT = """
mutation($filter: TaskFilter, $orderBy: TaskOrder) {
  exportTasks(filter: $filter, orderBy: $orderBy) { url expiresAt }
}
"""
TASK_IDS = """
query($filter: TaskFilter, $orderBy: TaskOrder) {
  tasks(filter: $filter, orderBy: $orderBy, first: 100) { edges { node { id } } }
}
"""
WORKFLOW = {TaskStatus.PENDING: 0, TaskStatus.IN_PROGRESS: 1, TaskStatus.DONE: 2}


def _rows(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text))
    assert tuple(next(reader)) == EXPORT_HEADER
    return [dict(zip(EXPORT_HEADER, row, strict=True)) for row in reader]


async def _export(client: httpx.AsyncClient, token: str | None, **params: str) -> httpx.Response:
    return await client.get("/exports/tasks.csv", params=params, headers=bearer(token))


async def test_each_caller_exports_the_tasks_they_may_see(
    world: World, client: httpx.AsyncClient
) -> None:
    expected = {
        "admin": ["Write spec", "Review spec", "Other work"],
        "assignee": ["Write spec"],
        "member": [],
        "non_member": ["Other work"],
    }
    for role, titles in expected.items():
        response = await _export(client, world.token(role))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert 'filename="tasks.csv"' in response.headers["content-disposition"]
        assert [row["title"] for row in _rows(response.text)] == titles
    [spec] = _rows((await _export(client, world.token("assignee"))).text)
    assert spec["status"] == "IN_PROGRESS"
    assert (spec["project_id"], spec["assigned_to"]) == (
        str(pk(world.apollo)),
        str(world.assignee.id),
    )
    anonymous = await _export(client, None)
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad = await _export(client, world.token("admin"), orderBy="SIZE")
    assert bad.status_code == 400


async def test_the_signed_link_is_bound_to_its_caller_and_filter_and_expires(
    world: World, client: httpx.AsyncClient, gql: Gql, settings: Settings
) -> None:
    variables = {"filter": {"status": ["IN_PROGRESS", "PENDING"]}}
    answer = (await gql(EXPORT, variables, token=world.token("assignee"))).ok()["exportTasks"]
    url: str = answer["url"]
    assert url.startswith("/exports/tasks.csv?status=IN_PROGRESS%2CPENDING&user=")
    linked = await client.get(url)
    assert linked.status_code == 200
    assert [row["title"] for row in _rows(linked.text)] == ["Write spec"]

    for tampered in (
        url.replace("IN_PROGRESS%2CPENDING", "PENDING"),
        url.replace(f"user={world.assignee.id}", f"user={world.admin.id}"),
        url + "&projectId=1",
        url.replace("signature=", "signature=0"),
    ):
        assert (await client.get(tampered)).status_code == 403, tampered
    spec = ExportSpec.from_params({"status": "IN_PROGRESS,PENDING"})
    expired, _ = export_signer(settings).url(pk(world.assignee), spec, now=0)
    assert (await client.get(expired)).status_code == 403
    admin_link = (await gql(EXPORT, {}, token=world.token("admin"))).ok()["exportTasks"]["url"]
    assert len(_rows((await client.get(admin_link)).text)) == 3
    assert (await gql(EXPORT, {}, token=None)).codes == ["UNAUTHENTICATED"]


async def test_filters_and_orderings_are_those_of_the_tasks_query(
    world: World,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
) -> None:
    statuses = list(TaskStatus)
    async with session_factory.begin() as session:
        for i in range(30):
            session.add(
                Task(
                    project_id=pk(world.apollo),
                    title=f"Task {i % 7}",
                    description="spec" if i % 3 else "",
                    status=statuses[i % 3],
                    assigned_to=world.member.id if i % 2 else None,
                )
            )
    cases: list[dict[str, Any]] = [
        {},
        {"orderBy": {"field": "TITLE", "direction": "DESC"}},
        {"filter": {"status": ["DONE", "PENDING"]}, "orderBy": {"field": "STATUS"}},
        {"filter": {"projectId": pk(world.apollo), "unassigned": True, "search": "SPEC"}},
        {"filter": {"assigneeId": pk(world.member)}, "orderBy": {"field": "UPDATED_AT"}},
    ]
    token = world.token("admin")
    for variables in cases:
        nodes = (await gql(TASK_IDS, variables, token=token)).ok()["tasks"]["edges"]
        url = (await gql(EXPORT, variables, token=token)).ok()["exportTasks"]["url"]
        exported = [int(row["id"]) for row in _rows((await client.get(url)).text)]
        assert exported == [edge["node"]["id"] for edge in nodes], variables
        assert exported


async def test_keyset_pages_cover_every_row_once_in_order(
    world: World, session_factory: SessionFactory
) -> None:
    now = utcnow()
    async with session_factory.begin() as session:
        await session.execute(
            sa.insert(Task),
            [
                {"project_id": pk(world.zephyr), "title": f"T{i % 5}", "description": "",
                 "status": list(TaskStatus)[i % 3], "assigned_to": None,
                 "created_at": now, "updated_at": now}
                for i in range(1000)
            ],
        )  # fmt: skip
    for sort, descending in (("title", True), ("status", False), ("id", True)):
        spec = ExportSpec(sort=sort, descending=descending)
        pages: list[int] = []
        chunks = export_chunks(
            session_factory, ReadScope(None), spec, page_rows=64, on_rows=pages.append
        )
        text = "".join([chunk async for chunk in chunks])
        ids = [int(row["id"]) for row in _rows(text)]
        keys = {
            "title": lambda t: (t.title, t.id),
            "status": lambda t: (WORKFLOW[t.status], t.id),
            "id": lambda t: (t.id,),
        }
        every = sorted(await task_rows(session_factory), key=keys[sort], reverse=descending)
        assert ids == [t.id for t in every]
        assert len(ids) == 1003
        assert sum(pages) == 1003
        assert max(pages) == 64


TRICKY = [
    ("=SUM(A1:A9)", "-starts with a minus", TaskStatus.PENDING, True),
    ("+1 call", '@mention, "quoted", and a comma', TaskStatus.IN_PROGRESS, False),
    ("Ünïcødé ✓", "line one\nline two", TaskStatus.DONE, True),
    ("'already quoted", "", TaskStatus.PENDING, False),
    ("plain", "  \t=inner", TaskStatus.DONE, True),
]


async def test_an_export_imports_again_into_the_same_tasks(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    admin_token: str,
) -> None:
    async with session_factory.begin() as session:
        for title, description, status, assigned in TRICKY:
            assignee = import_world.member_id if assigned else None
            session.add(
                Task(
                    project_id=import_world.project_id,
                    title=title,
                    description=description.strip(),
                    status=status,
                    assigned_to=assignee,
                    created_by=admin.id,
                )
            )

    def shape(tasks: list[Task]) -> list[tuple[Any, ...]]:
        return sorted(
            (t.project_id, t.title, t.description, t.status, t.assigned_to) for t in tasks
        )

    before = shape(await task_rows(session_factory))
    exported = await _export(client, admin_token)
    rows = _rows(exported.text)
    assert [row["title"] for row in rows][:2] == ["'=SUM(A1:A9)", "'+1 call"]  # neutralised
    assert rows[0]["description"] == "'-starts with a minus"

    async with session_factory.begin() as session:  # the same projects and users, no tasks
        await session.execute(sa.delete(Task))
    job_id = await upload_job(client, exported.content, token=admin_token)
    assert await ImportRunner(session_factory, settings).run_until_idle() == 1
    async with session_factory() as session:
        job = await session.get(ImportJob, job_id)
    assert job is not None
    assert (job.rows_imported, job.rows_failed) == (len(TRICKY), 0), job.message
    assert job.message == "Ignored the extra columns: id, created_at, updated_at."
    assert shape(await task_rows(session_factory)) == before
