"""Offline group-buy events in the store: the event and its channels' costs, sign-ups, the
check-in desk's scans, and staged payments (a deposit, then the rest).

The unique keys make every write safe to repeat: a sign-up is unique on (event, person) — the
person's normalised phone, or their customer id — so importing a list twice adds nothing; a
scan is unique on (event, scan id), so a double scan is stored once; a payment is unique on its
id. Only storage lives here; the rules and the funnel are in :mod:`archer.measurement.o2o`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from archer.store.campaigns import CUSTOMER_MAX, ID, NAME_MAX
from archer.store.db import Base

CHANNEL_MAX = 40
PHONE_MAX = 20
PERSON_MAX = 210  # "id:" + a customer id
SCAN_MAX = 100
PAYMENT_MAX = 200
ORDER_MAX = 200
CODE_MAX = 40
PERSON_NAME_MAX = 100


class O2OEvent(Base):
    __tablename__ = "o2o_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    window_days: Mapped[int] = mapped_column(Integer)  # orders counted until ends_at + this
    coupon_code: Mapped[str | None] = mapped_column(String(CODE_MAX))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class O2OChannel(Base):
    __tablename__ = "o2o_channels"

    event_id: Mapped[int] = mapped_column(ForeignKey("o2o_events.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # the order the event listed them in
    cost_fen: Mapped[int] = mapped_column(BigInteger)


class O2OSignup(Base):
    __tablename__ = "o2o_signups"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("o2o_events.id"))
    person: Mapped[str] = mapped_column(String(PERSON_MAX))  # phone, else "id:" + customer
    channel: Mapped[str] = mapped_column(String(CHANNEL_MAX))
    name: Mapped[str | None] = mapped_column(String(PERSON_NAME_MAX))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))  # normalised
    customer_id: Mapped[str | None] = mapped_column(String(CUSTOMER_MAX))
    signed_up_at: Mapped[datetime]
    imported_at: Mapped[datetime]

    __table_args__ = (Index("uq_o2o_signups_person", "event_id", "person", unique=True),)


class O2OCheckin(Base):
    __tablename__ = "o2o_checkins"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("o2o_events.id"))
    scan_id: Mapped[str] = mapped_column(String(SCAN_MAX))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))  # normalised
    customer_id: Mapped[str | None] = mapped_column(String(CUSTOMER_MAX))
    name: Mapped[str | None] = mapped_column(String(PERSON_NAME_MAX))
    checked_in_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("uq_o2o_checkins_scan", "event_id", "scan_id", unique=True),)


class O2OPayment(Base):
    __tablename__ = "o2o_payments"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(String(PAYMENT_MAX), unique=True)
    order_id: Mapped[str] = mapped_column(String(ORDER_MAX))
    kind: Mapped[str] = mapped_column(String(12))  # deposit | balance | payment
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[datetime]
    recorded_at: Mapped[datetime]

    __table_args__ = (Index("ix_o2o_payments_order", "order_id", "paid_at"),)
