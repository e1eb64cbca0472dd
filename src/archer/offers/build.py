"""The offers' part of a build: coupons redeemed by paid orders, points earned by them (and
taken back by refunds), and each customer's points copied to the warehouse for audiences.

* A coupon is **redeemed** when a paid order carries its code (``orders.coupon_code``); the
  order's discount is what it saved (the promotion cost).
* Points are **earned** at ``[points] per_yuan`` for each paid order of a member, when it is
  paid, as a lot valid ``expires_days``; a **refund** takes back its share from the lots that
  expire first. Entries are unique on the order or refund, so every build may look again.
* ``customer_points`` (customer_id, points_balance, points_expiring_30d) is written for the
  audience language.
"""

from __future__ import annotations

import math
from datetime import UTC, timedelta

import ibis
import pyarrow as pa
from sqlalchemy import func, select, update

from archer.offers import points
from archer.pipeline import Build, Step
from archer.schema import CUSTOMER_POINTS, CUSTOMER_POINTS_SCHEMA
from archer.store import StoreError
from archer.store.offers import Coupon, PointsEntry
from archer.store.sql import insert_ignore

CHUNK = 900


def _aware(t):
    t = t.to_pydatetime() if hasattr(t, "to_pydatetime") else t
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def redeem_from_orders(b: Build) -> int:
    """Mark issued (or expired) coupons redeemed by the paid orders that carry their codes."""
    f = b.snapshot.order_facts()
    o = b.snapshot.orders.select(_oid="order_id", discount="discount_amount")
    f = f.filter(f.is_paid & f.coupon_code.notnull() & (f.coupon_code != ""))
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


def earn_from_orders(b: Build) -> dict[str, int]:
    rules = b.ws.settings.points
    if rules.per_yuan <= 0:
        return {"earned": 0, "reversed": 0}
    f = b.snapshot.paid_orders()
    paid = f.select("order_id", "customer_id", "pay_time", "amount").execute()
    life = timedelta(days=rules.expires_days)
    rows = [
        {"customer_id": str(c), "kind": "earn", "points": n, "source": f"order:{oid}",
         "at": _aware(t), "note": None, "expires_at": _aware(t) + life, "remaining": n}
        for oid, c, t, amount in paid.itertuples(index=False)
        if (n := math.floor(float(amount) * rules.per_yuan)) > 0
    ]  # fmt: skip
    earned = 0
    with b.ws.session(write=True) as s:
        for i in range(0, len(rows), 20_000):
            earned += insert_ignore(s, PointsEntry.__table__, rows[i : i + 20_000], ("source",))
    r = b.snapshot.refunds
    o = b.snapshot.orders.select(_oid="order_id", customer_id="customer_id")
    j = r.join(o, r.order_id == o._oid).filter(o.customer_id.notnull())
    refunds = j.select("refund_id", "customer_id", "refunded_at", "amount").execute()
    taken = 0
    with b.ws.session(write=True) as s:
        seen = set(s.scalars(select(PointsEntry.source).where(PointsEntry.kind == "reverse")))
        for rid, cust, at, amount in refunds.itertuples(index=False):
            source = f"refund:{rid}"
            n = math.floor(float(amount or 0) * rules.per_yuan)
            if source in seen or n <= 0:
                continue
            have = points.balance_in(s, str(cust))
            n = min(n, max(have, 0))
            if n > 0:
                points.redeem(s, str(cust), n, source=source, at=_aware(at), note="refund")
                s.execute(update(PointsEntry).where(PointsEntry.source == source)
                          .values(kind="reverse"))  # fmt: skip
                taken += 1
    return {"earned": earned, "reversed": taken}


def copy_balances(b: Build) -> int:
    now = b.ws.now()
    with b.ws.session() as s:
        bal = dict(s.execute(select(PointsEntry.customer_id, func.sum(PointsEntry.points))
                             .group_by(PointsEntry.customer_id)).all())  # fmt: skip
        # lots past their expiry that no round has closed yet are not there to spend
        gone = s.execute(
            select(PointsEntry.customer_id, func.sum(PointsEntry.remaining))
            .where(PointsEntry.remaining > 0, PointsEntry.expires_at <= now)
            .group_by(PointsEntry.customer_id)
        )  # fmt: skip
        for c, n in gone:
            bal[c] -= n
        soon = dict(
            s.execute(
                select(PointsEntry.customer_id, func.sum(PointsEntry.remaining))
                .where(
                    PointsEntry.remaining > 0,
                    PointsEntry.expires_at > now,
                    PointsEntry.expires_at <= now + timedelta(days=30),
                )  # fmt: skip
                .group_by(PointsEntry.customer_id)
            ).all()
        )
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
