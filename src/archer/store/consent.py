"""Consent, suppressions and the shop's inbox in the store.

Consent is kept per customer, channel and purpose with where it came from; every change is
also appended to ``consent_log`` (the evidence a regulator or a customer may ask for). A
suppression blocks an address on a channel whoever it belongs to (a hard bounce, a complaint,
an unsubscribe by address). The shop's inbox holds the messages of the ``inbox`` channel,
read by the shop's site through the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from archer.store.campaigns import CUSTOMER_MAX, ID
from archer.store.db import Base

CHANNELS = ("email", "sms", "wecom", "inbox")
PURPOSES = ("marketing", "service")


class Consent(Base):
    __tablename__ = "consent"

    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(12), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(40))  # import | unsubscribe | api | cli | reply
    evidence: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "channel": self.channel,
            "purpose": self.purpose,
            "granted": self.granted,
            "source": self.source,
            "evidence": self.evidence,
            "updated_at": self.updated_at.isoformat(),
        }


class ConsentLog(Base):
    __tablename__ = "consent_log"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(12))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(40))
    evidence: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_consent_log_customer_id", "customer_id", "at"),)


class Suppression(Base):
    __tablename__ = "suppressions"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)  # normalised
    reason: Mapped[str] = mapped_column(String(40))  # bounce | complaint | unsubscribe | manual
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "address": self.address,
            "reason": self.reason,
            "source": self.source,
            "created_at": self.created_at.isoformat(),
        }


class InboxMessage(Base):
    __tablename__ = "member_inbox"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(String(CUSTOMER_MAX))
    campaign: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_member_inbox_customer_id", "customer_id", "created_at"),)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.uid,
            "campaign": self.campaign,
            "title": self.title,
            "body": self.body,
            "created_at": self.created_at.isoformat(),
            "read_at": self.read_at.isoformat() if self.read_at else None,
        }
