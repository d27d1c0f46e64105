"""task counters

`task_count` holds, per (project, assignee, status), how many tasks there are, plus roll-up rows
over all projects (`project_id` 0, `assignee_key` 0 for unassigned, -1 for assigned): see
`db.models.TaskCount`. Triggers on `task` keep it exact in the transaction of every write:

- PostgreSQL: one statement-level AFTER trigger per event (transition tables allow a single
  event per trigger, and no column list on UPDATE), reading the statement's OLD/NEW TABLE. Each
  statement's changes are summed per counter key and applied by one upsert in key order, so a
  COPY batch of 5,000 rows updates each counter row once, and concurrent writers lock counter
  rows in the same order (no deadlock between single-statement writes). Rows that reach 0 are
  deleted. (No CHECK on `n`: PostgreSQL checks the row an upsert proposes to insert, which
  carries a negative change, before it finds the conflict.)
- SQLite: row-level triggers (it has no statement-level ones), incrementing with an upsert and
  decrementing in place; the UPDATE trigger fires only when the project, assignee or status
  changes.

Project deletion cascades to the tasks (their DELETE trigger follows); removing a member
unassigns tasks (an UPDATE); user deletion sets `assigned_to` NULL (an UPDATE).

TRUNCATE fires no DELETE trigger: truncating `task` alone leaves the counters stale. Truncate
`task_count` with it (the tests truncate every table), or rebuild the counters with the backfill
below after `DELETE FROM task_count`.

The table's pages are kept half empty on PostgreSQL (fillfactor 50): each import batch changes
thousands of counters, and with room on its page a changed row is a HOT update, no index entry
(measured: the trigger's cost per 5,000-row batch went from ~30 ms to ~16 ms).

On PostgreSQL the triggers are created before the backfill: CREATE TRIGGER locks `task` against
writes until this migration commits, so no write falls between the backfill and the triggers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENTS = ("insert", "update", "delete")

# What one statement added (+1) and removed (-1), by trigger.
PG_CHANGES = {
    "insert": "SELECT project_id, assigned_to, status, 1 AS n FROM new_tasks",
    "update": "SELECT project_id, assigned_to, status, 1 AS n FROM new_tasks "
    "UNION ALL SELECT project_id, assigned_to, status, -1 FROM old_tasks",
    "delete": "SELECT project_id, assigned_to, status, -1 AS n FROM old_tasks",
}
PG_REFERENCING = {
    "insert": "NEW TABLE AS new_tasks",
    "update": "OLD TABLE AS old_tasks NEW TABLE AS new_tasks",
    "delete": "OLD TABLE AS old_tasks",
}

# Summed per counter key, then per roll-up key (a task's roll-up row is (0, 0 or -1, status)),
# and applied in key order: concurrent statements lock counter rows in the same order.
PG_APPLY = """
    INSERT INTO task_count AS c (project_id, assignee_key, status, n)
    WITH change AS (
        SELECT project_id, coalesce(assigned_to, 0) AS assignee_key, status,
            CAST(sum(n) AS integer) AS n
        FROM ({changes}) AS t
        GROUP BY 1, 2, 3
    )
    SELECT project_id, assignee_key, status, n FROM change WHERE n <> 0
    UNION ALL
    SELECT 0, CASE WHEN assignee_key = 0 THEN 0 ELSE -1 END, status, CAST(sum(n) AS integer)
    FROM change
    GROUP BY 2, 3
    HAVING sum(n) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (project_id, assignee_key, status) DO UPDATE SET n = c.n + excluded.n;"""

# Only keys that lost tasks can reach 0; those rows are locked by this transaction already.
PG_DELETE_ZEROS = """
    DELETE FROM task_count
    WHERE n = 0 AND (project_id, assignee_key, status) IN (
        SELECT project_id, coalesce(assigned_to, 0), status FROM old_tasks
        UNION
        SELECT 0, CASE WHEN assigned_to IS NULL THEN 0 ELSE -1 END, status FROM old_tasks);"""


def _pg_function(event: str) -> str:
    body = PG_APPLY.format(changes=PG_CHANGES[event])
    if event != "insert":
        body += PG_DELETE_ZEROS
    return f"""
CREATE FUNCTION task_count_after_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{body}
    RETURN NULL;
END
$$"""


def _pg_trigger(event: str) -> str:
    return f"""
CREATE TRIGGER task_count_after_{event} AFTER {event.upper()} ON task
REFERENCING {PG_REFERENCING[event]}
FOR EACH STATEMENT EXECUTE FUNCTION task_count_after_{event}()"""


def _sqlite_increment(row: str) -> str:
    return f"""
    INSERT INTO task_count (project_id, assignee_key, status, n) VALUES
        ({row}.project_id, coalesce({row}.assigned_to, 0), {row}.status, 1),
        (0, CASE WHEN {row}.assigned_to IS NULL THEN 0 ELSE -1 END, {row}.status, 1)
    ON CONFLICT (project_id, assignee_key, status) DO UPDATE SET n = n + 1;"""  # noqa: S608


def _sqlite_decrement(row: str) -> str:
    keys = f"""status = {row}.status AND (
        (project_id = {row}.project_id AND assignee_key = coalesce({row}.assigned_to, 0))
        OR (project_id = 0 AND assignee_key = CASE WHEN {row}.assigned_to IS NULL THEN 0 ELSE -1 END))"""
    return f"""
    UPDATE task_count SET n = n - 1 WHERE {keys};
    DELETE FROM task_count WHERE n = 0 AND {keys};"""  # noqa: S608


SQLITE_TRIGGERS = {
    "insert": ("AFTER INSERT ON task", _sqlite_increment("NEW")),
    "update": (
        "AFTER UPDATE OF project_id, assigned_to, status ON task "
        "WHEN OLD.project_id IS NOT NEW.project_id OR OLD.assigned_to IS NOT NEW.assigned_to "
        "OR OLD.status IS NOT NEW.status",
        _sqlite_increment("NEW") + _sqlite_decrement("OLD"),
    ),
    "delete": ("AFTER DELETE ON task", _sqlite_decrement("OLD")),
}

BACKFILL = """
INSERT INTO task_count (project_id, assignee_key, status, n)
SELECT project_id, coalesce(assigned_to, 0), status, count(*) FROM task
GROUP BY project_id, coalesce(assigned_to, 0), status
UNION ALL
SELECT 0, CASE WHEN assigned_to IS NULL THEN 0 ELSE -1 END, status, count(*) FROM task
GROUP BY CASE WHEN assigned_to IS NULL THEN 0 ELSE -1 END, status"""


def upgrade() -> None:
    op.create_table(
        "task_count",
        sa.Column("project_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("assignee_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "IN_PROGRESS",
                "DONE",
                name="task_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "assignee_key", "status", name=op.f("pk_task_count")),
        postgresql_with={"fillfactor": 50},
    )
    with op.batch_alter_table("task_count", schema=None) as batch_op:
        batch_op.create_index(
            "ix_task_count_assignee_key_project_id", ["assignee_key", "project_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        for event in EVENTS:
            op.execute(_pg_function(event))
            op.execute(_pg_trigger(event))
    else:
        for event, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER task_count_after_{event} {when}\nBEGIN{body}\nEND")
    op.execute(BACKFILL)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for event in EVENTS:
        if postgresql:
            op.execute(f"DROP TRIGGER task_count_after_{event} ON task")
            op.execute(f"DROP FUNCTION task_count_after_{event}()")
        else:
            op.execute(f"DROP TRIGGER task_count_after_{event}")
    with op.batch_alter_table("task_count", schema=None) as batch_op:
        batch_op.drop_index("ix_task_count_assignee_key_project_id")

    op.drop_table("task_count")
