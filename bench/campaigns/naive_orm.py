"""The peer of broadcast planning: what a user would write with SQLAlchemy's ORM — one
enrolment and one message object per customer, added one by one (a flush to learn the
enrolment's id), committed every 1,000 — into a SQLite ledger of the same shape (the same unique
keys and indexes). It does not import archer.

    python bench/campaigns/naive_orm.py IDS_FILE DB_FILE    (prints a JSON report)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Enrollment(Base):
    __tablename__ = "enrollments"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int]
    customer_id: Mapped[str] = mapped_column(String(200))
    trigger_key: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(10))
    entered_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(12))
    __table_args__ = (
        Index("uq_subject", "campaign_id", "customer_id", "trigger_key", unique=True),
        Index("ix_due", "state"),
    )


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id"))
    step: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10))
    context: Mapped[str]
    due_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    __table_args__ = (
        Index("uq_step", "enrollment_id", "step", unique=True),
        Index("ix_msg_due", "state", "due_at"),
        Index("ix_msg_customer", "customer_id"),
    )


def main(ids_file: str, db: str) -> None:
    ids = open(ids_file, encoding="utf-8").read().split()
    eng = create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(eng)
    send_at = datetime(2026, 12, 12, 2, 0, tzinfo=UTC)
    t0 = time.perf_counter()
    with Session(eng) as s:
        for n, cid in enumerate(ids, 1):
            h = hashlib.sha256(f"news\x1f{cid}".encode()).digest()
            arm = "holdout" if int.from_bytes(h[:8], "big") / 2.0**64 < 0.1 else "treatment"
            e = Enrollment(campaign_id=1, customer_id=cid, trigger_key="customer", arm=arm,
                           entered_at=send_at, state="completed")  # fmt: skip
            s.add(e)
            s.flush()
            uid = hashlib.sha256(f"1\x1f{cid}\x1fcustomer\x1fnews".encode()).hexdigest()[:32]
            s.add(Message(uid=uid, enrollment_id=e.id, step="news", customer_id=cid,
                          address=f"{cid}@example.com", state="planned",
                          context=json.dumps({"customer": {"name": cid}}), due_at=send_at,
                          expires_at=send_at + timedelta(days=1)))  # fmt: skip
            if n % 1000 == 0:
                s.commit()
        s.commit()
    seconds = time.perf_counter() - t0
    print(json.dumps({"customers": len(ids), "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
