"""One import run in this process (`taskql import FILE.csv`), not through the job queue."""

import uuid
from pathlib import Path

from auth import policy
from core.errors import BadUserInput
from core.settings import Settings
from db import imports, users
from db.engine import SessionFactory
from db.models import ImportJob, User
from importer.jobs import submit_import
from importer.runner import ImportRunner, ProgressCallback
from importer.storage import file_chunks


async def importing_admin(session_factory: SessionFactory, email: str) -> User:
    """The active admin recorded as the uploader; BAD_USER_INPUT for anyone else."""
    async with session_factory() as session:
        user = await users.get_user_by_email(session=session, email=email)
    if user is None or not user.is_active or not policy.is_admin(user):
        raise BadUserInput(f"{email} is not an active admin", field="as_email")
    return user


async def import_file(
    *,
    session_factory: SessionFactory,
    settings: Settings,
    path: Path,
    admin_email: str,
    on_progress: ProgressCallback | None = None,
    dry_run: bool = False,
    allow_duplicate: bool = False,
) -> ImportJob:
    """Store the file, run its job here to the end, and return the finished job."""
    admin = await importing_admin(session_factory, admin_email)
    assert admin.id is not None
    lease = str(uuid.uuid4())  # the job starts RUNNING under our lease: no runner takes it
    job = await submit_import(
        session_factory=session_factory,
        settings=settings,
        chunks=file_chunks(path),
        file_name=path.name,
        created_by=admin.id,
        lease=lease,
        dry_run=dry_run,
        allow_duplicate=allow_duplicate,
    )
    runner = ImportRunner(session_factory, settings, on_progress=on_progress)
    await runner.process(job, lease)
    async with session_factory() as session:
        final = await imports.get_job(session=session, job_id=job.id)
    assert final is not None
    return final
