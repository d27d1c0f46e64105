"""Row validation: the checks one row allows on its own, then the set-based reference checks."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from db.imports import References
from db.models import DESCRIPTION_MAX, TITLE_MAX, TaskStatus
from importer.reader import Header, Record

ID_MAX = 2**31 - 1  # the database's INTEGER
_DIGITS = re.compile(r"[0-9]{1,10}")
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
    """A positive database id written as plain digits, else None."""
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= ID_MAX else None


@dataclass(slots=True)
class CandidateRow:
    """One data row, parsed; `reasons` lists everything wrong with it so far."""

    line: int
    cells: list[str]
    project_id: int | None = None
    title: str = ""
    description: str = ""
    status: TaskStatus | None = None
    assignee_id: int | None = None
    reasons: list[str] = field(default_factory=list)


def check_row(record: Record, header: Header) -> CandidateRow:
    """Every check that needs only the row itself."""
    row = CandidateRow(line=record.line, cells=record.cells)
    if len(record.cells) != len(header.names):
        row.reasons.append(
            f"the row has {len(record.cells)} fields, the header has {len(header.names)}"
        )
        return row
    at = header.positions
    raw_project = record.cells[at["project_id"]]
    row.project_id = parse_id(raw_project)
    if row.project_id is None:
        row.reasons.append(
            "project_id is required"
            if not raw_project.strip()
            else f"project_id {_show(raw_project)} is not a valid id"
        )
    row.title = record.cells[at["title"]].strip()
    if not row.title:
        row.reasons.append("title is required")
    elif len(row.title) > TITLE_MAX:
        row.reasons.append(f"title has {len(row.title)} characters, the limit is {TITLE_MAX}")
    row.description = record.cells[at["description"]].strip()
    if len(row.description) > DESCRIPTION_MAX:
        row.reasons.append(
            f"description has {len(row.description)} characters, the limit is {DESCRIPTION_MAX}"
        )
    raw_status = record.cells[at["status"]]
    row.status = parse_status(raw_status)
    if row.status is None:
        row.reasons.append(
            f"status {_show(raw_status)} is not one of {STATUS_CHOICES}"
            if raw_status.strip()
            else f"status is required ({STATUS_CHOICES})"
        )
    raw_assignee = record.cells[at["assigned_to"]]
    if raw_assignee.strip():
        row.assignee_id = parse_id(raw_assignee)
        if row.assignee_id is None:
            row.reasons.append(f"assigned_to {_show(raw_assignee)} is not a valid user id")
    return row


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
