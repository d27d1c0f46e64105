"""import dry runs, duplicate guard and cancel

`import_job` gains `dry_run`, `sha256` (of the uploaded bytes, indexed for the duplicate guard)
and `cancel_requested_at`, and its status may be `CANCELLED`.

The status is a VARCHAR with a CHECK constraint. On PostgreSQL the constraint is dropped and
added again. On SQLite a CHECK cannot be altered, and batch mode's copy of the table would, with
foreign keys on, cascade the drop of the old `import_job` to every `import_row_error`; so the
table's stored definition is edited instead (SQLite's documented procedure for changes that do
not touch the stored rows: `writable_schema`, then a new schema version). Widening the list of
allowed values leaves every existing row valid.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_import_job_import_status"
OLD = "'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED'"
NEW = "'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'"


def _set_statuses(before: str, after: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE import_job DROP CONSTRAINT {CONSTRAINT}")
        op.execute(
            f"ALTER TABLE import_job ADD CONSTRAINT {CONSTRAINT} CHECK (status IN ({after}))"
        )
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
        (f"CHECK (status IN ({before}))", f"CHECK (status IN ({after}))", "import_job"),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    _set_statuses(OLD, NEW)
    op.add_column(
        "import_job",
        sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("import_job", sa.Column("sha256", sa.String(length=64), nullable=True))
    op.add_column(
        "import_job", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_import_job_sha256", "import_job", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_import_job_sha256", table_name="import_job")
    # Plain DROP COLUMN on both databases (SQLite 3.35+): no copy of the table (see above).
    for column in ("cancel_requested_at", "sha256", "dry_run"):
        op.execute(f"ALTER TABLE import_job DROP COLUMN {column}")
    op.execute("UPDATE import_job SET status = 'FAILED' WHERE status = 'CANCELLED'")
    _set_statuses(NEW, OLD)
