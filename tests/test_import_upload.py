"""The importTasks upload: the multipart request, who may send it, limits, the seed example."""

from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportStatus, Role, TaskStatus, User
from taskql.app import create_app
from tests.support.accounts import TokenFor, UserFactory
from tests.support.graphql import Gql
from tests.support.imports import (
    IMPORT_JOB,
    IMPORT_TASKS,
    SEED_CSV,
    download_report,
    job_row,
    parse_report,
    run_queue,
    task_rows,
    upload,
    upload_job,
)
from tests.support.world import ImportWorld

IMPORT_JOBS = """
query Jobs($first: Int!, $after: String) {
  importJobs(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id fileName } }
  }
}
"""


def stored_files(settings: Settings) -> list[Path]:
    return sorted(settings.upload_dir.iterdir()) if settings.upload_dir.exists() else []


async def test_seed_example_imports_and_reports_the_unknown_assignee(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    admin_token: str,
) -> None:
    assert (import_world.project_id, import_world.member_id) == (1, 2)

    job_id = await upload_job(client, SEED_CSV.encode(), token=admin_token)
    # The request only stored the file and queued the job: nothing was parsed or inserted.
    assert await task_rows(session_factory) == []
    assert [p.name for p in stored_files(settings)] == [f"{job_id}.csv"]

    assert await run_queue(session_factory, settings) == 1
    job = (await gql(IMPORT_JOB, {"id": job_id}, token=admin_token)).ok()["importJob"]
    assert job["status"] == "SUCCEEDED"
    assert (job["rowsTotal"], job["rowsProcessed"], job["rowsImported"], job["rowsFailed"]) == (
        2,
        2,
        1,
        1,
    )
    assert job["progress"] == 1.0
    assert job["fileName"] == "tasks.csv"
    assert job["createdBy"] == {"id": admin.id, "email": admin.email}
    assert job["startedAt"]
    assert job["finishedAt"]
    assert job["errorReportUrl"].startswith(f"/imports/{job_id}/errors.csv?expires=")

    [task] = await task_rows(session_factory)
    assert (task.project_id, task.title, task.description) == (1, "Login Task", "Implement JWT")
    assert (task.status, task.assigned_to, task.created_by) == (TaskStatus.PENDING, 2, admin.id)

    report = await download_report(client, job_id, token=admin_token)
    assert report.status_code == 200
    assert parse_report(report.text) == [
        ["project_id", "title", "description", "status", "assigned_to", "row", "error"],
        ["1", "Invalid Task ID", "Invalid entry", "Pending", "999", "3",
         "user 999 (assigned_to) does not exist"],
    ]  # fmt: skip
    assert stored_files(settings) == []  # the finished job's upload is deleted


async def test_a_multipart_request_without_a_preflight_header_is_refused(
    client: httpx.AsyncClient, session_factory: SessionFactory, admin_token: str
) -> None:
    response = await upload(client, SEED_CSV.encode(), token=admin_token, preflight=False)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "CSRF_PREVENTION"
    assert "Apollo-Require-Preflight" in error["message"]
    for header in ({"X-Requested-With": "XMLHttpRequest"}, {"Apollo-Require-Preflight": "1"}):
        accepted = await client.post(
            "/graphql",
            data={"operations": '{"query": "{ __typename }"}', "map": "{}"},
            files={"unused": ("x.csv", b"x", "text/csv")},
            headers=header,
        )
        assert accepted.status_code == 200, accepted.text


async def test_only_an_admin_may_upload(
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    user = await make_user(role=Role.USER)
    as_user = (await upload(client, SEED_CSV.encode(), token=token_for(user))).json()
    assert as_user["data"] is None
    assert as_user["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = (await upload(client, SEED_CSV.encode(), token=None)).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert stored_files(settings) == []
    assert await run_queue(session_factory, settings) == 0


async def test_an_over_limit_file_is_refused_and_leaves_nothing_behind(
    settings: Settings, engine: AsyncEngine, admin_token: str, session_factory: SessionFactory
) -> None:
    small = settings.model_copy(update={"import_max_bytes": 1000})
    transport = httpx.ASGITransport(app=create_app(small, engine))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        content = (SEED_CSV + "1,Filler,xxxxxxxxxxxxxxxxxxxx,Done,\n" * 100).encode()
        body = (await upload(client, content, token=admin_token)).json()
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "file"}
        assert "limit of 1000 bytes" in body["errors"][0]["message"]
        assert stored_files(small) == []  # no partial file either
        assert await run_queue(session_factory, small) == 0
        fits = await upload_job(client, SEED_CSV.encode(), token=admin_token)
        assert [p.name for p in stored_files(small)] == [f"{fits}.csv"]


async def test_the_original_file_name_is_only_sanitised_metadata(
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    tmp_path: Path,
) -> None:
    names = {
        "../../etc/cron.d/evil.csv": "evil.csv",
        "..\\..\\windows\\tasks.csv": "tasks.csv",
        "..": "upload.csv",
        "rapport été <2024>.csv": "rapport été _2024_.csv",
        "a;b|c*d.CSV": "a_b_c_d.CSV",
    }
    for original, shown in names.items():
        job_id = await upload_job(
            client, SEED_CSV.encode(), token=admin_token, filename=original, allow_duplicate=True
        )
        job = await job_row(session_factory, job_id)
        assert job.file_name == shown
        assert job.stored_name == f"{job_id}.csv"
    assert all(p.parent == settings.upload_dir for p in stored_files(settings))
    assert len(stored_files(settings)) == len(names)
    assert not (tmp_path / "etc").exists()


async def test_import_jobs_are_a_connection_for_admins(
    client: httpx.AsyncClient,
    gql: Gql,
    admin_token: str,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    ids = [
        await upload_job(
            client, SEED_CSV.encode(), token=admin_token, filename=f"f{i}.csv", allow_duplicate=True
        )
        for i in range(3)
    ]
    first = (await gql(IMPORT_JOBS, {"first": 2}, token=admin_token)).ok()["importJobs"]
    assert first["totalCount"] == 3
    assert [e["node"]["fileName"] for e in first["edges"]] == ["f2.csv", "f1.csv"]
    assert first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    rest = (await gql(IMPORT_JOBS, {"first": 2, "after": after}, token=admin_token)).ok()
    assert [e["node"]["id"] for e in rest["importJobs"]["edges"]] == [ids[0]]
    assert rest["importJobs"]["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": rest["importJobs"]["edges"][0]["cursor"],
    }
    bad = await gql(IMPORT_JOBS, {"first": 2, "after": "nonsense"}, token=admin_token)
    assert bad.codes == ["BAD_USER_INPUT"]
    too_many = await gql(IMPORT_JOBS, {"first": 1000}, token=admin_token)
    assert too_many.codes == ["BAD_USER_INPUT"]
    user_token = token_for(await make_user())
    assert (await gql(IMPORT_JOBS, {"first": 1}, token=user_token)).codes == ["FORBIDDEN"]


async def test_import_job_lookup_errors(
    gql: Gql, admin_token: str, make_user: UserFactory, token_for: TokenFor
) -> None:
    unknown = await gql(
        IMPORT_JOB, {"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, token=admin_token
    )
    assert unknown.codes == ["NOT_FOUND"]
    assert (await gql(IMPORT_JOB, {"id": "../x"}, token=admin_token)).codes == ["NOT_FOUND"]
    user_token = token_for(await make_user())
    assert (await gql(IMPORT_JOB, {"id": "x"}, token=user_token)).codes == ["FORBIDDEN"]
    assert ImportStatus.QUEUED.value == "QUEUED"


async def test_a_file_variable_that_is_not_a_file_part_is_bad_input(
    gql: Gql, admin_token: str
) -> None:
    result = await gql(IMPORT_TASKS, {"file": "not a file"}, token=admin_token)
    assert result.codes == ["BAD_USER_INPUT"]
    assert result.errors[0]["extensions"]["field"] == "file"
