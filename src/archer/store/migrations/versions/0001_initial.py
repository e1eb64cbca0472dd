"""The store as the hand-written runner left it (its versions 1–3): audiences, tracking, users.

Revision 0001, the first. A store made before Archer used Alembic carries a ``schema_version``
table instead of ``alembic_version``; :func:`archer.store.db.migrate` passes its version here
(``legacy_version``), this revision creates only the tables that version did not have, and
``migrate`` then drops the old ledger. Nothing already stored is touched.

Constraints are named here as the runner named them (``pk_<table>``, ``uq_<table>_<column>``),
so that a later batch operation on SQLite can find them by name.
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _pk(table: str, *cols: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*cols, name=f"pk_{table}")


def _uq(table: str, col: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(col, name=f"uq_{table}_{col}")


def _audiences() -> None:  # the runner's version 1
    op.create_table(
        "audiences",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        _pk("audiences", "id"),
        _uq("audiences", "name"),
    )


def _tracking() -> None:  # the runner's version 2
    op.create_table(
        "tracking_sources",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        _pk("tracking_sources", "id"),
        _uq("tracking_sources", "name"),
        _uq("tracking_sources", "key_hash"),
    )
    op.create_table(
        "tracking_inbox",
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("source_id", sa.Integer, nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        _pk("tracking_inbox", "seq"),
    )
    op.create_table(
        "tracking_message_ids",
        sa.Column("source_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        _pk("tracking_message_ids", "source_id", "message_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_tracking_message_ids_received_at", "tracking_message_ids", ["received_at"])


def _users_apikeys() -> None:  # the runner's version 3
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_login_at", sa.DateTime, nullable=True),
        _pk("users", "id"),
        _uq("users", "username"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime, nullable=True),
        sa.Column("revoked_at", sa.DateTime, nullable=True),
        _pk("api_keys", "id"),
        _uq("api_keys", "name"),
        _uq("api_keys", "key_hash"),
    )


STEPS = [_audiences, _tracking, _users_apikeys]


def upgrade() -> None:
    legacy = int(context.config.attributes.get("legacy_version") or 0)
    for step in STEPS[legacy:]:
        step()


def downgrade() -> None:
    for name in ("api_keys", "users", "tracking_message_ids", "tracking_inbox"):
        op.drop_table(name)
    op.drop_table("tracking_sources")
    op.drop_table("audiences")
