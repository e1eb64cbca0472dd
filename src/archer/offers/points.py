"""Points: an append-only ledger of earn, award, redeem, expire, adjust and reverse entries.

Every entry is unique on its ``source`` (``order:O123``, ``campaign:4:981:give-points``,
``exchange:…``), so a round or a build run twice credits nothing twice. Positive entries are
lots that expire; a redemption (or an expiry) takes points from the lots that expire first
and lowers what ``remaining`` they have, in the same transaction as its own entry. A
customer's balance is the sum of their entries, which always equals the sum of what their lots
have remaining.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
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


# -- what the CLI, the API and the pages read and do ----------------------------------------------
MAX_TOP = 1000
MAX_NOTE = 500
MAX_KEY = 80  # "exchange:" + a customer id (200) + ":" + the key fits a source (300)


def _customer(customer_id: Any) -> str:
    from archer.store.campaigns import CUSTOMER_MAX

    c = customer_id.strip() if isinstance(customer_id, str) else ""
    if not c or len(c) > CUSTOMER_MAX:
        raise Invalid(
            f"customer: a customer id of 1 to {CUSTOMER_MAX} characters", field="customer"
        )
    return c


def _expiring(now: datetime, days: int):
    return (
        PointsEntry.remaining > 0,
        PointsEntry.expires_at > now,
        PointsEntry.expires_at <= now + timedelta(days=days),
    )


def balance(ws: Workspace, customer_id: str, *, soon_days: int = 30) -> dict[str, Any]:
    """A customer's balance and the points of it that expire within ``soon_days``."""
    now = ws.now()
    with ws.session() as s:
        bal = balance_in(s, customer_id)
        soon = s.scalar(
            select(func.coalesce(func.sum(PointsEntry.remaining), 0)).where(
                PointsEntry.customer_id == customer_id, *_expiring(now, soon_days)
            )
        )
    return {"customer_id": customer_id, "balance": bal, f"expiring_{soon_days}d": int(soon or 0)}


def top_balances(ws: Workspace, limit: int = 20, *, soon_days: int = 30) -> list[dict[str, Any]]:
    """The customers with the most points (at most ``limit``, 1 to 1,000), highest first, each
    with what expires within ``soon_days``."""
    limit = max(1, min(int(limit), MAX_TOP))
    now = ws.now()
    total = func.sum(PointsEntry.points)
    with ws.session() as s:
        top = s.execute(
            select(PointsEntry.customer_id, total)
            .group_by(PointsEntry.customer_id)
            .having(total > 0)
            .order_by(total.desc(), PointsEntry.customer_id)
            .limit(limit)
        ).all()
        ids = [c for c, _ in top]
        soon = dict(
            s.execute(
                select(PointsEntry.customer_id, func.sum(PointsEntry.remaining))
                .where(PointsEntry.customer_id.in_(ids), *_expiring(now, soon_days))
                .group_by(PointsEntry.customer_id)
            ).all()
        ) if ids else {}  # fmt: skip
    return [
        {"customer_id": c, "balance": int(b), f"expiring_{soon_days}d": int(soon.get(c) or 0)}
        for c, b in top
    ]


def expiring_soon(ws: Workspace, *, days: int = 30, limit: int = 20) -> dict[str, Any]:
    """Points that expire within ``days``: how many customers and points in all, and the
    customers with the most (at most ``limit``), with the first day one of their lots ends."""
    limit = max(1, min(int(limit), MAX_TOP))
    now = ws.now()
    left = func.sum(PointsEntry.remaining)
    with ws.session() as s:
        n, total = s.execute(
            select(func.count(func.distinct(PointsEntry.customer_id)), func.coalesce(left, 0))
            .where(*_expiring(now, days))
        ).one()  # fmt: skip
        top = s.execute(
            select(PointsEntry.customer_id, left, func.min(PointsEntry.expires_at))
            .where(*_expiring(now, days))
            .group_by(PointsEntry.customer_id)
            .order_by(left.desc(), PointsEntry.customer_id)
            .limit(limit)
        ).all()
    return {
        "days": days, "customers": int(n or 0), "points": int(total or 0),
        "top": [{"customer_id": c, "points": int(p),
                 "first_expiry": _utc(first).astimezone(ws.tz).date().isoformat()}
                for c, p, first in top],
    }  # fmt: skip


def _utc(t: datetime) -> datetime:
    """``min()`` over a column reads back without the store's type: a naive UTC text or time."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def adjust(
    ws: Workspace,
    customer_id: str,
    points: int,
    *,
    days: int = 365,
    note: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Give points by hand (an ``adjust`` lot valid ``days``, with a note). ``key`` makes it
    happen once: the same key for the same customer again awards nothing (``awarded`` 0)."""
    customer_id = _customer(customer_id)
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
        raise Invalid(f"points: a whole number from 1 to {MAX_POINTS:,}, got {points!r}",
                      field="points")  # fmt: skip
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise Invalid(f"days: from 1 to 3,650, got {days!r}", field="days")
    if note is not None and len(note) > MAX_NOTE:
        raise Invalid(f"note: at most {MAX_NOTE} characters", field="note")
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise Invalid(f"key: 1 to {MAX_KEY} characters", field="key")
    source = f"adjust:{customer_id}:{key}" if key else f"adjust:{uuid.uuid4().hex}"
    now = ws.now()
    with ws.session(write=True) as s:
        added = award(s, customer_id, points, source=source, at=now,
                      expires_at=now + timedelta(days=days), note=note, kind="adjust")  # fmt: skip
        bal = balance_in(s, customer_id)
    return {"customer_id": customer_id, "awarded": points if added else 0, "balance": bal,
            "expires_at": (now + timedelta(days=days)).isoformat()}  # fmt: skip


def exchange_at_rate(ws: Workspace, customer_id: str, *, key: str | None = None) -> dict:
    """One exchange at the workspace's ``[points]`` rate for its exchange template; ``key``
    makes it happen once (the same key again is a Conflict and spends nothing)."""
    customer_id = _customer(customer_id)
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise Invalid(f"key: 1 to {MAX_KEY} characters", field="key")
    rules = ws.settings.points
    source = f"{customer_id}:{key}" if key else uuid.uuid4().hex
    return exchange(ws, customer_id, rules.exchange_rate, template=rules.exchange_template,
                    rate=rules.exchange_rate, source=source)  # fmt: skip
