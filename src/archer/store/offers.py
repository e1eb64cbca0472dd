"""Coupons and points in the store.

A coupon template says what a coupon gives (满减: spend X, save Y; a discount rate such as 9折;
a cash coupon with no threshold), how long it is valid, its limits and budget. A coupon is one
code for one customer, unique in the store; one issued by a campaign step is unique on (run,
step), so a round repeated issues nothing new. Codes a shop imports wait in the pool (no
customer) until a step hands one out.

Points are an append-only ledger: every entry is unique on its ``source`` (the order, the
campaign step, the exchange), so a re-run never credits twice. Positive entries are lots with
an expiry; a redemption or an expiry records which lots it consumed, first-expiring first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from archer.store.campaigns import CUSTOMER_MAX, ID, STEP_MAX
from archer.store.db import Base

COUPON_KINDS = ("threshold", "rate", "cash")  # 满减, 折扣, 无门槛
COUPON_STATES = ("pool", "issued", "redeemed", "expired", "void")
POINTS_KINDS = ("earn", "award", "redeem", "expire", "adjust", "reverse")


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    threshold_fen: Mapped[int] = mapped_column(Integer, default=0)  # spend at least
    amount_fen: Mapped[int] = mapped_column(Integer, default=0)  # save (threshold, cash)
    rate: Mapped[float | None]  # pay this share (0.9 = 9折)
    max_saving_fen: Mapped[int | None] = mapped_column(Integer)  # cap of a rate coupon
    valid_days: Mapped[int | None] = mapped_column(Integer)  # from issue
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    per_customer: Mapped[int | None] = mapped_column(Integer)
    total_limit: Mapped[int | None] = mapped_column(Integer)
    budget_fen: Mapped[int | None] = mapped_column(Integer)
    scope: Mapped[str] = mapped_column(Text, default="{}")  # {"categories": [], "products": []}
    codes: Mapped[str] = mapped_column(String(10), default="generated")  # generated | pool
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"))
    customer_id: Mapped[str | None] = mapped_column(String(CUSTOMER_MAX))
    state: Mapped[str] = mapped_column(String(10))
    value_fen: Mapped[int] = mapped_column(Integer, default=0)  # the most it can save
    source: Mapped[str] = mapped_column(String(12))  # campaign | exchange | manual | import
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    enrollment_id: Mapped[int | None] = mapped_column(ID)
    step: Mapped[str | None] = mapped_column(String(STEP_MAX))
    issued_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    redeemed_at: Mapped[datetime | None]
    order_id: Mapped[str | None] = mapped_column(String(200))
    saved_fen: Mapped[int | None] = mapped_column(Integer)  # the order's discount, redeemed

    __table_args__ = (
        Index("uq_coupons_step", "enrollment_id", "step", unique=True),
        Index("ix_coupons_customer", "customer_id", "template_id"),
        Index("ix_coupons_pool", "template_id", "state"),
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "customer_id": self.customer_id,
            "state": self.state,
            "value": self.value_fen / 100,
            "source": self.source,
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "redeemed_at": self.redeemed_at.isoformat() if self.redeemed_at else None,
            "order_id": self.order_id,
        }


class PointsEntry(Base):
    __tablename__ = "points_entries"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX))
    kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(Integer)  # + lots, − consumption
    source: Mapped[str] = mapped_column(String(300), unique=True)  # what caused it, once
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    expires_at: Mapped[datetime | None]  # a lot's expiry
    remaining: Mapped[int] = mapped_column(Integer, default=0)  # a lot's points not yet consumed

    __table_args__ = (
        Index("ix_points_entries_customer", "customer_id", "at"),
        Index(
            "ix_points_entries_open_lots",
            "customer_id",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
    )
