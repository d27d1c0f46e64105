"""token versions and login failures

`user.token_version` is carried in every access and refresh token (`ver`); a change of password,
role or active flag bumps it, and tokens carrying an older one are refused. Existing users start
at 0, which is also what a token issued before this migration (without `ver`) is read as.

`login_failure` counts failed logins per account (`account_key`, the sha256 of the normalized
email) and per client address, within a window: see `db.models.LoginFailure`.

On SQLite the column is dropped with `ALTER TABLE ... DROP COLUMN` (SQLite 3.35+), never by
batch mode's copy of the table: with foreign keys on, dropping the old `user` table would cascade
to every row that refers to it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )

    op.create_table(
        "login_failure",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failure")),
    )
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_failure_account_key_failed_at", ["account_key", "failed_at"], unique=False
        )
        batch_op.create_index(
            "ix_login_failure_address_failed_at", ["address", "failed_at"], unique=False
        )
        batch_op.create_index("ix_login_failure_failed_at", ["failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failure_failed_at")
        batch_op.drop_index("ix_login_failure_address_failed_at")
        batch_op.drop_index("ix_login_failure_account_key_failed_at")
    op.drop_table("login_failure")

    op.execute('ALTER TABLE "user" DROP COLUMN token_version')
