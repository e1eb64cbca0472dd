"""Campaigns and their ledger in the store: definitions with versions, enrolments, messages.

The ledger is the source of truth of what a campaign did. Its unique keys make every step
idempotent: an enrolment is unique on (campaign, customer, trigger key), so the same order is
never enrolled twice; a message is unique on (enrolment, step) and carries a deterministic
``uid``, so planning a step twice adds nothing and a provider that deduplicates on the uid
(SMTP ``Message-ID``) never delivers it twice. Only storage lives here; the rules are in
:mod:`archer.campaigns` and :mod:`archer.messaging`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from archer.store.db import Base

ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: an alias of the rowid
NAME_MAX = 100
CUSTOMER_MAX = 200
KEY_MAX = 200
STEP_MAX = 64

CAMPAIGN_STATES = ("draft", "active", "paused", "ended")
ENROLMENT_STATES = ("active", "completed", "exited", "converted")
MESSAGE_STATES = ("planned", "claimed", "sent", "skipped", "failed")
ARMS = ("treatment", "holdout")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # flow | broadcast
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)  # the version new subjects enter
    template: Mapped[str | None] = mapped_column(String(NAME_MAX))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "version": self.version,
            "template": self.template,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


class CampaignVersion(Base):
    __tablename__ = "campaign_versions"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[str] = mapped_column(Text)  # JSON, validated before it was stored
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX))
    trigger_key: Mapped[str] = mapped_column(String(KEY_MAX))
    arm: Mapped[str] = mapped_column(String(10))
    variant: Mapped[str | None] = mapped_column(String(20))
    entered_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12))
    step: Mapped[str | None] = mapped_column(String(STEP_MAX))  # the step it waits at
    next_run_at: Mapped[datetime | None]
    step_started_at: Mapped[datetime | None]  # when it reached this step (wait-until timeouts)
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        Index("uq_enrollments_subject", "campaign_id", "customer_id", "trigger_key", unique=True),
        Index("ix_enrollments_due", "state", "next_run_at"),
        Index("ix_enrollments_customer", "customer_id"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    enrollment_id: Mapped[int] = mapped_column(ID, ForeignKey("enrollments.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(STEP_MAX))
    campaign_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(12))  # marketing | service
    arm: Mapped[str] = mapped_column(String(10))
    variant: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(40))  # why skipped, or the last error
    address: Mapped[str | None] = mapped_column(String(320))
    opt_in: Mapped[bool | None]  # the imported opt-in flag when it was planned
    context: Mapped[str] = mapped_column(Text, default="{}")  # what the template may show
    planned_at: Mapped[datetime]
    due_at: Mapped[datetime]  # when it was meant to go (its expiry counts from here)
    not_before: Mapped[datetime]  # when it may next be claimed (windows, retries)
    expires_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(200))
    cost_fen: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("uq_messages_enrollment", "enrollment_id", "step", unique=True),
        Index("ix_messages_due", "state", "not_before"),
        Index("ix_messages_customer", "customer_id", "channel", "sent_at"),
        Index("ix_messages_campaign", "campaign_id", "state"),
        Index(
            "ix_messages_claimed",
            "lease_until",
            sqlite_where=text("state = 'claimed'"),
            postgresql_where=text("state = 'claimed'"),
        ),
    )
