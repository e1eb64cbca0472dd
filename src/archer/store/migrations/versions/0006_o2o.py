"""Offline group-buy events: the event and its channels, sign-ups, check-in scans, staged
payments.

Revision 0006. A sign-up is unique on (event, person), a scan on (event, scan id) and a payment
on its id: importing a list again, a double scan and a payment sent twice add nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "o2o_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("coupon_code", sa.String(length=40), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_o2o_events")),
        sa.UniqueConstraint("name", name=op.f("uq_o2o_events_name")),
    )
    op.create_table(
        "o2o_channels",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["o2o_events.id"], name=op.f("fk_o2o_channels_event_id_o2o_events")
        ),
        sa.PrimaryKeyConstraint("event_id", "channel", name=op.f("pk_o2o_channels")),
    )
    op.create_table(
        "o2o_signups",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("person", sa.String(length=210), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("signed_up_at", sa.DateTime(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["o2o_events.id"], name=op.f("fk_o2o_signups_event_id_o2o_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_o2o_signups")),
    )
    op.create_index("uq_o2o_signups_person", "o2o_signups", ["event_id", "person"], unique=True)
    op.create_table(
        "o2o_checkins",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("scan_id", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["o2o_events.id"], name=op.f("fk_o2o_checkins_event_id_o2o_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_o2o_checkins")),
    )
    op.create_index("uq_o2o_checkins_scan", "o2o_checkins", ["event_id", "scan_id"], unique=True)
    op.create_table(
        "o2o_payments",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_o2o_payments")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_o2o_payments_payment_id")),
    )
    op.create_index("ix_o2o_payments_order", "o2o_payments", ["order_id", "paid_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_o2o_payments_order", table_name="o2o_payments")
    op.drop_table("o2o_payments")
    op.drop_index("uq_o2o_checkins_scan", table_name="o2o_checkins")
    op.drop_table("o2o_checkins")
    op.drop_index("uq_o2o_signups_person", table_name="o2o_signups")
    op.drop_table("o2o_signups")
    op.drop_table("o2o_channels")
    op.drop_table("o2o_events")
