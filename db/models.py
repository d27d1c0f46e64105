"""SQLModel table models. Migrations in `migrations/` must match these exactly (a test checks)."""

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

# Constraint names that Alembic can address on every backend (SQLite batch mode needs them).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TITLE_MAX = 255
DESCRIPTION_MAX = 5000
NAME_MAX = 200
EMAIL_MAX = 320


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back as UTC on SQLite too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"


class TaskStatus(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"


def _enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    # A VARCHAR with a CHECK rather than a native type: simpler migrations on both backends.
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
    )


def _created_at() -> Any:
    return Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


def _updated_at() -> Any:
    return Field(
        default_factory=utcnow,
        sa_column=sa.Column(UTCDateTime(), nullable=False, onupdate=utcnow),
    )


class User(SQLModel, table=True):
    __tablename__ = "user"
    __table_args__ = (
        # Emails are stored lower-cased, so the unique constraint compares them case-insensitively.
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=EMAIL_MAX, sa_column_kwargs={"unique": True}, nullable=False)
    full_name: str = Field(max_length=NAME_MAX, nullable=False)
    hashed_password: str = Field(max_length=255, nullable=False)
    role: Role = Field(
        default=Role.USER, sa_column=sa.Column(_enum(Role, "role"), nullable=False, index=True)
    )
    is_active: bool = Field(default=True, nullable=False)
    # Carried in every token as `ver`; a change of password, role or active flag bumps it, and
    # every token carrying an older one is refused (auth/sessions.py, the compiled caller guard).
    token_version: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    created_at: datetime = _created_at()
    updated_at: datetime = _updated_at()


class Project(SQLModel, table=True):
    __tablename__ = "project"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_MAX, nullable=False)
    description: str = Field(default="", max_length=DESCRIPTION_MAX, nullable=False)
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("user.id", ondelete="SET NULL"), index=True),
    )
    created_at: datetime = _created_at()
    updated_at: datetime = _updated_at()


class ProjectMember(SQLModel, table=True):
    __tablename__ = "project_member"

    project_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
        )
    )
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("user.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )
    added_at: datetime = _created_at()


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        sa.CheckConstraint(
            f"length(title) >= 1 AND length(title) <= {TITLE_MAX}", name="title_length"
        ),
        sa.CheckConstraint(f"length(description) <= {DESCRIPTION_MAX}", name="description_length"),
        # Keyset pagination walks (project_id, id) and (assigned_to, id).
        sa.Index("ix_task_project_id_id", "project_id", "id"),
        sa.Index("ix_task_assigned_to_id", "assigned_to", "id"),
        sa.Index("ix_task_status_id", "status", "id"),
        # The CREATED_AT and UPDATED_AT orderings page through these without sorting the table.
        sa.Index("ix_task_created_at_id", "created_at", "id"),
        sa.Index("ix_task_updated_at_id", "updated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False
        )
    )
    title: str = Field(max_length=TITLE_MAX, nullable=False)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    status: TaskStatus = Field(
        default=TaskStatus.PENDING,
        sa_column=sa.Column(_enum(TaskStatus, "task_status"), nullable=False),
    )
    assigned_to: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("user.id", ondelete="SET NULL")),
    )
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("user.id", ondelete="SET NULL")),
    )
    created_at: datetime = _created_at()
    updated_at: datetime = _updated_at()


class TaskCount(SQLModel, table=True):
    """How many tasks share a project, an assignee and a status: kept exact by triggers on `task`
    (migration 0004) in the transaction of every write, read by db/counters.py.

    `assignee_key` is the assignee's id, or 0 for unassigned tasks (ids start at 1, and a key
    column cannot be NULL). Rows with `project_id` 0 roll every project up, per status: key 0
    counts the unassigned tasks, -1 the assigned ones, so the unfiltered total reads a few rows
    however many projects there are. No row holds 0; no foreign key, the triggers follow the tasks.
    """

    __tablename__ = "task_count"
    __table_args__ = (
        # A user's counts (their scope, or an assignee filter) across projects.
        sa.Index("ix_task_count_assignee_key_project_id", "assignee_key", "project_id"),
        # Half-empty pages: a changed count stays on its page (a HOT update, no index entry).
        {"postgresql_with": {"fillfactor": 50}},
    )

    project_id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    assignee_key: int = Field(
        sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False)
    )
    status: TaskStatus = Field(
        sa_column=sa.Column(_enum(TaskStatus, "task_status"), primary_key=True)
    )
    n: int = Field(nullable=False)


class RefreshToken(SQLModel, table=True):
    """One issued refresh token. Tokens rotated from one login share a family."""

    __tablename__ = "refresh_token"

    jti: str = Field(max_length=64, primary_key=True)
    family_id: str = Field(max_length=64, index=True, nullable=False)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    issued_at: datetime = _created_at()
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class LoginFailure(SQLModel, table=True):
    """A failed login, or one still being checked (auth/throttle.py): counted per account and per
    client address within a window. A success deletes its own row and clears the account's
    `account_key` (its address count stays); rows older than the window are deleted."""

    __tablename__ = "login_failure"
    __table_args__ = (
        sa.Index("ix_login_failure_account_key_failed_at", "account_key", "failed_at"),
        sa.Index("ix_login_failure_address_failed_at", "address", "failed_at"),
        sa.Index("ix_login_failure_failed_at", "failed_at"),
    )

    # Every attempt takes an id, throttled ones too: 64 bits (SQLite's rowid is 64 bits anyway).
    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    )
    # sha256 of the normalized email: no plain text of what was typed (often a password).
    account_key: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=64)
    failed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


metadata = SQLModel.metadata


class ImportStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


FILE_NAME_MAX = 255


class ImportJob(SQLModel, table=True):
    """One uploaded CSV file and where its processing stands; the queue is this table."""

    __tablename__ = "import_job"
    __table_args__ = (
        # The runners' claim query and the per-admin "newest report" lookup.
        sa.Index("ix_import_job_status_created_at", "status", "created_at"),
        sa.Index("ix_import_job_created_by_created_at", "created_by", "created_at"),
        # The duplicate guard: earlier uploads of the same bytes.
        sa.Index("ix_import_job_sha256", "sha256"),
    )

    id: str = Field(max_length=36, primary_key=True)
    file_name: str = Field(max_length=FILE_NAME_MAX, nullable=False)
    stored_name: str = Field(max_length=64, nullable=False)
    size_bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    status: ImportStatus = Field(
        default=ImportStatus.QUEUED,
        sa_column=sa.Column(_enum(ImportStatus, "import_status"), nullable=False),
    )
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.Integer, sa.ForeignKey("user.id", ondelete="SET NULL")),
    )
    created_at: datetime = _created_at()
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    heartbeat_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # A fresh token per claim: a runner whose claim was taken over can no longer commit.
    lease: str | None = Field(default=None, max_length=36)
    attempts: int = Field(default=0, nullable=False)
    rows_total: int | None = Field(default=None)
    rows_processed: int = Field(default=0, nullable=False)
    rows_imported: int = Field(default=0, nullable=False)
    rows_failed: int = Field(default=0, nullable=False)
    checkpoint_offset: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    checkpoint_line: int = Field(default=0, nullable=False)
    header: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # Validates and reports like a real run, inserting no task.
    dry_run: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    )
    sha256: str | None = Field(default=None, max_length=64)  # of the uploaded bytes, hex
    # An admin asked to cancel it while it ran: the runner stops after the batch in flight.
    cancel_requested_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class ImportRowError(SQLModel, table=True):
    """A rejected row of an import: its original cells and every reason, for the error report."""

    __tablename__ = "import_row_error"

    job_id: str = Field(
        sa_column=sa.Column(
            sa.String(36),
            sa.ForeignKey("import_job.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    line: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    cells: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    error: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
