"""Where each customer stands: purchase and behaviour facts, learned lapse thresholds,
the lifecycle state, the stage and the flags that may co-exist.

The rules (docs/profile.md has them in words):

* **lifecycle** — exactly one per customer, first match wins:
  ``registered_no_cart`` (never added to cart, never ordered), ``cart_no_order`` (added to
  cart, never ordered), ``ordered_unpaid`` (ordered, never paid), and for buyers, by the days
  since their last purchase against their lapse threshold: ``lost`` (more than ``lost_factor``
  thresholds), ``lapsing`` (more than one), ``repeat_buyer`` (``loyal_min_purchases`` purchase
  days or more), else ``one_time_buyer``;
* **stage** — ``potential`` (a member with no paid order), ``loyal`` (a repeat buyer not past the
  lapse threshold), ``target`` (every other buyer);
* **lapse thresholds** — from the gaps between consecutive purchase days of all buyers, grouped
  by the buyer's main category and gender: the ``lapse_quantile`` of the gaps in a cell, shrunk
  towards the category's value (and the category's towards the shop's) with the weight of
  ``lapse_prior_gaps`` gaps, never below ``lapse_min_days``.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from archer.customers.rules import ProfileRules
from archer.facts import Snapshot

LIFECYCLE_STATES = (
    "registered_no_cart",
    "cart_no_order",
    "ordered_unpaid",
    "one_time_buyer",
    "repeat_buyer",
    "lapsing",
    "lost",
)
STAGES = ("potential", "target", "loyal")
ALL = "all"  # the gender (or category) of a cell that pools every value


def order_summary(s: Snapshot) -> ir.Table:
    """Per customer: orders, purchases, money, unpaid orders, discounts (orders of members)."""
    f = s.order_facts()
    f = f.filter(f.customer_id.notnull())
    cancelled = (f.cancelled_at.notnull() & (f.cancelled_at < s.cut)) | (
        f.cancelled_at.isnull() & (f.status == "cancelled")
    )
    open_unpaid = ~f.is_paid & ~cancelled.fill_null(False)
    paid_amount = ibis.ifelse(f.is_paid, f.amount, ibis.null("float64"))
    return f.group_by("customer_id").aggregate(
        n_orders=f.count(),
        first_order_at=f.created_at.min(),
        last_order_at=f.created_at.max(),
        paid_orders=f.is_paid.cast("int64").sum(),
        purchase_days=f.pay_day.nunique(),
        first_purchase_day=f.pay_day.min(),
        last_purchase_day=f.pay_day.max(),
        total_spent=f.amount.sum(),
        total_refunded=f.refunded.sum(),
        net_spent=f.net.sum(),
        largest_order=paid_amount.max(),
        discounted_orders=(f.is_paid & f.discounted).cast("int64").sum(),
        discounted_spend=ibis.ifelse(f.is_paid & f.discounted, f.amount, 0.0).sum(),
        unpaid_orders=open_unpaid.cast("int64").sum(),
        oldest_unpaid_at=ibis.ifelse(open_unpaid, f.created_at, ibis.null("timestamp")).min(),
    )


def refund_summary(s: Snapshot) -> ir.Table:
    r = s.refunds
    o = s.orders.select(_oid="order_id", customer_id="customer_id")
    j = r.join(o, r.order_id == o._oid)
    j = j.filter(j.customer_id.notnull())
    return j.group_by("customer_id").aggregate(last_refund_at=j.refunded_at.max())


def behaviour_summary(s: Snapshot) -> ir.Table:
    """Per member: carts, favourites, views, searches and the last activity, from events
    (including those made before signing in, on a device linked to the member)."""
    e = s.member_events()

    def n(kind: str) -> ir.IntegerScalar:
        return (e.type == kind).cast("int64").sum()

    def last(kind: str) -> ir.TimestampScalar:
        return ibis.ifelse(e.type == kind, e.occurred_at, ibis.null("timestamp")).max()

    return e.group_by("customer_id").aggregate(
        cart_adds=n("cart_add"),
        favorites=n("favorite"),
        views=n("view"),
        searches=n("search"),
        visits=n("visit"),
        last_cart_at=last("cart_add"),
        last_event_at=e.occurred_at.max(),
    )


def purchase_gaps(s: Snapshot) -> ir.Table:
    """Days between consecutive purchase days of each buyer: ``customer_id, gap_days``."""
    f = s.paid_orders()
    days = f.select("customer_id", day=f.pay_day.epoch_days()).distinct()
    w = ibis.window(group_by=days.customer_id, order_by=days.day)
    g = days.mutate(gap_days=(days.day - days.day.lag().over(w)).cast("int64"))
    return g.filter(g.gap_days.notnull()).select("customer_id", "gap_days")


def _quantile(gaps: ir.Table, by: list[str], q: float) -> ir.Table:
    """The ``q`` quantile of ``gap_days`` per group (inverted CDF: the smallest gap with at
    least ``q`` of the group at or below it) and the group's number of gaps.

    Written with a window rather than a quantile aggregate so that every engine gives the
    same exact answer (Spark's percentile_approx would not).
    """
    w = ibis.window(group_by=[gaps[c] for c in by], order_by=gaps.gap_days)
    ranked = gaps.mutate(
        _rn=ibis.row_number().over(w) + 1, _n=gaps.count().over(ibis.window(group_by=by))
    )
    pick = ranked.filter(ranked._rn == (ranked._n * q).ceil().cast("int64"))
    return pick.select(*by, n_gaps=pick._n, q_days=pick.gap_days.cast("float64"))


def lapse_thresholds(gaps_by_cell: ir.Table, rules: ProfileRules) -> ir.Table:
    """The thresholds table: ``category, gender, n_gaps, quantile_days, threshold_days``.

    ``gaps_by_cell`` has ``category, gender, gap_days`` (category NULL for buyers of nothing
    with a category: they count for the shop only). Rows with ``category = 'all'`` and
    ``gender = 'all'`` are the shop; ``gender = 'all'`` rows are whole categories.
    """
    q, k, floor = rules.lapse_quantile, float(rules.lapse_prior_gaps), float(rules.lapse_min_days)
    shop = _quantile(gaps_by_cell.mutate(_all=ibis.literal(ALL)), ["_all"], q)
    g = gaps_by_cell.filter(gaps_by_cell.category.notnull())
    cat = _quantile(g, ["category"], q)
    cell = _quantile(g, ["category", "gender"], q)
    shop_days = shop.select(shop_days=shop.q_days, shop_n=shop.n_gaps)

    def shrink(n, own, prior):
        return ibis.greatest((n.cast("float64") * own + k * prior) / (n.cast("float64") + k), floor)

    c = cat.cross_join(shop_days)
    cat_t = c.select(
        "category", c_n=c.n_gaps, c_q=c.q_days, c_t=shrink(c.n_gaps, c.q_days, c.shop_days)
    )
    j = cell.join(cat_t, "category")
    cells = j.select(
        "category",
        "gender",
        "n_gaps",
        quantile_days=j.q_days,
        threshold_days=shrink(j.n_gaps, j.q_days, j.c_t),
    )
    cats = cat_t.select(
        "category",
        gender=ibis.literal(ALL),
        n_gaps=cat_t.c_n,
        quantile_days=cat_t.c_q,
        threshold_days=cat_t.c_t,
    )
    whole = shop_days.select(
        category=ibis.literal(ALL),
        gender=ibis.literal(ALL),
        n_gaps=shop_days.shop_n,
        quantile_days=shop_days.shop_days,
        threshold_days=ibis.greatest(shop_days.shop_days, floor),
    )
    return cells.union(cats).union(whole)


def gender_cell(gender: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(gender.isin(["f", "m"]), gender, "unknown")


def threshold_for(p: ir.Table, thresholds: ir.Table) -> ir.FloatingValue:
    """Look up each profile row's threshold: its (category, gender) cell, else its category,
    else the shop's. ``p`` needs ``main_category`` and ``gender``; returns ``p`` + column."""
    t = thresholds
    cell = t.filter(t.gender != ALL).select(_cc="category", _cg="gender", _t1="threshold_days")
    cat = t.filter((t.gender == ALL) & (t.category != ALL)).select(
        _ck="category", _t2="threshold_days"
    )
    # A left join on a constant, not a cross join: a shop without any repeat purchase has no
    # threshold at all, and its customers must not vanish with it.
    shop = t.filter(t.category == ALL).select(_k3=ibis.literal(ALL), _t3="threshold_days")
    g = gender_cell(p.gender)
    j = p.left_join(cell, (p.main_category == cell._cc) & (g == cell._cg))
    j = j.left_join(cat, j.main_category == cat._ck)
    j = j.left_join(shop, ibis.literal(ALL) == shop._k3)
    j = j.mutate(lapse_threshold_days=j._t1.coalesce(j._t2, j._t3))
    return j.drop("_cc", "_cg", "_t1", "_ck", "_t2", "_k3", "_t3")


def state_and_stage(p: ir.Table, rules: ProfileRules) -> ir.Table:
    """Add ``lifecycle`` and ``stage`` to a profile with the summary columns and threshold."""
    bought = p.purchase_days > 0
    since = p.days_since_last_purchase.cast("float64")
    thr = p.lapse_threshold_days
    lifecycle = ibis.cases(
        (~bought & (p.n_orders > 0), "ordered_unpaid"),
        (~bought & (p.cart_adds > 0), "cart_no_order"),
        (~bought, "registered_no_cart"),
        (since > thr * rules.lost_factor, "lost"),
        (since > thr, "lapsing"),
        (p.purchase_days >= rules.loyal_min_purchases, "repeat_buyer"),
        else_="one_time_buyer",
    )
    p = p.mutate(lifecycle=lifecycle)
    stage = ibis.cases(
        (~bought, "potential"),
        (p.lifecycle == "repeat_buyer", "loyal"),
        else_="target",
    )
    return p.mutate(stage=stage)
