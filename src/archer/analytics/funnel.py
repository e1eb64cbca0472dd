"""The lifecycle funnel: visit → registration → product view → cart → order → payment → repeat.

Each step is counted two ways. **Reached** (the step's own column) counts the people who did
that step's action *or any later one* (a customer who paid has ordered; an order went through
a cart even when the export has no cart event), so every step is a subset of the one before
and every conversion lies between 0 and 1. **Did** (``did_visit``, ``did_view``, ``did_cart``)
counts the people who did the action itself — for the three steps where the two differ.

* **visitors** — distinct people with a ``visit`` event, plus every registered customer
  (signing up is a visit). A person is a member id; an anonymous id that an event links to a
  member (the register event carries both) counts as that member; an anonymous id never
  linked is one anonymous visitor. ``did_visit``: the people with a ``visit`` event.
* **registered** — customers registered by the end of the as-of day (or with no
  registration time). A shop that imported only events has its identified events' user ids
  as customers (:attr:`Snapshot.customers`).
* **viewed** — registered customers with a ``view`` event (their own, or one from an
  anonymous id linked to them) or who reached a later step; ``did_view``: with a view.
* **carted** — registered customers with a ``cart_add`` event or an order; ``did_cart``:
  with a ``cart_add``.
* **ordered** — registered customers with at least one order created, whatever its status.
* **paid** — registered customers with at least one paid order (``Snapshot.order_facts``).
* **repeated** — registered customers with paid orders on two or more local days.

A shop that imported no orders but ``purchase`` events (a behaviour log's buys, such as
Tianchi UserBehavior's ``buy``) has its bought steps from them: **ordered** and **paid** are
the registered customers with a ``purchase`` event, **repeated** those with purchases on two
or more local days; net sales stay 0 (a purchase event carries no amount). With orders
imported, the orders alone count (a purchase event is not also an order).

A step the imported data cannot tell is **null**, not a guess: with no ``visit`` events at
all, the visitors (without them, "every customer visited" would be a made-up 100% step);
with no ``view`` or ``cart_add`` events, the viewed or carted step; with neither orders nor
purchase events, the ordered, paid and repeated steps. :func:`notes` says which, in words.

``net_sales`` is the net (paid − refunded) of the registered customers' paid orders and
``per_capita`` = net_sales ÷ registered. Step conversion is a step over the nearest known
step before it; overall conversion is a step over the first known step of the row (visitors,
or registered when no visits were imported).

By acquisition channel or by registration month, registered customers fall in their group and
visitors never registered in the group ``(not registered)``; customers without a channel or a
registration time fall in ``(unknown)``. The groups add up to the overall row.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from archer.analytics.common import month_label, month_number, people, ratio
from archer.facts import Snapshot

STEPS = ("visitors", "registered", "viewed", "carted", "ordered", "paid", "repeated")
DID = {"visitors": "did_visit", "viewed": "did_view", "carted": "did_cart"}
# What makes a step unknowable: the event type (or the orders) it needs, and what to say.
NEEDS = {
    "visitors": ("visit", "no visit events were imported: the funnel starts at registration"),
    "viewed": ("view", "no product views were imported: the viewed step is unknown"),
    "carted": ("cart_add", "no cart events were imported: the carted step is unknown"),
    "ordered": (
        "orders",
        "no orders were imported (nor purchase events): ordered, paid and repeated are unknown",
    ),
}
PURCHASE = "purchase"  # the event type of a buy in a behaviour log (schema.EVENT_TYPES)
NOTES = {step: text for step, (_, text) in NEEDS.items()}
BY = {"channel": "acquisition_channel", "month": "registration_month"}
NOT_REGISTERED = "(not registered)"
UNKNOWN = "(unknown)"


def _seen_types(snap: Snapshot) -> set[str]:
    e = snap.events
    kinds = [*(v for v, _ in NEEDS.values() if v != "orders"), PURCHASE]
    return set(e.filter(e.type.isin(kinds)).select("type").distinct().execute()["type"])


def _has_orders(snap: Snapshot) -> bool:
    return int(snap.orders.limit(1).count().execute()) > 0


def unknown_steps(snap: Snapshot) -> set[str]:
    """The steps the imported data cannot tell (see the module's docstring)."""
    seen = _seen_types(snap)
    out = {step for step, (kind, _) in NEEDS.items() if kind != "orders" and kind not in seen}
    if not _has_orders(snap) and PURCHASE not in seen:
        out |= {"ordered", "paid", "repeated"}
    return out


def _member_flags(snap: Snapshot) -> ir.Table:
    """One row per registered customer: the group keys and whether each step was reached."""
    c = snap.customers
    e = people(snap, snap.events)
    e = e.filter(e.type.isin(("view", "cart_add")) & e.person.notnull())
    acts = e.group_by(_cid=e.person).aggregate(
        _view=(e.type == "view").any(), _cart=(e.type == "cart_add").any()
    )
    orders = _orders_by_customer(snap) if _has_orders(snap) else _purchases_by_customer(snap)
    j = c.left_join(acts, c.customer_id == acts._cid).left_join(
        orders, c.customer_id == orders._oid
    )
    ordered = j._orders.fill_null(0) > 0
    did_cart = j._cart.fill_null(False)
    did_view = j._view.fill_null(False)
    reg_month = month_label(month_number(snap.local_day(j.registered_at)))
    return j.select(
        customer_id=j.customer_id,
        acquisition_channel=j.acquisition_channel.nullif("").fill_null(UNKNOWN),
        registration_month=reg_month.fill_null(UNKNOWN),
        registered=ibis.literal(1),
        viewed=(did_view | did_cart | ordered).cast("int64"),
        carted=(did_cart | ordered).cast("int64"),
        ordered=ordered.cast("int64"),
        paid=(j._paid.fill_null(0) > 0).cast("int64"),
        repeated=(j._days.fill_null(0) >= 2).cast("int64"),
        did_view=did_view.cast("int64"),
        did_cart=did_cart.cast("int64"),
        net=j._net.fill_null(0.0),
    )


def _orders_by_customer(snap: Snapshot) -> ir.Table:
    """Per customer (``_oid``): orders, paid orders, local days with a payment, net paid."""
    f = snap.order_facts()
    f = f.filter(f.customer_id.notnull())
    return f.group_by(_oid=f.customer_id).aggregate(
        _orders=f.count(),
        _paid=f.count(where=f.is_paid),
        _days=f.pay_day.nunique(where=f.is_paid),
        _net=f.net.sum(where=f.is_paid),
    )


def _purchases_by_customer(snap: Snapshot) -> ir.Table:
    """The same from ``purchase`` events, for a shop without orders: each purchase is an
    order and its payment, on the event's local day; no amount is known (net 0)."""
    e = people(snap, snap.events)
    e = e.filter((e.type == PURCHASE) & e.person.notnull())
    return e.group_by(_oid=e.person).aggregate(
        _orders=e.count(),
        _paid=e.count(),
        _days=snap.local_day(e.occurred_at).nunique(),
        _net=ibis.literal(0.0, type="float64"),
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
    unknown = unknown_steps(snap)
    m = _member_flags(snap)
    a = _anonymous_visitors(snap)
    group_m = m[BY[by]] if by else ibis.literal("all")
    zero = ibis.literal(0, type="int64")
    one = ibis.literal(1, type="int64")
    members = m.select(
        group=group_m,
        visitors=one,
        registered=m.registered.cast("int64"),
        **{s: m[s] for s in STEPS[2:]},
        did_visit=zero,  # counted from the visit events below
        did_view=m.did_view,
        did_cart=m.did_cart,
        net=m.net,
    )
    others = a.select(
        group=ibis.literal(NOT_REGISTERED if by else "all"),
        visitors=one,
        registered=zero,
        **{s: zero for s in STEPS[2:]},
        did_visit=zero,
        did_view=zero,
        did_cart=zero,
        net=ibis.literal(0.0, type="float64"),
    )
    both = members.union(others)
    counts = {"did_visit": _visit_counts(snap, m, by)}
    g = both.group_by("group").aggregate(
        **{s: both[s].sum().cast("int64") for s in (*STEPS, "did_view", "did_cart")},
        net_sales=both.net.sum().round(2),
    )
    v = counts["did_visit"]
    g = g.left_join(v, g.group == v._group).drop("_group")
    g = g.mutate(did_visit=g.did_visit.fill_null(0))
    null = ibis.null().cast("int64")
    for step in unknown:  # a step the data cannot tell: null, not a guess
        g = g.mutate(**{step: null}, **({DID[step]: null} if step in DID else {}))
    known = [s for s in STEPS if s not in unknown]
    conv = {}
    for i, s in enumerate(STEPS[1:], 1):
        before = [p for p in STEPS[:i] if p in known]
        conv[f"{s}_rate"] = ratio(g[s], g[before[-1]]) if before else null.cast("float64")
    first = known[0] if known else "registered"
    overall = {f"{s}_overall": ratio(g[s], g[first]) for s in STEPS[1:]}
    out = g.select(
        "group",
        *STEPS,
        *DID.values(),
        "net_sales",
        per_capita=ratio(g.net_sales, g.registered),
        **conv,
        **overall,
    )
    return out.order_by(out.group.startswith("("), "group")


def _visit_counts(snap: Snapshot, m: ir.Table, by: str | None) -> ir.Table:
    """People with a visit event per group (``_group``, ``did_visit``): members in their
    group, the rest in ``(not registered)``."""
    e = people(snap, snap.events)
    v = e.filter(e.type == "visit")
    key = ibis.ifelse(v.person.notnull(), "m:" + v.person, "a:" + v.anonymous)
    v = (
        v.filter(v.person.notnull() | v.anonymous.notnull())
        .select(person=v.person, key=key)
        .distinct()
    )
    keys = m.select(_cid="customer_id", _g=m[BY[by]] if by else ibis.literal("all"))
    j = v.left_join(keys, v.person == keys._cid)
    outside = ibis.literal(NOT_REGISTERED if by else "all")
    j = j.select(_group=j._g.fill_null(outside), key=j.key)
    return j.group_by("_group").aggregate(did_visit=j.key.nunique().cast("int64"))


def notes(row: dict) -> list[str]:
    """What a funnel row could not count, in words (its unknown steps are null)."""
    out = []
    for step, text in NOTES.items():
        if row.get(step) is None and text not in out:
            out.append(text)
    return out


def funnel_steps(row: dict) -> list[dict]:
    """One funnel row as a list of steps: reached (``count``), did (where it differs), step
    and overall conversion; an unknown step has None throughout."""
    known = [s for s in STEPS if row.get(s) is not None]
    steps = []
    for s in STEPS:
        first = bool(known) and s == known[0]
        steps.append(
            {
                "step": s,
                "count": row[s],
                "did": row.get(DID[s]) if s in DID else None,
                "step_conversion": None if first or s == STEPS[0] else row[f"{s}_rate"],
                "overall_conversion": (1.0 if row[s] else None) if first
                else row.get(f"{s}_overall"),
            }
        )  # fmt: skip
    return steps
