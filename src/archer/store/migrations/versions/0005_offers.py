"""Coupons (templates, codes, the pool) and the points ledger.

Revision 0005. A coupon issued by a campaign step is unique on (run, step) and every code is
unique; a points entry is unique on its source, so re-running a round or a build never issues
or credits twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("threshold_fen", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("rate", sa.Double(), nullable=True),
        sa.Column("max_saving_fen", sa.Integer(), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.DateTime(), nullable=True),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("per_customer", sa.Integer(), nullable=True),
        sa.Column("total_limit", sa.Integer(), nullable=True),
        sa.Column("budget_fen", sa.Integer(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("codes", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_coupon_templates_name")),
    )
    op.create_table(
        "points_entries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("source", name=op.f("uq_points_entries_source")),
    )
    op.create_index(
        "ix_points_entries_customer", "points_entries", ["customer_id", "at"], unique=False
    )
    op.create_index(
        "ix_points_entries_open_lots",
        "points_entries",
        ["customer_id", "expires_at"],
        unique=False,
        sqlite_where=sa.text("remaining > 0"),
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "coupons",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("value_fen", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("enrollment_id", ID, nullable=True),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("saved_fen", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupons_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_coupons_code")),
    )
    op.create_index("ix_coupons_customer", "coupons", ["customer_id", "template_id"], unique=False)
    op.create_index("ix_coupons_pool", "coupons", ["template_id", "state"], unique=False)
    op.create_index("uq_coupons_step", "coupons", ["enrollment_id", "step"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_coupons_step", table_name="coupons")
    op.drop_index("ix_coupons_pool", table_name="coupons")
    op.drop_index("ix_coupons_customer", table_name="coupons")
    op.drop_table("coupons")
    op.drop_index(
        "ix_points_entries_open_lots",
        table_name="points_entries",
        sqlite_where=sa.text("remaining > 0"),
        postgresql_where=sa.text("remaining > 0"),
    )
    op.drop_index("ix_points_entries_customer", table_name="points_entries")
    op.drop_table("points_entries")
    op.drop_table("coupon_templates")
