"""Row validation: the checks one row allows on its own, then the set-based reference checks."""

from collections.abc import Sequence

from db.imports import References
from db.models import DESCRIPTION_MAX, TITLE_MAX, TaskStatus
from db.text import has_visible
from importer.cells import restore
from importer.reader import Header, Record

ID_MAX = 2**31 - 1  # the database's INTEGER
_STATUS_WORDS = {status.value: status for status in TaskStatus}
STATUS_CHOICES = "Pending, In Progress or Done"
SHOWN_VALUE_MAX = 40


def _show(value: str) -> str:
    """A cell quoted inside a reason, shortened so a reason stays one readable line."""
    if len(value) > SHOWN_VALUE_MAX:
        value = value[: SHOWN_VALUE_MAX - 1] + "…"
    return '"' + value.replace('"', '""') + '"'


def parse_status(value: str) -> TaskStatus | None:
    """`Pending`, `In Progress`, `Done` in any letter case, or PENDING/IN_PROGRESS/DONE."""
    return _STATUS_WORDS.get(value.strip().upper().replace(" ", "_"))


def parse_id(value: str) -> int | None:
    """A positive database id written as plain ASCII digits, else None."""
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        return None
    number = int(text)
    return number if 0 < number <= ID_MAX else None


class CandidateRow:
    """One data row, parsed; `reasons` lists everything wrong with it so far."""

    __slots__ = (
        "assignee_id",
        "cells",
        "description",
        "line",
        "project_id",
        "reasons",
        "status",
        "title",
    )

    def __init__(
        self,
        line: int,
        cells: list[str],
        reasons: list[str],
        project_id: int | None = None,
        title: str = "",
        description: str = "",
        status: TaskStatus | None = None,
        assignee_id: int | None = None,
    ) -> None:
        self.line = line
        self.cells = cells
        self.reasons = reasons
        self.project_id = project_id
        self.title = title
        self.description = description
        self.status = status
        self.assignee_id = assignee_id


class _Parsed:
    """Per-batch memo of parsed ids and statuses: a file repeats the same few values a lot."""

    __slots__ = ("ids", "statuses")

    def __init__(self) -> None:
        self.ids: dict[str, int | None] = {}
        self.statuses: dict[str, TaskStatus | None] = {}

    def id(self, raw: str) -> int | None:
        try:
            return self.ids[raw]
        except KeyError:
            parsed = self.ids[raw] = parse_id(raw)
            return parsed

    def status(self, raw: str) -> TaskStatus | None:
        try:
            return self.statuses[raw]
        except KeyError:
            parsed = self.statuses[raw] = parse_status(raw)
            return parsed


def check_rows(records: list[Record], header: Header) -> list[CandidateRow]:
    """Every check that needs only the rows themselves."""
    width = len(header.names)
    order = header.order
    parsed = _Parsed()
    rows = []
    for line, cells in records:
        if len(cells) != width:
            shape = f"the row has {len(cells)} fields, the header has {width}"
            rows.append(CandidateRow(line, cells, [shape]))
        else:
            rows.append(_check_cells(line, cells, order, parsed))
    return rows


def _check_cells(
    line: int, cells: list[str], order: tuple[int, ...], parsed: _Parsed
) -> CandidateRow:
    reasons: list[str] = []
    raw_project, raw_title, raw_description, raw_status, raw_assignee = (cells[i] for i in order)
    project_id = parsed.id(raw_project)
    if project_id is None:
        reasons.append(
            f"project_id {_show(raw_project)} is not a valid id"
            if raw_project.strip()
            else "project_id is required"
        )
    title = restore(raw_title.strip())
    if not title or len(title) > TITLE_MAX:
        reasons.append(
            f"title has {len(title)} characters, the limit is {TITLE_MAX}"
            if title
            else "title is required"
        )
    elif not has_visible(title):
        reasons.append("title has no visible character (only spaces or invisible ones)")
    description = restore(raw_description.strip())
    if len(description) > DESCRIPTION_MAX:
        reasons.append(
            f"description has {len(description)} characters, the limit is {DESCRIPTION_MAX}"
        )
    status = parsed.status(raw_status)
    if status is None:
        reasons.append(
            f"status {_show(raw_status)} is not one of {STATUS_CHOICES}"
            if raw_status.strip()
            else f"status is required ({STATUS_CHOICES})"
        )
    assignee_id = None
    if raw_assignee and not raw_assignee.isspace():
        assignee_id = parsed.id(raw_assignee)
        if assignee_id is None:
            reasons.append(f"assigned_to {_show(raw_assignee)} is not a valid user id")
    return CandidateRow(line, cells, reasons, project_id, title, description, status, assignee_id)


def referenced_ids(rows: Sequence[CandidateRow]) -> tuple[set[int], set[int]]:
    """The project ids and user ids a batch refers to, for one set-based lookup each."""
    projects = {row.project_id for row in rows if row.project_id is not None}
    users = {row.assignee_id for row in rows if row.assignee_id is not None}
    return projects, users


def check_references(row: CandidateRow, refs: References) -> None:
    """Add the reasons that need the database: the project, the assignee and membership."""
    project_ok = row.project_id is not None and row.project_id in refs.projects
    if row.project_id is not None and not project_ok:
        row.reasons.append(f"project {row.project_id} does not exist")
    user = row.assignee_id
    if user is None:
        return
    if user in refs.inactive_users:
        row.reasons.append(f"user {user} (assigned_to) is deactivated")
    elif user not in refs.active_users:
        row.reasons.append(f"user {user} (assigned_to) does not exist")
    elif project_ok and (row.project_id, user) not in refs.memberships:
        row.reasons.append(f"user {user} (assigned_to) is not a member of project {row.project_id}")
