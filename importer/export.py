"""Task export: the tasks a caller may read, as CSV in the import's own columns, streamed in
keyset pages, and the signed links that download it without a bearer token."""

import csv
import hashlib
import hmac
import io
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from auth import policy
from core.errors import BadUserInput
from core.settings import Settings
from db import tasks, users
from db.engine import SessionFactory
from db.models import TaskStatus, User
from db.paging import Keyset, PageRequest
from db.scopes import ReadScope
from importer.cells import neutralise
from importer.report import link_expiry

EXPORT_HEADER = (
    "id",
    "project_id",
    "title",
    "description",
    "status",
    "assigned_to",
    "created_at",
    "updated_at",
)
PAGE_ROWS = 5000
EXPORT_FILE_NAME = "tasks.csv"
# orderBy values, as the `tasks` query's TaskOrderField names them.
ORDER_FIELDS = {
    "ID": "id",
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
    "TITLE": "title",
    "STATUS": "status",
}


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """Which tasks, in which order: the `tasks` query's filter and ordering."""

    task_filter: tasks.TaskFilter = field(default_factory=tasks.TaskFilter)
    sort: str = "id"
    descending: bool = False

    def params(self) -> list[tuple[str, str]]:
        """The spec as query parameters, in one canonical order (what a link signs)."""
        f = self.task_filter
        out: list[tuple[str, str]] = []
        if f.project_id is not None:
            out.append(("projectId", str(f.project_id)))
        if f.statuses is not None:
            out.append(("status", ",".join(s.value for s in f.statuses)))
        if f.assignee_id is not None:
            out.append(("assigneeId", str(f.assignee_id)))
        if f.unassigned is not None:
            out.append(("unassigned", "true" if f.unassigned else "false"))
        if f.search is not None:
            out.append(("search", str(f.search)))
        if self.sort != "id" or self.descending:
            order = next(name for name, sort in ORDER_FIELDS.items() if sort == self.sort)
            out.append(("orderBy", order))
            out.append(("direction", "DESC" if self.descending else "ASC"))
        return out

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "ExportSpec":
        """Parse query parameters (as `params` writes them); BAD_USER_INPUT names a bad one."""
        statuses = None
        if "status" in params:
            try:
                statuses = tuple(
                    TaskStatus(s.strip().upper()) for s in params["status"].split(",") if s
                )
            except ValueError:
                message = "status takes PENDING, IN_PROGRESS, DONE"
                raise BadUserInput(message, field="status") from None
        order = params.get("orderBy", "ID").upper()
        if order not in ORDER_FIELDS:
            raise BadUserInput(f"orderBy takes {', '.join(ORDER_FIELDS)}", field="order_by")
        direction = params.get("direction", "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise BadUserInput("direction takes ASC or DESC", field="direction")
        unassigned = params.get("unassigned")
        if unassigned not in (None, "true", "false"):
            raise BadUserInput("unassigned takes true or false", field="unassigned")
        task_filter = tasks.TaskFilter(
            project_id=_int_param(params, "projectId", "project_id"),
            statuses=statuses,
            assignee_id=_int_param(params, "assigneeId", "assignee_id"),
            unassigned=None if unassigned is None else unassigned == "true",
            search=params.get("search") or None,
        )
        return cls(task_filter, ORDER_FIELDS[order], direction == "DESC")


def _int_param(params: Mapping[str, str], name: str, field_name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        raise BadUserInput(f"{name} must be an id", field=field_name)
    return int(raw)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_rows(rows: list[Any]) -> str:
    """Rows of EXPORT_COLUMNS as CSV text; text cells neutralised, statuses as the import
    reads them (PENDING, IN_PROGRESS, DONE), times in ISO 8601."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(
        (
            task_id,
            project_id,
            neutralise(title),
            neutralise(description),
            status.value,
            _cell(assignee),
            created.isoformat(),
            updated.isoformat(),
        )
        for task_id, project_id, title, description, status, assignee, created, updated in rows
    )
    return buffer.getvalue()


async def export_chunks(
    session_factory: SessionFactory,
    scope: ReadScope,
    spec: ExportSpec,
    *,
    page_rows: int = PAGE_ROWS,
    on_rows: Callable[[int], None] | None = None,
) -> AsyncIterator[str]:
    """The export as CSV text, a keyset page at a time (each page from its own short session),
    so memory stays flat whatever the number of rows."""
    yield ",".join(EXPORT_HEADER) + "\r\n"
    kind = tasks.TASK_SORTS[spec.sort].kind
    after: Keyset | None = None
    while True:
        request = PageRequest(
            first=page_rows, sort=spec.sort, kind=kind, descending=spec.descending, after=after
        )
        async with session_factory() as session:
            rows, after = await tasks.export_rows(
                session=session, scope=scope, task_filter=spec.task_filter, request=request
            )
        if rows:
            yield csv_rows(rows)
            if on_rows is not None:
                on_rows(len(rows))
        if after is None:
            return


async def count_export(session_factory: SessionFactory, scope: ReadScope, spec: ExportSpec) -> int:
    """How many rows the export will have (for a progress bar)."""
    async with session_factory() as session:
        return await tasks.count_tasks(session=session, scope=scope, task_filter=spec.task_filter)


def export_scope(user: User) -> ReadScope:
    """The rows an export shows this caller: the `tasks` query's scope."""
    return policy.read_scope(user)


async def linked_scope(session_factory: SessionFactory, user_id: int) -> ReadScope | None:
    """The scope of the user a signed link was made for, as they are now; None when they are
    gone or deactivated."""
    async with session_factory() as session:
        user = await users.get_user(session=session, user_id=user_id)
    if user is None or not user.is_active:
        return None
    return export_scope(user)


EXPORT_PATH = "/exports/tasks.csv"


@dataclass(frozen=True, slots=True)
class ExportSigner:
    """Short-lived links to one caller's export with one spec, for a browser without a token."""

    secret: str
    ttl_seconds: int

    def _key(self) -> bytes:
        # Its own key, derived from the JWT secret: neither a token nor a report signature.
        return hmac.new(self.secret.encode(), b"taskql task export", hashlib.sha256).digest()

    def signature(self, user_id: int, spec: ExportSpec, expires: int) -> str:
        """HMAC-SHA256 of the caller, the spec's canonical parameters and the expiry, hex."""
        message = f"{user_id}:{expires}:{urlencode(spec.params())}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def url(self, user_id: int, spec: ExportSpec, *, now: float | None = None) -> tuple[str, int]:
        """A relative URL valid for about `ttl_seconds` (link_expiry), and its expiry (Unix
        seconds)."""
        expires = link_expiry(self.ttl_seconds, now)
        signed = [
            *spec.params(),
            ("user", str(user_id)),
            ("expires", str(expires)),
            ("signature", self.signature(user_id, spec, expires)),
        ]
        return f"{EXPORT_PATH}?{urlencode(signed)}", expires

    def verify(
        self,
        user_id: int,
        spec: ExportSpec,
        expires: int,
        signature: str,
        *,
        now: float | None = None,
    ) -> bool:
        """True when the signature is this caller's, for this spec, and has not expired."""
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.signature(user_id, spec, expires), signature)


def export_signer(settings: Settings) -> ExportSigner:
    """The signer of this deployment's export links (keyed by the JWT secret; the report
    links' lifetime)."""
    return ExportSigner(
        secret=settings.jwt_secret_key, ttl_seconds=settings.import_report_url_ttl_seconds
    )
