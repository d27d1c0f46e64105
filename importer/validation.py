"""Row validation: the checks one row allows on its own, then the set-based reference checks."""

from collections.abc import Sequence

from db.imports import References
from db.models import DESCRIPTION_MAX, TITLE_MAX, TaskStatus
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

    __slots__ = ("assignee_id", "cells", "description", "line", "project_id", "reasons",
                 "status", "title")  # fmt: skip

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


def check_row(record: Record, header: Header) -> CandidateRow:
    """Every check that needs only the row itself."""
    line, cells = record
    if len(cells) != len(header.names):
        shape = f"the row has {len(cells)} fields, the header has {len(header.names)}"
        return CandidateRow(line, cells, [shape])
    reasons: list[str] = []
    at_project, at_title, at_description, at_status, at_assignee = header.order
    raw_project = cells[at_project]
    project_id = parse_id(raw_project)
    if project_id is None:
        reasons.append(
            f"project_id {_show(raw_project)} is not a valid id"
            if raw_project.strip()
            else "project_id is required"
        )
    title = cells[at_title].strip()
    if not title:
        reasons.append("title is required")
    elif len(title) > TITLE_MAX:
        reasons.append(f"title has {len(title)} characters, the limit is {TITLE_MAX}")
    description = cells[at_description].strip()
    if len(description) > DESCRIPTION_MAX:
        reasons.append(
            f"description has {len(description)} characters, the limit is {DESCRIPTION_MAX}"
        )
    raw_status = cells[at_status]
    status = _STATUS_WORDS.get(raw_status.strip().upper().replace(" ", "_"))
    if status is None:
        reasons.append(
            f"status {_show(raw_status)} is not one of {STATUS_CHOICES}"
            if raw_status.strip()
            else f"status is required ({STATUS_CHOICES})"
        )
    raw_assignee = cells[at_assignee]
    assignee_id = None
    if raw_assignee and not raw_assignee.isspace():
        assignee_id = parse_id(raw_assignee)
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
