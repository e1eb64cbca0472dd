"""The O2O funnel report per channel: sign-ups → check-ins → buyers → orders → sales, the
customer unit price and the costs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import ibis
import pyarrow as pa
from sqlalchemy import select

from archer.facts import Snapshot
from archer.measurement.o2o.common import (
    COUPON,
    TOTAL,
    WALK_IN,
    _per,
    _yuan,
    phone_key,
)
from archer.measurement.o2o.events import (
    _channels,
    _event,
    _event_doc,
)
from archer.store.o2o import (
    O2OCheckin,
    O2OEvent,
    O2OPayment,
    O2OSignup,
)

if TYPE_CHECKING:
    from archer.workspace import Workspace


# -- the report --------------------------------------------------------------------------------
@dataclass
class _Person:
    channel: str
    signed_up: bool
    phones: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    came: bool = False


@dataclass
class _Row:
    channel: str
    cost_fen: int = 0
    signups: int = 0
    checkins: int = 0
    buyers: set = field(default_factory=set)
    orders: int = 0
    sales_fen: int = 0

    def doc(self) -> dict[str, Any]:
        b = len(self.buyers)
        return {
            "channel": self.channel,
            "signups": self.signups,
            "checkins": self.checkins,
            "buyers": b,
            "orders": self.orders,
            "sales": _yuan(self.sales_fen),
            "unit_price": _yuan(_per(self.sales_fen, b)),
            "cost": _yuan(self.cost_fen),
            "cost_per_signup": _yuan(_per(self.cost_fen, self.signups)),
            "cost_per_attendee": _yuan(_per(self.cost_fen, self.checkins)),
            "cost_per_order": _yuan(_per(self.cost_fen, self.orders)),
        }


def report(ws: Workspace, event: str, *, at: datetime | None = None) -> dict[str, Any]:
    """The event's funnel per channel and in total, as of ``at`` (default: now)."""
    moment = (at or ws.now()).astimezone(ZoneInfo("UTC"))
    with ws.session() as s:
        ev = _event(s, event)
        costs = _channels(s, ev)
        signups = list(
            s.scalars(
                select(O2OSignup)
                .where(O2OSignup.event_id == ev.id)
                .order_by(O2OSignup.signed_up_at, O2OSignup.id)
            )
        )
        scans = list(
            s.scalars(
                select(O2OCheckin)
                .where(O2OCheckin.event_id == ev.id, O2OCheckin.checked_in_at <= moment)
                .order_by(O2OCheckin.checked_in_at, O2OCheckin.id)
            )
        )
        doc = _event_doc(ws, ev, costs)
    people, by_phone, by_id = _people(signups, scans)
    names = [*costs, *([] if WALK_IN in costs else [WALK_IN])]
    rows = {ch: _Row(ch, costs.get(ch, 0)) for ch in names}
    if ev.coupon_code:
        rows[COUPON] = _Row(COUPON)
    for p in people:
        rows[p.channel].signups += p.signed_up
        rows[p.channel].checkins += p.came
    orders = _event_orders(ws, ev, moment, people)
    for o in orders:
        # By customer id first, then by a phone of the customer's that an attendee gave.
        found = [by_id.get(o["customer_id"]), *(by_phone.get(x) for x in sorted(o["phones"]))]
        who = next((i for i in found if i is not None and people[i].came), None)
        if who is not None:
            row, buyer = rows[people[who].channel], who
        elif o["coupon"]:
            row, buyer = rows[COUPON], o["customer_id"] or f"order:{o['order_id']}"
        else:
            continue
        row.buyers.add(buyer)
        row.orders += 1
        row.sales_fen += o["sales_fen"]
    total = _Row(TOTAL, sum(r.cost_fen for r in rows.values()))
    for r in rows.values():
        total.signups += r.signups
        total.checkins += r.checkins
        total.buyers |= {(r.channel, b) for b in r.buyers}
        total.orders += r.orders
        total.sales_fen += r.sales_fen
    out = total.doc()
    out["scans"] = len(scans)
    return {
        "event": doc,
        "as_of": moment.astimezone(ws.tz).isoformat(),
        "channels": [r.doc() for r in rows.values()],
        "total": out,
    }


def _people(
    signups: list[O2OSignup], scans: list[O2OCheckin]
) -> tuple[list[_Person], dict[str, int], dict[str, int]]:
    """Everyone the event knows — each sign-up, and each walk-in — with who came; a scan finds
    its person by phone, then by customer id; the earliest sign-up owns a phone or id."""
    people: list[_Person] = []
    by_phone: dict[str, int] = {}
    by_id: dict[str, int] = {}

    def know(i: int, phone: str | None, cid: str | None) -> None:
        if phone:
            people[i].phones.add(phone)
            by_phone.setdefault(phone, i)
        if cid:
            people[i].ids.add(cid)
            by_id.setdefault(cid, i)

    for su in signups:
        people.append(_Person(su.channel, True))
        know(len(people) - 1, su.phone, su.customer_id)
    for sc in scans:
        i = by_phone.get(sc.phone) if sc.phone else None
        if i is None and sc.customer_id:
            i = by_id.get(sc.customer_id)
        if i is None:
            people.append(_Person(WALK_IN, False))
            i = len(people) - 1
        people[i].came = True
        know(i, sc.phone, sc.customer_id)
    return people, by_phone, by_id


def _event_orders(
    ws: Workspace, ev: O2OEvent, moment: datetime, people: list[_Person]
) -> list[dict[str, Any]]:
    """The orders that may be the event's, each with the customer's phone when it is an
    attendee's, whether it carries the coupon, and its sales in fen as of ``moment``."""
    came = [p for p in people if p.came]
    ids = sorted({i for p in came for i in p.ids})
    phones = sorted({x for p in came for x in p.phones})
    start = ev.starts_at.replace(tzinfo=None)
    until = (ev.ends_at + timedelta(days=ev.window_days)).replace(tzinfo=None)
    code = ev.coupon_code
    with ws.warehouse() as wh:
        if not wh.has_table("orders") or not wh.has_table("customers"):
            return []
        snap = Snapshot.instant(wh, moment, ws.tz)
        c = snap.customers
        pk = ibis.memtable(pa.table({"_phone": pa.array(phones, pa.string())}))
        cp = c.select("customer_id", _phone=phone_key(c.phone))
        by_phone = cp.inner_join(pk, "_phone").select("customer_id", "_phone")
        keys = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
        wanted = keys.mutate(_phone=ibis.null("string")).union(by_phone).distinct()
        f = snap.order_facts()
        f = f.filter((f.created_at >= start) & (f.created_at < until))
        coupon = f.coupon_code.strip().upper() == code if code else ibis.literal(False)
        f = f.mutate(_coupon=coupon.fill_null(False))
        j = f.left_join(wanted, f.customer_id == wanted.customer_id)
        j = j.filter(j.customer_id_right.notnull() | j._coupon)
        r = snap.refunds
        ref = r.group_by(_oid=r.order_id).aggregate(_refunds=r.amount.cast("float64").sum())
        j = j.left_join(ref, j.order_id == ref._oid)
        cols = j.select(
            "order_id",
            "customer_id",
            "_phone",
            "_coupon",
            "is_paid",
            "net",
            _refunds=j._refunds.fill_null(0.0),
        )
        found = cols.to_pyarrow().to_pylist()
    staged = _staged(ws, sorted({o["order_id"] for o in found}), moment)
    orders: dict[str, dict[str, Any]] = {}
    for o in found:  # a customer with two attendee phones joins twice: one order, once
        oid = o["order_id"]
        if oid in staged:
            received = staged[oid] - round(o["_refunds"] * 100)
            paid = staged[oid] > 0
        else:
            received = round((o["net"] or 0.0) * 100)
            paid = bool(o["is_paid"])
        if not paid:
            continue
        doc = orders.setdefault(
            oid,
            {
                "order_id": oid,
                "customer_id": o["customer_id"],
                "phones": set(),
                "coupon": bool(o["_coupon"]),
                "sales_fen": max(received, 0),
            },
        )
        if o["_phone"] is not None:
            doc["phones"].add(o["_phone"])
    return sorted(orders.values(), key=lambda o: o["order_id"])


def _staged(ws: Workspace, order_ids: list[str], moment: datetime) -> dict[str, int]:
    """Fen paid by ``moment`` on each of ``order_ids`` that has staged payments."""
    out: dict[str, int] = {}
    with ws.session() as s:
        for k in range(0, len(order_ids), 500):
            chunk = order_ids[k : k + 500]
            for p in s.scalars(select(O2OPayment).where(O2OPayment.order_id.in_(chunk))):
                out.setdefault(p.order_id, 0)
                if p.paid_at <= moment:
                    out[p.order_id] += p.amount_fen
    return out
