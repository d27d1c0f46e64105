"""`taskql worker` (standalone import runners), `taskql import FILE.csv` (one import, here) and
`taskql export` (the tasks as CSV)."""

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # the heavy imports wait until a command runs, to keep `taskql --help` quick
    from core.settings import Settings
    from db.engine import SessionFactory
    from db.models import ImportJob
    from importer.runner import Progress

from taskql.startup import ready_settings

BAR_WIDTH = 30


def cmd_worker(args: argparse.Namespace) -> int:
    """`taskql worker`: run import runners until stopped (or the queue is empty)."""
    settings = ready_settings()
    return asyncio.run(_worker(settings, args.runners, args.until_idle))


async def _worker(settings: "Settings", count: int, until_idle: bool) -> int:
    from db.engine import Timeouts, make_engine, make_session_factory
    from importer.runner import ImportRunner, settle_heap

    # Each runner holds a connection while it loads a batch; one more for claiming jobs.
    pool_size = max(settings.database_pool_size, count + 1)
    engine = make_engine(settings.database_url, pool_size=pool_size, timeouts=Timeouts.of(settings))
    try:
        runners = [ImportRunner(make_session_factory(engine), settings) for _ in range(count)]
        settle_heap()
        if until_idle:
            done = await asyncio.gather(*(runner.run_until_idle() for runner in runners))
            print(f"taskql worker: processed {sum(done)} job(s); the queue is empty")
            return 0
        stop = asyncio.Event()
        tasks = [asyncio.create_task(runner.run_forever(stop)) for runner in runners]
        loop = asyncio.get_running_loop()

        def shut_down() -> None:
            # Running jobs are handed back to the queue, for this or another worker to resume.
            stop.set()
            for task in tasks:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, shut_down)
        print(f"taskql worker: {count} runner(s) waiting for import jobs", file=sys.stderr)
        await asyncio.gather(*tasks, return_exceptions=True)
        return 0
    finally:
        await engine.dispose()


class ProgressBar:
    """A one-line progress bar on a terminal; occasional plain lines elsewhere."""

    def __init__(self, out: TextIO, *, rejected: bool = True) -> None:
        self.out = out
        self.rejected = rejected
        self.tty = out.isatty()
        self.last_tenth = -1

    def __call__(self, progress: "Progress") -> None:
        total = progress.total or 0
        share = progress.processed / total if total else 0.0
        filled = int(share * BAR_WIDTH)
        text = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:4.0%}  "
            f"{progress.processed:,}/{total:,} rows"
        )
        if self.rejected:
            text += f", {progress.failed:,} rejected"
        if self.tty:
            print(f"\r{text}", end="", file=self.out, flush=True)
        elif int(share * 10) != self.last_tenth:
            self.last_tenth = int(share * 10)
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            print(file=self.out)


def cmd_import(args: argparse.Namespace) -> int:
    """`taskql import FILE.csv`: one import, run here, with a progress bar."""
    from core.errors import TaskQLError
    from db.models import ImportStatus

    settings = ready_settings()
    email = args.as_email or settings.admin_email
    if not email:
        sys.exit("taskql: name the importing admin with --as EMAIL (or TASKQL_ADMIN_EMAIL)")
    path = Path(args.file)
    if not path.is_file():
        sys.exit(f"taskql: no such file: {path}")
    try:
        job = asyncio.run(_import(settings, path, email, args))
    except TaskQLError as exc:
        sys.exit(f"taskql: {exc.message}")
    return 0 if job.status == ImportStatus.SUCCEEDED else 1


async def _import(
    settings: "Settings", path: Path, email: str, args: argparse.Namespace
) -> "ImportJob":
    from db.engine import make_engine, make_session_factory
    from importer.local import import_file

    engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(engine)
        bar = ProgressBar(sys.stderr)
        job = await import_file(
            session_factory=sessions,
            settings=settings,
            path=path,
            admin_email=email,
            on_progress=bar,
            dry_run=args.dry_run,
            allow_duplicate=args.allow_duplicate,
        )
        bar.close()
        await _summarise(sessions, job, args.report)
        return job
    finally:
        await engine.dispose()


async def _summarise(sessions: "SessionFactory", job: "ImportJob", report: str | None) -> None:
    from importer.report import report_file_name, write_report

    dry = " (dry run: nothing inserted)" if job.dry_run else ""
    print(f"Import {job.id}: {job.status.value}{dry}")
    if job.message:
        print(f"  {job.message}")
    print(f"  {job.rows_imported:,} tasks imported, {job.rows_failed:,} rows rejected")
    if job.rows_failed:
        path = Path(report or report_file_name(job))
        await write_report(sessions, job, path)
        print(f"  Error report: {path}")
    print(f"  (also served at /imports/{job.id}/errors.csv to admins)")


def add_import_commands(sub: Any) -> None:
    """Register `worker` and `import` on the `taskql` parser's subcommands."""
    worker = sub.add_parser("worker", help="run import runners that work the job queue")
    worker.add_argument("--runners", type=int, default=1, help="runners in this process")
    worker.add_argument(
        "--until-idle", action="store_true", help="exit once no job is left to claim"
    )
    worker.set_defaults(handler=cmd_worker)

    imp = sub.add_parser("import", help="import a CSV file of tasks, with a progress bar")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--as", dest="as_email", help="the admin recorded as the uploader")
    imp.add_argument("--report", help="where to write the error report (<name>_errors.csv)")
    imp.add_argument(
        "--dry-run", action="store_true", help="check the file and report, inserting nothing"
    )
    imp.add_argument(
        "--allow-duplicate", action="store_true", help="import bytes an earlier job imported"
    )
    imp.set_defaults(handler=cmd_import)

    exp = sub.add_parser("export", help="export tasks as CSV (the import's columns), with a bar")
    exp.add_argument(
        "--as",
        dest="as_email",
        help="whose tasks: all for an admin (default "
        "TASKQL_ADMIN_EMAIL), the tasks assigned to them for a user",
    )
    exp.add_argument("--output", "-o", default="tasks.csv", help="the file to write (tasks.csv)")
    exp.add_argument("--project-id", type=int)
    exp.add_argument("--status", help="any of PENDING,IN_PROGRESS,DONE, comma-separated")
    exp.add_argument("--assignee-id", type=int)
    exp.add_argument("--unassigned", choices=("true", "false"))
    exp.add_argument("--search")
    exp.add_argument("--order-by", choices=("ID", "CREATED_AT", "UPDATED_AT", "TITLE", "STATUS"))
    exp.add_argument("--direction", choices=("ASC", "DESC"))
    exp.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """`taskql export`: the tasks a user may read, to a CSV file, with a progress bar."""
    from core.errors import TaskQLError
    from importer.export import ExportSpec

    settings = ready_settings()
    email = args.as_email or settings.admin_email
    if not email:
        sys.exit("taskql: name the exporting user with --as EMAIL (or TASKQL_ADMIN_EMAIL)")
    names = {
        "project_id": "projectId",
        "status": "status",
        "assignee_id": "assigneeId",
        "unassigned": "unassigned",
        "search": "search",
        "order_by": "orderBy",
        "direction": "direction",
    }
    params = {q: str(getattr(args, a)) for a, q in names.items() if getattr(args, a) is not None}
    try:
        spec = ExportSpec.from_params(params)
        rows = asyncio.run(_export(settings, email, spec, Path(args.output)))
    except TaskQLError as exc:
        sys.exit(f"taskql: {exc.message}")
    print(f"Exported {rows:,} tasks to {args.output}")
    return 0


async def _export(settings: "Settings", email: str, spec: Any, path: Path) -> int:
    from core.errors import BadUserInput
    from db import users
    from db.engine import make_engine, make_session_factory
    from importer.export import count_export, export_chunks, export_scope
    from importer.runner import Progress

    engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(engine)
        async with sessions() as session:
            user = await users.get_user_by_email(session=session, email=email)
        if user is None or not user.is_active:
            raise BadUserInput(f"{email} is not an active user", field="as_email")
        scope = export_scope(user)
        total = await count_export(sessions, scope, spec)
        bar = ProgressBar(sys.stderr, rejected=False)
        written = 0

        def advance(rows: int) -> None:
            nonlocal written
            written += rows
            bar(Progress("export", written, written, 0, total))

        with path.open("w", encoding="utf-8", newline="") as out:
            async for chunk in export_chunks(sessions, scope, spec, on_rows=advance):
                out.write(chunk)
        bar.close()
        return written
    finally:
        await engine.dispose()
