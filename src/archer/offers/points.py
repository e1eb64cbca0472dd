"""Points: an append-only ledger of earn, award, redeem, expire, adjust and reverse entries.

Every entry is unique on its ``source`` (``order:O123``, ``campaign:4:981:give-points``,
``exchange:…``), so a round or a build run twice credits nothing twice. Positive entries are
lots that expire; a redemption (or an expiry) takes points from the lots that expire first
and lowers what ``remaining`` they have, in the same transaction as its own entry. A
customer's balance is the sum of their entries, which always equals the sum of what their lots
have remaining.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from archer.errors import Conflict, Invalid
from archer.store.offers import PointsEntry
from archer.store.sql import insert_ignore

if TYPE_CHECKING:
    from archer.workspace import Workspace

MAX_POINTS = 10_000_000


def _entry(customer_id: str, kind: str, points: int, source: str, at: datetime, **kw) -> dict:
    return {"customer_id": customer_id, "kind": kind, "points": points, "source": source,
            "at": at, "note": kw.get("note"), "expires_at": kw.get("expires_at"),
            "remaining": max(points, 0)}  # fmt: skip


def award(
    s: Session,
    customer_id: str,
    points: int,
    *,
    source: str,
    at: datetime,
    expires_at: datetime | None,
    note: str | None = None,
    kind: str = "award",
) -> bool:
    """Credit a lot in the open session; False when ``source`` was credited before."""
    if not 0 < points <= MAX_POINTS:
        raise Invalid(f"points: from 1 to {MAX_POINTS:,}, got {points}")
    row = _entry(customer_id, kind, points, source, at, expires_at=expires_at, note=note)
    return insert_ignore(s, PointsEntry.__table__, [row], ("source",)) == 1


def balance_in(s: Session, customer_id: str) -> int:
    return int(
        s.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.customer_id == customer_id
            )
        )
        or 0
    )


def _consume(s: Session, customer_id: str, points: int, now: datetime) -> None:
    """Take ``points`` from the customer's open lots, first-expiring first."""
    lots = s.execute(
        select(PointsEntry.id, PointsEntry.remaining)
        .where(
            PointsEntry.customer_id == customer_id,
            PointsEntry.remaining > 0,
            (PointsEntry.expires_at.is_(None)) | (PointsEntry.expires_at > now),
        )
        .order_by(PointsEntry.expires_at.is_(None), PointsEntry.expires_at, PointsEntry.id)
    ).all()
    need = points
    for lot_id, left in lots:
        take = min(left, need)
        s.execute(update(PointsEntry).where(PointsEntry.id == lot_id).values(remaining=left - take))
        need -= take
        if need == 0:
            return
    raise Conflict(f"{customer_id} has {points - need:,} points to spend, not {points:,}")


def redeem(
    s: Session, customer_id: str, points: int, *, source: str, at: datetime, note: str | None
) -> bool:
    """Spend points in the open (writing) session; False when ``source`` was spent before."""
    if not 0 < points <= MAX_POINTS:
        raise Invalid(f"points: from 1 to {MAX_POINTS:,}, got {points}")
    if s.scalar(select(PointsEntry.id).where(PointsEntry.source == source)):
        return False
    _consume(s, customer_id, points, at)
    s.add(PointsEntry(**_entry(customer_id, "redeem", -points, source, at, note=note)))
    s.flush()
    return True


def expire(ws: Workspace, now: datetime | None = None) -> dict[str, int]:
    """Close every lot past its expiry: an ``expire`` entry for what it had left."""
    now = now or ws.now()
    n = total = 0
    with ws.session(write=True) as s:
        lots = s.execute(
            select(PointsEntry.id, PointsEntry.customer_id, PointsEntry.remaining).where(
                PointsEntry.remaining > 0, PointsEntry.expires_at <= now
            )
        ).all()
        rows = []
        for lot_id, cust, left in lots:
            s.execute(update(PointsEntry).where(PointsEntry.id == lot_id).values(remaining=0))
            rows.append(_entry(cust, "expire", -left, f"expire:{lot_id}", now))
            n, total = n + 1, total + left
        insert_ignore(s, PointsEntry.__table__, rows, ("source",))
    return {"lots": n, "points": total}


def account(ws: Workspace, customer_id: str, *, soon_days: int = 30) -> dict[str, Any]:
    """A customer's balance, what expires soon, and their entries (newest first)."""
    from datetime import timedelta

    now = ws.now()
    with ws.session() as s:
        bal = balance_in(s, customer_id)
        soon = s.scalar(
            select(func.coalesce(func.sum(PointsEntry.remaining), 0)).where(
                PointsEntry.customer_id == customer_id,
                PointsEntry.remaining > 0,
                PointsEntry.expires_at > now,
                PointsEntry.expires_at <= now + timedelta(days=soon_days),
            )
        )
        entries = [
            {"kind": e.kind, "points": e.points, "source": e.source, "note": e.note,
             "at": e.at.isoformat(),
             "expires_at": e.expires_at.isoformat() if e.expires_at else None,
             "remaining": e.remaining}
            for e in s.scalars(select(PointsEntry).where(PointsEntry.customer_id == customer_id)
                               .order_by(PointsEntry.at.desc(), PointsEntry.id.desc()).limit(200))
        ]  # fmt: skip
    return {"customer_id": customer_id, "balance": bal, f"expiring_{soon_days}d": int(soon or 0),
            "entries": entries}  # fmt: skip


def exchange(
    ws: Workspace, customer_id: str, points: int, *, template: str, rate: int, source: str
) -> dict[str, Any]:
    """Points → a cash coupon: ``rate`` points buy one coupon of ``template``; one
    transaction spends the points and issues the coupon (``source`` makes it happen once)."""
    from archer.offers import coupons

    if rate <= 0:
        raise Invalid("rate: points per coupon must be above zero")
    if points != rate:
        raise Invalid(f"one coupon of {template!r} costs {rate:,} points, not {points:,}")
    now = ws.now()
    with ws.session(write=True) as s:
        t = coupons.template_named(s, template)
        if not redeem(s, customer_id, points, source=f"exchange:{source}", at=now,
                      note=f"exchange for {template}"):  # fmt: skip
            raise Conflict(f"exchange {source!r} was made before")
        c, why = coupons.issue(s, t, customer_id, now=now, source="exchange")
        if c is None:
            raise Conflict(f"no coupon of {template!r} can be issued ({why}): nothing was spent")
        out = {"coupon": c.to_dict(), "balance": balance_in(s, customer_id)}
    return out
