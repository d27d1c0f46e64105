"""A seeded CSV of tasks, about 5% invalid in varied ways, and the world it refers to.

The world: an admin (id 1), USERS users (ids 2..USERS+1, the last INACTIVE of them deactivated)
and PROJECTS projects (ids 1..PROJECTS); user u is a member of project p when (u + p) % 4 == 0.
"""

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USERS = 200
PROJECTS = 50
INACTIVE = 5
ADMIN_ID = 1
HEADER = ["project_id", "title", "description", "status", "assigned_to"]
STATUSES = ["Pending", "In Progress", "Done", "PENDING", "in_progress", "DONE"]
INVALID_SHARE = 0.05
INVALID_KINDS = (
    "unknown_project",
    "bad_project_id",
    "non_member",
    "inactive_user",
    "unknown_user",
    "bad_status",
    "empty_title",
    "long_title",
    "long_description",
    "short_row",
)
WORDS = [
    *("api", "auth", "login", "cache", "deploy", "docs", "fix", "form", "index", "job"),
    *("page", "query", "report", "review", "schema", "search", "test", "token", "update"),
    *("upload", "user", "view", "backlog", "sprint", "release", "bug", "feature"),
]


def user_ids() -> list[int]:
    return list(range(ADMIN_ID + 1, ADMIN_ID + 1 + USERS))


def is_member(user_id: int, project_id: int) -> bool:
    return (user_id + project_id) % 4 == 0


def is_active(user_id: int) -> bool:
    return user_id <= ADMIN_ID + USERS - INACTIVE


@dataclass(frozen=True, slots=True)
class Row:
    cells: list[str]
    valid: bool


class Generator:
    """Rows of the seeded file, reproducible from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.members = {
            p: [u for u in user_ids() if is_member(u, p) and is_active(u)]
            for p in range(1, PROJECTS + 1)
        }
        self.outsiders = {
            p: [u for u in user_ids() if not is_member(u, p) and is_active(u)]
            for p in range(1, PROJECTS + 1)
        }
        self.inactive = [u for u in user_ids() if not is_active(u)]

    def _text(self, low: int, high: int) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(low, high))
        text = " ".join(words)
        roll = self.rng.random()
        if roll < 0.05:
            text += ', with "quotes"'
        elif roll < 0.06:
            text += "\nsecond line"
        return text

    def valid(self) -> list[str]:
        project = self.rng.randint(1, PROJECTS)
        assignee = "" if self.rng.random() < 0.2 else str(self.rng.choice(self.members[project]))
        return [
            str(project),
            self._text(2, 6).replace("\n", " ").capitalize(),
            self._text(0, 15),
            self.rng.choice(STATUSES),
            assignee,
        ]

    def invalid(self) -> list[str]:
        cells = self.valid()
        kind = self.rng.choice(INVALID_KINDS)
        project = int(cells[0])
        if kind == "unknown_project":
            cells[0] = str(PROJECTS + 1000 + self.rng.randint(0, 99))
        elif kind == "bad_project_id":
            cells[0] = self.rng.choice(["abc", "-3", "1.5", ""])
        elif kind == "non_member":
            cells[4] = str(self.rng.choice(self.outsiders[project]))
        elif kind == "inactive_user":
            cells[4] = str(self.rng.choice(self.inactive))
        elif kind == "unknown_user":
            cells[4] = str(10_000 + self.rng.randint(0, 999))
        elif kind == "bad_status":
            cells[3] = self.rng.choice(["Started", "todo", "=1+1", ""])
        elif kind == "empty_title":
            cells[1] = "  "
        elif kind == "long_title":
            cells[1] = "T" * 256
        elif kind == "long_description":
            cells[2] = "d" * 5001
        else:
            cells = cells[:3]
        return cells

    def rows(self, count: int) -> Iterator[Row]:
        for _ in range(count):
            if self.rng.random() < INVALID_SHARE:
                yield Row(self.invalid(), False)
            else:
                yield Row(self.valid(), True)


def write_csv(path: Path, count: int, seed: int) -> tuple[int, int]:
    """Write the file; the numbers of valid and invalid rows."""
    valid = invalid = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for row in Generator(seed).rows(count):
            writer.writerow(row.cells)
            if row.valid:
                valid += 1
            else:
                invalid += 1
    return valid, invalid


STATUS_VALUES = {"pending": "PENDING", "in progress": "IN_PROGRESS", "in_progress": "IN_PROGRESS"}


def valid_records(count: int, seed: int) -> Iterator[tuple[int, str, str, str, int | None]]:
    """The valid rows as the importer stores them: project, title, description, status, assignee."""
    for row in Generator(seed).rows(count):
        if row.valid:
            project, title, description, status, assignee = row.cells
            yield (
                int(project),
                title.strip(),
                description.strip(),
                STATUS_VALUES.get(status.lower(), status.upper()),
                int(assignee) if assignee else None,
            )
