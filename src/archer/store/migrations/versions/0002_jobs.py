"""Jobs: background work (builds, syncs, imports) with progress and outcome.

Revision 0002. One ``running`` row per kind (a partial unique index on SQLite and PostgreSQL
alike), so two processes sharing the store cannot run two builds at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("stage", sa.String(100), nullable=True),
        sa.Column("progress", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index(
        "uq_jobs_running_kind",
        "jobs",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_index("ix_jobs_started_at", "jobs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_started_at", table_name="jobs")
    op.drop_index("uq_jobs_running_kind", table_name="jobs")
    op.drop_table("jobs")
