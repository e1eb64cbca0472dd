"""Campaigns and their ledger, consent, suppressions and the shop's inbox.

Revision 0004. Enrolments are unique on (campaign, customer, trigger key) and messages on
(enrolment, step) with a unique deterministic uid: the keys that make a campaign round safe to
repeat and a crashed one safe to run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "consent",
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel", "purpose", name=op.f("pk_consent")),
    )
    op.create_table(
        "consent_log",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_log")),
    )
    op.create_index(
        "ix_consent_log_customer_id", "consent_log", ["customer_id", "at"], unique=False
    )
    op.create_table(
        "member_inbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_inbox")),
        sa.UniqueConstraint("uid", name=op.f("uq_member_inbox_uid")),
    )
    op.create_index(
        "ix_member_inbox_customer_id", "member_inbox", ["customer_id", "created_at"], unique=False
    )
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "campaign_versions",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_versions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "version", name=op.f("pk_campaign_versions")),
    )
    op.create_table(
        "enrollments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("trigger_key", sa.String(length=200), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=True),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("step_started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_enrollments_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    op.create_index("ix_enrollments_customer", "enrollments", ["customer_id"], unique=False)
    op.create_index("ix_enrollments_due", "enrollments", ["state", "next_run_at"], unique=False)
    op.create_index(
        "uq_enrollments_subject",
        "enrollments",
        ["campaign_id", "customer_id", "trigger_key"],
        unique=True,
    )
    op.create_table(
        "messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("enrollment_id", ID, nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("opt_in", sa.Boolean(), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("cost_fen", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_messages_enrollment_id_enrollments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("uid", name=op.f("uq_messages_uid")),
    )
    op.create_index("ix_messages_campaign", "messages", ["campaign_id", "state"], unique=False)
    op.create_index(
        "ix_messages_claimed",
        "messages",
        ["lease_until"],
        unique=False,
        sqlite_where=sa.text("state = 'claimed'"),
        postgresql_where=sa.text("state = 'claimed'"),
    )
    op.create_index(
        "ix_messages_customer", "messages", ["customer_id", "channel", "sent_at"], unique=False
    )
    op.create_index("ix_messages_due", "messages", ["state", "not_before"], unique=False)
    op.create_index("uq_messages_enrollment", "messages", ["enrollment_id", "step"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_messages_enrollment", table_name="messages")
    op.drop_index("ix_messages_due", table_name="messages")
    op.drop_index("ix_messages_customer", table_name="messages")
    op.drop_index(
        "ix_messages_claimed",
        table_name="messages",
        sqlite_where=sa.text("state = 'claimed'"),
        postgresql_where=sa.text("state = 'claimed'"),
    )
    op.drop_index("ix_messages_campaign", table_name="messages")
    op.drop_table("messages")
    op.drop_index("uq_enrollments_subject", table_name="enrollments")
    op.drop_index("ix_enrollments_due", table_name="enrollments")
    op.drop_index("ix_enrollments_customer", table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_table("campaign_versions")
    op.drop_table("suppressions")
    op.drop_index("ix_member_inbox_customer_id", table_name="member_inbox")
    op.drop_table("member_inbox")
    op.drop_index("ix_consent_log_customer_id", table_name="consent_log")
    op.drop_table("consent_log")
    op.drop_table("consent")
    op.drop_table("campaigns")
