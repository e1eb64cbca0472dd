"""The offers' part of a build: coupons redeemed by paid orders, points earned by them (and
taken back by refunds), and each customer's points copied to the warehouse for audiences.

* A coupon is **redeemed** when a paid order carries its code (``orders.coupon_code``); the
  order's discount is what it saved (the promotion cost).
* Points are **earned** at ``[points] per_yuan`` for each paid order of a member, when it is
  paid, as a lot valid ``expires_days``; a **refund** takes back its share from the lots that
  expire first. Entries are unique on the order or refund, so every build may look again;
  each looks only from the newest entry on (less a week), unless rows arrived later than
  that (:func:`earn_from_orders`).
* ``customer_points`` (customer_id, points_balance, points_expiring_30d) is written for the
  audience language.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from sqlalchemy import bindparam, case, func, select, update

from archer.offers import points
from archer.pipeline import Build, Step
from archer.schema import CUSTOMER_POINTS, CUSTOMER_POINTS_SCHEMA
from archer.store import StoreError
from archer.store.offers import Coupon, PointsEntry
from archer.store.sql import insert_ignore

CHUNK = 900
OVERLAP = timedelta(days=7)  # paid orders and refunds looked at again behind the watermark


def _aware(t):
    t = t.to_pydatetime() if hasattr(t, "to_pydatetime") else t
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def redeem_from_orders(b: Build) -> int:
    """Mark issued (or expired) coupons redeemed by the paid orders that carry their codes.

    Only the codes the store holds open are looked for, so a shop with no coupons out pays
    for nothing here."""
    with b.ws.session() as s:
        open_codes = list(s.scalars(select(Coupon.code)
                                    .where(Coupon.state.in_(("issued", "expired")))))  # fmt: skip
    if not open_codes:
        return 0
    f = b.snapshot.order_facts()
    o = b.snapshot.orders.select(_oid="order_id", discount="discount_amount")
    codes = ibis.memtable(pa.table({"_code": pa.array(open_codes, pa.string())}))
    f = f.filter(f.is_paid & f.coupon_code.notnull())
    f = f.join(codes, f.coupon_code.strip() == codes._code)
    j = f.left_join(o, f.order_id == o._oid)
    used = j.select("order_id", "coupon_code", "pay_time", "discount").execute()
    if used.empty:
        return 0
    by_code = {str(c).strip(): r for c, r in zip(used.coupon_code, used.itertuples(), strict=True)}
    done = 0
    codes = list(by_code)
    with b.ws.session(write=True) as s:
        for i in range(0, len(codes), CHUNK):
            part = codes[i : i + CHUNK]
            q = select(Coupon).where(Coupon.code.in_(part), Coupon.state.in_(("issued", "expired")))
            for c in s.scalars(q):
                r = by_code[c.code]
                saved = 0 if r.discount != r.discount or r.discount is None else r.discount
                c.state, c.order_id = "redeemed", str(r.order_id)
                c.redeemed_at = _aware(r.pay_time)
                c.saved_fen = int(round(float(saved) * 100))
                done += 1
    return done


def _utc_times(col) -> list[datetime]:
    """A column of warehouse times (naive UTC) as aware datetimes, converted all at once."""
    t = pd.to_datetime(col)
    t = t.dt.tz_localize(UTC) if t.dt.tz is None else t.dt.tz_convert(UTC)
    return list(t.array.to_pydatetime())


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def _since(s, kind: str) -> tuple[datetime | None, int]:
    """Where to start looking for ``kind`` entries: the newest one's time less :data:`OVERLAP`
    (None: the ledger has none, look at everything), and how many the ledger holds before it."""
    newest = s.scalar(select(func.max(PointsEntry.at)).where(PointsEntry.kind == kind))
    if newest is None:
        return None, 0
    since = points._utc(newest) - OVERLAP
    older = s.scalar(
        select(func.count()).where(PointsEntry.kind == kind, PointsEntry.at < since)
    )  # fmt: skip
    return since, int(older or 0)


def _window(t: ir.Table, at: str, since: datetime | None, older: int) -> ir.Table:
    """The rows of ``t`` to look at: those from ``since`` on, unless the warehouse has more
    rows before ``since`` than the ledger has entries (a row arrived late, beyond the
    overlap): then all of them."""
    if since is None:
        return t
    cut = ibis.literal(_naive(since), type="timestamp")
    if int(t.filter(t[at] < cut).count().execute()) > older:
        return t
    return t.filter(t[at] >= cut)


def earn_from_orders(b: Build) -> dict[str, int]:
    """Earn the points of paid orders not earned yet, and take back the refunds' share.

    Each looks only from its watermark on — the pay time of the newest order earned (the
    refund time of the newest refund taken back) less :data:`OVERLAP` — so a build does not
    read the whole history again. The entries before the watermark are counted against the
    warehouse's: an order paid (or a refund made) before it that arrived later than the
    overlap makes the count differ, and then everything is looked at again. Entries stay
    unique on their source, so looking at a row twice gives nothing twice.
    """
    rules = b.ws.settings.points
    if rules.per_yuan <= 0:
        return {"earned": 0, "reversed": 0, "orders_considered": 0, "refunds_considered": 0}
    f = b.snapshot.paid_orders()
    f = f.filter((f.amount.cast("float64") * rules.per_yuan).floor() > 0)
    with b.ws.session() as s:
        since, older = _since(s, "earn")
    f = _window(f, "pay_time", since, older)
    paid = f.select("order_id", "customer_id", "pay_time", "amount").execute()
    life = timedelta(days=rules.expires_days)
    rows = [
        {"customer_id": str(c), "kind": "earn", "points": n, "source": f"order:{oid}",
         "at": t, "note": None, "expires_at": t + life, "remaining": n}
        for oid, c, t, amount in zip(paid.order_id, paid.customer_id, _utc_times(paid.pay_time),
                                     paid.amount, strict=True)
        if (n := math.floor(float(amount) * rules.per_yuan)) > 0
    ]  # fmt: skip
    earned = 0
    with b.ws.session(write=True) as s:
        for i in range(0, len(rows), 20_000):
            earned += insert_ignore(s, PointsEntry.__table__, rows[i : i + 20_000], ("source",))
    r = b.snapshot.refunds
    o = b.snapshot.orders.select(_oid="order_id", customer_id="customer_id")
    j = r.join(o, r.order_id == o._oid).filter(o.customer_id.notnull())
    with b.ws.session() as s:
        since, older = _since(s, "reverse")
    j = _window(j, "refunded_at", since, older)
    refunds = j.select("refund_id", "customer_id", "refunded_at", "amount").execute()
    with b.ws.session(write=True) as s:
        taken = _reverse(s, refunds, rules.per_yuan)
    return {"earned": earned, "reversed": taken, "orders_considered": len(paid),
            "refunds_considered": len(refunds)}  # fmt: skip


def _reverse(s, refunds, per_yuan: float) -> int:
    """Take back each new refund's share of points (``amount × per_yuan``), in refund time
    order, from the customer's lots open at the refund's time, first-expiring first — all
    refunds of one build in a few statements, not a round trip each. A refund with nothing
    left to take back is recorded with 0 points, so that it is settled once. How many took
    points back."""
    sources = [f"refund:{rid}" for rid in refunds.refund_id]
    seen: set[str] = set()
    for i in range(0, len(sources), CHUNK):
        part = sources[i : i + CHUNK]
        seen.update(s.scalars(select(PointsEntry.source).where(PointsEntry.source.in_(part))))
    todo = sorted(
        (_aware(at), source, str(cust), math.floor(float(amount or 0) * per_yuan))
        for source, (_, cust, at, amount) in zip(sources, refunds.itertuples(index=False),
                                                 strict=True)
        if source not in seen
    )  # fmt: skip
    if not todo:
        return 0
    customers = sorted({c for _, _, c, _ in todo})
    lots: dict[str, list[list]] = {c: [] for c in customers}  # [id, remaining, expires_at]
    for i in range(0, len(customers), CHUNK):
        q = (
            select(PointsEntry.id, PointsEntry.customer_id, PointsEntry.remaining,
                   PointsEntry.expires_at)
            .where(PointsEntry.customer_id.in_(customers[i : i + CHUNK]),
                   PointsEntry.remaining > 0)
            .order_by(PointsEntry.expires_at.is_(None), PointsEntry.expires_at, PointsEntry.id)
            .with_for_update()  # PostgreSQL: no exchange spends these lots meanwhile
        )  # fmt: skip
        for lot_id, cust, left, expires in s.execute(q):
            lots[cust].append([lot_id, left, None if expires is None else points._utc(expires)])
    changed: dict[int, int] = {}
    rows = []
    taken = 0
    for at, source, cust, n in todo:
        open_ = [lot for lot in lots[cust] if lot[1] > 0 and (lot[2] is None or lot[2] > at)]
        n = min(n, sum(lot[1] for lot in open_))
        need = n
        for lot in open_:
            if need == 0:
                break
            take = min(lot[1], need)
            lot[1] -= take
            changed[lot[0]] = lot[1]
            need -= take
        note = "refund" if n > 0 else "refund: nothing to take back"
        rows.append(points._entry(cust, "reverse", -n, source, at, note=note))
        taken += n > 0
    t = PointsEntry.__table__
    if changed:
        s.execute(update(t).where(t.c.id == bindparam("lot")).values(remaining=bindparam("left")),
                  [{"lot": k, "left": v} for k, v in changed.items()])  # fmt: skip
    for i in range(0, len(rows), 20_000):
        insert_ignore(s, t, rows[i : i + 20_000], ("source",))
    return taken


def copy_balances(b: Build) -> int:
    now = b.ws.now()
    e = PointsEntry
    open_ = (e.remaining > 0) & e.expires_at.is_not(None)
    with b.ws.session() as s:  # one pass over the ledger
        got = s.execute(
            select(
                e.customer_id,
                func.sum(e.points),
                # lots past their expiry that no round has closed yet are not there to spend
                func.sum(case((open_ & (e.expires_at <= now), e.remaining), else_=0)),
                func.sum(case((open_ & (e.expires_at > now)
                               & (e.expires_at <= now + timedelta(days=30)), e.remaining),
                              else_=0)),
            ).group_by(e.customer_id)
        ).all()  # fmt: skip
    bal = {c: int(total or 0) - int(gone or 0) for c, total, gone, _ in got}
    soon = {c: int(n or 0) for c, _, _, n in got}
    ids = sorted(bal)
    table = pa.table(
        {"customer_id": ids, "points_balance": [int(bal[c]) for c in ids],
         "points_expiring_30d": [int(soon.get(c, 0)) for c in ids]},
        schema=CUSTOMER_POINTS_SCHEMA.to_pyarrow(),
    )  # fmt: skip
    b.write(CUSTOMER_POINTS, ibis.memtable(table))
    return len(ids)


def run(b: Build) -> dict:
    """The build goes on when the store cannot be read; the reason is under ``errors``."""
    try:
        redeemed = redeem_from_orders(b)
        got = earn_from_orders(b)
        return {"coupons_redeemed": redeemed, **got, "customers_with_points": copy_balances(b)}
    except StoreError as e:
        return {"errors": {"": str(e)}}


STEP = Step("offers", run)
