"""The `taskql` command: serve, migrate, create-admin, export-schema, worker, import."""

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core import logs
from core.errors import TaskQLError
from core.settings import Settings
from taskql.startup import ready_settings, settings_or_exit

Handler = Callable[[argparse.Namespace], int]


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from taskql import workers

    settings = ready_settings()
    # Workers are separate processes: a development secret made up here must reach all of them.
    os.environ["JWT_SECRET_KEY"] = settings.jwt_secret_key
    logging.getLogger("taskql").info("GraphiQL at http://%s:%d/graphql", args.host, args.port)
    log_level = settings.log_level.lower()
    logs.configure(settings.log_level, settings.log_format)
    if not args.access_log:  # the per-operation access lines too (slow ones are still warned of)
        logging.getLogger("taskql.access").setLevel(logging.WARNING)
    if args.workers > 1 and not args.reload and workers.supported():
        return workers.serve(
            args.host,
            args.port,
            args.workers,
            workers.Logging(log_level, settings.log_format, args.access_log),
            metrics=settings.metrics != "off",
        )
    uvicorn.run(
        "taskql.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=log_level,
        access_log=args.access_log,
        reload=args.reload,
        # Our handlers (LOG_FORMAT), set up above; a reloading child process has only uvicorn's.
        log_config=uvicorn.config.LOGGING_CONFIG if args.reload else None,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from db import migrate

    settings = settings_or_exit()
    if args.down:
        migrate.downgrade(settings.database_url, args.revision)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    print(f"taskql: database {_redacted(settings.database_url)} is at {args.revision}")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _read_password(env_name: str) -> str:
    password = os.environ.get(env_name)
    if password:
        return password
    if not sys.stdin.isatty():
        sys.exit(f"taskql: no terminal to prompt on; set {env_name} instead")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        sys.exit("taskql: the passwords differ")
    return first


def cmd_create_admin(args: argparse.Namespace) -> int:
    settings = ready_settings()  # as `serve` does, so this works before a first start
    password = _read_password(args.password_env)
    try:
        asyncio.run(_create_admin(settings, args.email, password, args.full_name))
    except TaskQLError as exc:
        sys.exit(f"taskql: {exc.message}")
    print(f"taskql: admin {args.email} created")
    return 0


async def _create_admin(settings: Settings, email: str, password: str, full_name: str) -> None:
    from auth.admins import create_admin
    from auth.services import build_services
    from db.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        authenticator = build_services(settings, engine).authenticator
        await create_admin(authenticator, email=email, password=password, full_name=full_name)
    finally:
        await engine.dispose()


def cmd_export_schema(args: argparse.Namespace) -> int:
    from graph.schema import build_schema

    sdl = build_schema(Settings(introspection=True)).as_str() + "\n"
    if args.output:
        Path(args.output).write_text(sdl, encoding="utf-8")
    else:
        sys.stdout.write(sdl)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskql", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate (in development) and serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false")
    serve.set_defaults(handler=cmd_serve)

    mig = sub.add_parser("migrate", help="apply migrations to DATABASE_URL")
    mig.add_argument("revision", nargs="?", default="head")
    mig.add_argument("--down", action="store_true", help="downgrade to REVISION (e.g. base)")
    mig.set_defaults(handler=cmd_migrate)

    admin = sub.add_parser("create-admin", help="create an ADMIN account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--full-name", default="Administrator")
    admin.add_argument(
        "--password-env",
        default="TASKQL_ADMIN_PASSWORD",
        help="environment variable to read the password from (else a prompt)",
    )
    admin.set_defaults(handler=cmd_create_admin)

    export = sub.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("--output", "-o", help="write to this file instead of stdout")
    export.set_defaults(handler=cmd_export_schema)

    from taskql.import_commands import add_import_commands

    add_import_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    json_lines = os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
    logs.configure(os.environ.get("LOG_LEVEL", "INFO"), "json" if json_lines else "text")
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
