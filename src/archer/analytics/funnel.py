"""The lifecycle funnel: visit → registration → cart → order → payment → repeat purchase.

Each person reaches a step when they did that step's action *or any later one* (a customer
who paid has ordered; an order went through a cart even when the export has no cart event),
so every step is a subset of the one before and every conversion lies between 0 and 1:

* **visitors** — distinct people with a ``visit`` event, plus every registered customer
  (signing up is a visit). A person is a member id; an anonymous id that an event links to a
  member (the register event carries both) counts as that member; an anonymous id never
  linked is one anonymous visitor.
* **registered** — customers registered by the end of the as-of day (or with no
  registration time).
* **carted** — registered customers with a ``cart_add`` event (their own, or one from an
  anonymous id linked to them) or with an order.
* **ordered** — registered customers with at least one order created, whatever its status.
* **paid** — registered customers with at least one paid order (``Snapshot.order_facts``).
* **repeated** — registered customers with paid orders on two or more local days.

``net_sales`` is the net (paid − refunded) of the registered customers' paid orders and
``per_capita`` = net_sales ÷ registered. Step conversion is a step over the step before;
overall conversion is a step over the first step of the row (visitors).

By acquisition channel or by registration month, registered customers fall in their group and
visitors never registered in the group ``(not registered)``; customers without a channel or a
registration time fall in ``(unknown)``. The groups add up to the overall row.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from archer.analytics.common import month_label, month_number, people, ratio
from archer.facts import Snapshot

STEPS = ("visitors", "registered", "carted", "ordered", "paid", "repeated")
BY = {"channel": "acquisition_channel", "month": "registration_month"}
NOT_REGISTERED = "(not registered)"
UNKNOWN = "(unknown)"


def _member_flags(snap: Snapshot) -> ir.Table:
    """One row per registered customer: the group keys and whether each step was reached."""
    c = snap.customers
    e = people(snap, snap.events)
    carts = e.filter((e.type == "cart_add") & e.person.notnull())
    carts = carts.group_by(_cid=carts.person).aggregate(_cart=ibis.literal(True))
    f = snap.order_facts()
    f = f.filter(f.customer_id.notnull())
    orders = f.group_by(_oid=f.customer_id).aggregate(
        _orders=f.count(),
        _paid=f.count(where=f.is_paid),
        _days=f.pay_day.nunique(where=f.is_paid),
        _net=f.net.sum(where=f.is_paid),
    )
    j = c.left_join(carts, c.customer_id == carts._cid).left_join(
        orders, c.customer_id == orders._oid
    )
    ordered = j._orders.fill_null(0) > 0
    reg_month = month_label(month_number(snap.local_day(j.registered_at)))
    return j.select(
        customer_id=j.customer_id,
        acquisition_channel=j.acquisition_channel.nullif("").fill_null(UNKNOWN),
        registration_month=reg_month.fill_null(UNKNOWN),
        registered=ibis.literal(1),
        carted=(j._cart.fill_null(False) | ordered).cast("int64"),
        ordered=ordered.cast("int64"),
        paid=(j._paid.fill_null(0) > 0).cast("int64"),
        repeated=(j._days.fill_null(0) >= 2).cast("int64"),
        net=j._net.fill_null(0.0),
    )


def _anonymous_visitors(snap: Snapshot) -> ir.Table:
    """People with a visit who are not registered customers: never-linked anonymous ids and
    member ids missing from the customers table, one row each."""
    e = people(snap, snap.events)
    v = e.filter(e.type == "visit")
    members = snap.customers.select(_cid="customer_id")
    known = v.filter(v.person.notnull()).anti_join(members, v.person == members._cid)
    return (
        known.select(kind=ibis.literal("member"), key=known.person)
        .union(
            v.filter(v.person.isnull() & v.anonymous.notnull()).select(
                kind=ibis.literal("anonymous"), key=v.anonymous
            )
        )
        .distinct()
    )


def funnel(snap: Snapshot, by: str | None = None) -> ir.Table:
    """Counts, conversions and per-capita net sales of the funnel, overall or ``by`` "channel"
    (acquisition channel) or "month" (registration month, ``YYYY-MM``)."""
    if by is not None and by not in BY:
        raise ValueError(f"unknown grouping {by!r}: expected one of {', '.join(BY)}")
    m = _member_flags(snap)
    a = _anonymous_visitors(snap)
    group_m = m[BY[by]] if by else ibis.literal("all")
    zero = ibis.literal(0, type="int64")
    members = m.select(
        group=group_m,
        visitors=ibis.literal(1, type="int64"),
        registered=m.registered.cast("int64"),
        carted=m.carted,
        ordered=m.ordered,
        paid=m.paid,
        repeated=m.repeated,
        net=m.net,
    )
    others = a.select(
        group=ibis.literal(NOT_REGISTERED if by else "all"),
        visitors=ibis.literal(1, type="int64"),
        registered=zero,
        carted=zero,
        ordered=zero,
        paid=zero,
        repeated=zero,
        net=ibis.literal(0.0, type="float64"),
    )
    both = members.union(others)
    g = both.group_by("group").aggregate(
        **{s: both[s].sum().cast("int64") for s in STEPS},
        net_sales=both.net.sum().round(2),
    )
    conv = {f"{s}_rate": ratio(g[s], g[p]) for p, s in zip(STEPS, STEPS[1:], strict=False)}
    overall = {f"{s}_overall": ratio(g[s], g.visitors) for s in STEPS[1:]}
    out = g.select(
        "group",
        *STEPS,
        "net_sales",
        per_capita=ratio(g.net_sales, g.registered),
        **conv,
        **overall,
    )
    return out.order_by(out.group.startswith("("), "group")


def funnel_steps(row: dict) -> list[dict]:
    """One funnel row as a list of steps with count, step and overall conversion."""
    steps = []
    for i, s in enumerate(STEPS):
        steps.append(
            {
                "step": s,
                "count": row[s],
                "step_conversion": None if i == 0 else row[f"{s}_rate"],
                "overall_conversion": 1.0 if i == 0 and row[s] else row.get(f"{s}_overall"),
            }
        )
    return steps
