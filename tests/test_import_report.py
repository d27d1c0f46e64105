"""Error report downloads: who may fetch them, signed links, and `GET /upload/errors`."""

import time
from urllib.parse import parse_qs, urlsplit

import httpx

from core.settings import Settings
from db.engine import SessionFactory
from db.models import Role
from importer.report import link_expiry, report_signer
from tests.support.accounts import TokenFor, UserFactory
from tests.support.graphql import Gql, bearer
from tests.support.imports import (
    HEADER,
    IMPORT_JOB,
    SEED_CSV,
    download_report,
    parse_report,
    run_queue,
    upload_job,
)
from tests.support.world import ImportWorld

REPORT_HEADER = ["project_id", "title", "description", "status", "assigned_to", "row", "error"]
UNKNOWN_JOB = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


async def _imported(
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    token: str,
    content: str = SEED_CSV,
    filename: str = "tasks.csv",
) -> str:
    job_id = await upload_job(
        client, content.encode(), token=token, filename=filename, allow_duplicate=True
    )
    await run_queue(session_factory, settings)
    return job_id


async def test_admins_download_and_everyone_else_is_refused(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    job_id = await _imported(client, session_factory, settings, admin_token, filename="Q3 plan.csv")
    ok = await download_report(client, job_id, token=admin_token)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "text/csv; charset=utf-8"
    assert ok.headers["content-disposition"].startswith(
        "attachment; filename=\"Q3 plan_errors.csv\"; filename*=UTF-8''Q3%20plan_errors.csv"
    )
    assert len(parse_report(ok.text)) == 2

    user_token = token_for(await make_user(role=Role.USER))
    assert (await download_report(client, job_id, token=user_token)).status_code == 403
    assert (await download_report(client, job_id, token="not-a-token")).status_code == 401
    anonymous = await download_report(client, job_id, token=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (await download_report(client, UNKNOWN_JOB, token=admin_token)).status_code == 404
    assert (await download_report(client, "..%2F..%2Fetc", token=admin_token)).status_code == 404


async def test_the_signed_link_works_until_it_expires_and_only_for_its_job(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    gql: Gql,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    job_a = await _imported(client, session_factory, settings, admin_token)
    job_b = await _imported(client, session_factory, settings, admin_token)
    url = (await gql(IMPORT_JOB, {"id": job_a}, token=admin_token)).ok()["importJob"][
        "errorReportUrl"
    ]
    linked = await client.get(url)  # no Authorization header: a browser following the link
    assert linked.status_code == 200
    assert parse_report(linked.text)[0] == REPORT_HEADER

    query = parse_qs(urlsplit(url).query)
    expires, signature = query["expires"][0], query["signature"][0]
    assert int(expires) - time.time() <= settings.import_report_url_ttl_seconds
    other_job = await client.get(
        f"/imports/{job_b}/errors.csv", params={"expires": expires, "signature": signature}
    )
    assert other_job.status_code == 403
    longer = await client.get(
        f"/imports/{job_a}/errors.csv",
        params={"expires": str(int(expires) + 3600), "signature": signature},
    )
    assert longer.status_code == 403
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    forged = await client.get(url.replace(signature, tampered))
    assert forged.status_code == 403

    signer = report_signer(settings)
    stale = signer.url(job_a, now=time.time() - settings.import_report_url_ttl_seconds - 1)
    assert (await client.get(stale)).status_code == 403
    # made 90 s before its lifetime ends: valid still, though rounded down to the minute
    almost = signer.url(job_a, now=time.time() - settings.import_report_url_ttl_seconds + 90)
    assert (await client.get(almost)).status_code == 200


async def test_a_job_without_errors_has_a_header_only_report(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    content = f"{HEADER},extra\n1,Fine,ok,Done,2,ignored\n"
    job_id = await _imported(client, session_factory, settings, admin_token, content)
    report = await download_report(client, job_id, token=admin_token)
    assert report.status_code == 200
    assert parse_report(report.text) == [
        ["project_id", "title", "description", "status", "assigned_to", "extra", "row", "error"]
    ]


async def test_upload_errors_is_the_calling_admins_newest_report(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
    make_user: UserFactory,
    token_for: TokenFor,
) -> None:
    other_admin = token_for(await make_user(role=Role.ADMIN))
    assert (await client.get("/upload/errors", headers=bearer(other_admin))).status_code == 404

    await _imported(client, session_factory, settings, admin_token, filename="old.csv")
    newest = f"{HEADER}\n1,Bad status,x,Started,\n"
    await _imported(client, session_factory, settings, admin_token, newest, filename="new.csv")
    await _imported(client, session_factory, settings, other_admin, filename="theirs.csv")

    mine = await client.get("/upload/errors", headers=bearer(admin_token))
    assert mine.status_code == 200
    assert 'filename="new_errors.csv"' in mine.headers["content-disposition"]
    assert [row[-2] for row in parse_report(mine.text)[1:]] == ["2"]
    theirs = await client.get("/upload/errors", headers=bearer(other_admin))
    assert 'filename="theirs_errors.csv"' in theirs.headers["content-disposition"]

    user_token = token_for(await make_user(role=Role.USER))
    assert (await client.get("/upload/errors", headers=bearer(user_token))).status_code == 403
    assert (await client.get("/upload/errors")).status_code == 401


def test_links_made_within_a_minute_are_the_same_link() -> None:
    start = 1_800_000_000  # a whole minute
    assert link_expiry(900, start) == link_expiry(900, start + 59) == start + 900
    assert link_expiry(900, start + 60) == start + 960
    assert link_expiry(30, start + 7) == start + 37  # short lifetimes are not rounded
