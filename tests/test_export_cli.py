"""`taskql export` and `taskql import --dry-run` as real processes."""

import csv
import resource
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from core.settings import Settings
from db.engine import SessionFactory
from db.models import Task, TaskStatus, User, utcnow
from importer.export import EXPORT_HEADER
from tests.support.imports import generate_csv, task_rows
from tests.support.processes import process_env, taskql_command
from tests.support.world import ImportWorld

pytestmark = pytest.mark.slow
ROWS = 20_000


async def test_taskql_export_writes_the_file_with_a_progress_bar(
    import_world: ImportWorld,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    tmp_path: Path,
) -> None:
    now = utcnow()
    statuses = list(TaskStatus)
    async with session_factory.begin() as session:
        await session.execute(
            sa.insert(Task),
            [
                {"project_id": import_world.project_id, "title": f"Task {i}",
                 "description": "-" * (i % 4), "status": statuses[i % 3],
                 "assigned_to": import_world.member_id if i % 2 else None,
                 "created_at": now, "updated_at": now}
                for i in range(ROWS)
            ],
        )  # fmt: skip
    env = process_env(settings.database_url, settings.upload_dir)
    out = tmp_path / "done.csv"
    command = taskql_command("export", "--as", admin.email, "-o", str(out), "--status", "DONE")
    done = await anyio.run_process(command, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()
    expected = ROWS // 3
    assert f"Exported {expected:,} tasks to {out}" in done.stdout.decode()
    assert f"100%  {expected:,}/{expected:,} rows" in done.stderr.decode()
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert tuple(rows[0]) == EXPORT_HEADER
    assert len(rows) == expected + 1
    assert {row[4] for row in rows[1:]} == {"DONE"}
    assert {row[3] for row in rows[1:]} == {"", "'-", "'--", "'---"}

    everything = await anyio.run_process(
        taskql_command("export", "--as", admin.email, "-o", str(tmp_path / "all.csv")),
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert everything.returncode == 0
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"taskql export of {ROWS:,} rows: peak RSS of the child processes {peak_mib:.0f} MiB")
    assert (tmp_path / "all.csv").read_text().count("\n") == ROWS + 1
    refused = taskql_command("export", "--as", "nobody@example.com", "-o", str(out))
    assert (await anyio.run_process(refused, env=env, check=False)).returncode != 0


async def test_taskql_import_dry_run_inserts_nothing(
    import_world: ImportWorld,
    session_factory: SessionFactory,
    settings: Settings,
    admin: User,
    tmp_path: Path,
) -> None:
    source = tmp_path / "tasks.csv"
    source.write_bytes(generate_csv(200, world=import_world).content)
    env = process_env(settings.database_url, settings.upload_dir)
    dry = taskql_command("import", str(source), "--as", admin.email, "--dry-run")
    done = await anyio.run_process(dry, env=env, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert "SUCCEEDED (dry run: nothing inserted)" in done.stdout.decode()
    assert "190 tasks imported, 10 rows rejected" in done.stdout.decode()
    assert await task_rows(session_factory) == []
    real = taskql_command("import", str(source), "--as", admin.email)
    assert (await anyio.run_process(real, env=env, cwd=tmp_path, check=False)).returncode == 0
    assert len(await task_rows(session_factory)) == 190
    again = await anyio.run_process(real, env=env, cwd=tmp_path, check=False)
    assert again.returncode != 0
    assert b"already uploaded" in again.stderr
