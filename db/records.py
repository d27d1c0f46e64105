"""Read-only records built straight from Core rows, for list paths that skip ORM hydration.

Each record has the attributes the graph reads from its SQLModel counterpart, so either may be
shown; `*_SHAPE` names the columns a statement selects to build one.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col

from db.models import Project, Role, Task, TaskStatus, User
from db.paging import Shape


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    project_id: int
    title: str
    description: str
    status: TaskStatus
    assigned_to: int | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectRecord:
    id: int
    name: str
    description: str
    created_by: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: datetime


def _columns(entity: type[Any], record: type[Any]) -> tuple[Any, ...]:
    return tuple(col(getattr(entity, name)) for name in record.__dataclass_fields__)


TASK_SHAPE = Shape(_columns(Task, TaskRecord), TaskRecord)
PROJECT_SHAPE = Shape(_columns(Project, ProjectRecord), ProjectRecord)
USER_SHAPE = Shape(_columns(User, UserRecord), UserRecord)
