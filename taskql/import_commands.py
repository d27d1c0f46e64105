"""`taskql worker` (standalone import runners) and `taskql import FILE.csv` (one import, here)."""

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

    engine = make_engine(settings.database_url, timeouts=Timeouts.of(settings))
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

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last_tenth = -1

    def __call__(self, progress: "Progress") -> None:
        total = progress.total or 0
        share = progress.processed / total if total else 0.0
        filled = int(share * BAR_WIDTH)
        text = (
            f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {share:4.0%}  "
            f"{progress.processed:,}/{total:,} rows, {progress.failed:,} rejected"
        )
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
        job = asyncio.run(_import(settings, path, email, args.report))
    except TaskQLError as exc:
        sys.exit(f"taskql: {exc.message}")
    return 0 if job.status == ImportStatus.SUCCEEDED else 1


async def _import(settings: "Settings", path: Path, email: str, report: str | None) -> "ImportJob":
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
        )
        bar.close()
        await _summarise(sessions, job, report)
        return job
    finally:
        await engine.dispose()


async def _summarise(sessions: "SessionFactory", job: "ImportJob", report: str | None) -> None:
    from importer.report import report_file_name, write_report

    print(f"Import {job.id}: {job.status.value}")
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
    imp.set_defaults(handler=cmd_import)
