"""The build's first step: the customer profile and its companion tables.

The step reads the canonical tables as of a day (:class:`~archer.facts.Snapshot`)
and writes, through the pipeline (:mod:`archer.pipeline`, which publishes them at once):

* ``customer_profile`` — one row per member (columns in :data:`PROFILE_COLUMNS`);
* ``customer_categories`` — one row per member and category they touched, with scores;
* ``lapse_thresholds`` — the learned thresholds per category and gender;
* ``member_devices`` — which member each anonymous id (device) belongs to, so that audiences
  read members' events without scanning every event to link them;

The shop views (:mod:`archer.analytics.views`) and the audience snapshots
(:mod:`archer.audiences.snapshots`) are later steps of the same build.

Everything is an Ibis expression run in the warehouse; intermediate results are staged once
so that no part is computed twice.
"""

from __future__ import annotations

from dataclasses import replace

import ibis
import ibis.expr.types as ir

from archer.customers import lifecycle as lc
from archer.customers import preferences as pref
from archer.customers.custom import add_fields
from archer.customers.rfm import rfm
from archer.customers.rules import ProfileRules
from archer.customers.scores import ModelReport, clv_scores
from archer.facts import Snapshot
from archer.pipeline import Build, Step
from archer.schema import CATEGORIES, DEVICES, PROFILE, THRESHOLDS

SCORE_TYPES = {
    "p_alive": "float64",
    "expected_purchases_90d": "float64",
    "expected_value_365d": "float64",
    "churn_risk": "string",
}


def _members(s: Snapshot) -> ir.Table:
    c = s.customers
    has = lambda col: col.notnull() & (col.strip() != "")  # noqa: E731
    return c.select(
        "customer_id",
        "registered_at",
        "gender",
        "birthday",
        "province",
        "city",
        "acquisition_channel",
        email_reachable=(has(c.email) & c.email_opt_in.fill_null(False)),
        sms_reachable=(has(c.phone) & c.sms_opt_in.fill_null(False)),
    )


def _attach(left: ir.Table, right: ir.Table, suffix: str) -> ir.Table:
    """Left-join ``right`` on customer_id, keeping ``left``'s customer_id only."""
    r = right.rename(**{f"_id_{suffix}": "customer_id"})
    return left.left_join(r, left.customer_id == r[f"_id_{suffix}"]).drop(f"_id_{suffix}")


def _birthday(p: ir.Table, s: Snapshot) -> dict[str, ir.Value]:
    """Age in whole years and days until the next birthday (29 February: the 28th in
    common years)."""
    y = s.as_of.year
    today = s.as_of.month * 100 + s.as_of.day
    b = p.birthday
    md = b.month() * 100 + b.day()
    age = y - b.year() - ibis.ifelse(md > today, 1, 0)

    def on(year: int) -> ir.DateValue:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        day = b.day() if leap else ibis.ifelse(md == 229, 28, b.day())
        return ibis.date(ibis.literal(year), b.month(), day)

    nxt = ibis.ifelse(md >= today, on(y), on(y + 1))
    return {
        "age": age.cast("int64"),
        "days_to_birthday": -s.days_before_as_of(nxt),
    }


def profile_tables(
    b: Build, rules: ProfileRules
) -> tuple[ir.Table, ir.Table, ir.Table, ModelReport]:
    """The profile, category scores and thresholds as expressions over staged parts; the
    build's snapshot gains the staged device → member map."""

    def stage(expr: ir.Table, name: str, step: int) -> ir.Table:
        b.report("profile", step, 10)
        return b.stage(expr, name)

    # Every part that reads events links devices to members: compute that small map once.
    s = b.snapshot
    s = replace(s, identity_map=stage(s.identities(), "identities", 0))
    b.use_snapshot(s)
    scores = stage(pref.category_scores(s, rules), "categories", 1)
    p = _members(s)
    p = _attach(p, lc.order_summary(s), "o")
    p = _attach(p, lc.behaviour_summary(s), "b")
    p = _attach(p, lc.refund_summary(s), "r")
    p = _attach(p, pref.top_categories(scores), "c")
    zero = {c: p[c].fill_null(0) for c in ("n_orders", "paid_orders", "purchase_days")}
    zero |= {
        c: p[c].fill_null(0)
        for c in ("cart_adds", "favorites", "views", "searches", "visits", "unpaid_orders")
    }
    # Money to the cent: sums of floats would otherwise show 1625.4999999999998.
    zero |= {
        c: p[c].fill_null(0.0).round(2) for c in ("total_spent", "total_refunded", "net_spent")
    }
    zero["largest_order"] = p.largest_order.round(2)
    p = p.mutate(**zero)
    p = stage(p, "base", 2)

    gaps = lc.purchase_gaps(s)
    cells = p.select(_cid="customer_id", category="main_category", gender=lc.gender_cell(p.gender))
    g = gaps.join(cells, gaps.customer_id == cells._cid)
    g = g.select("category", "gender", "gap_days")
    thresholds = stage(lc.lapse_thresholds(g, rules), "thresholds", 3)

    p = lc.threshold_for(p, thresholds)
    p = p.mutate(
        days_since_last_purchase=s.days_before_as_of(p.last_purchase_day),
        days_since_last_order=s.local_days_before(p.last_order_at),
    )
    p = lc.state_and_stage(p, rules)
    p = p.mutate(**_birthday(p, s))
    p = p.mutate(**_flags(p, s, rules))

    buyers = p.filter(p.purchase_days > 0).select(
        "customer_id",
        recency_days=p.days_since_last_purchase,
        frequency=p.purchase_days,
        monetary=p.net_spent,
    )
    scored = stage(rfm(buyers), "rfm", 4)
    bands = stage(pref.price_bands(s), "bands", 5)
    fest = stage(pref.festival_buyers(s, rules), "festivals", 6)
    hab = stage(pref.habits(s), "habits", 7)
    clv, models = clv_scores(s, rules)
    if clv is None:
        clv = p.select("customer_id", **{c: ibis.null(t) for c, t in SCORE_TYPES.items()})
    clv = stage(clv, "clv", 8)
    p = _attach(p, scored, "rfm")
    p = _attach(p, clv, "clv")
    p = _attach(p, bands, "pb")
    p = _attach(p, fest, "fb")
    p = _attach(p, hab, "h")
    enough = p.paid_orders >= rules.discount_min_orders
    share = ibis.ifelse(p.paid_orders > 0, p.discounted_orders / p.paid_orders, ibis.null())
    p = p.mutate(
        discount_share=share.cast("float64"),
        discount_sensitive=(enough & (share > rules.discount_share)).fill_null(False),
        festival_buyer=p.festival_buyer.fill_null(False),
        as_of=s.as_of_date,
    )
    p = add_fields(p.select(*PROFILE_COLUMNS), s.customers, b.ws.settings.fields)
    return p, scores, thresholds, models


def _flags(p: ir.Table, s: Snapshot, rules: ProfileRules) -> dict[str, ir.Value]:
    cart_age = s.local_days_before(p.last_cart_at)
    ordered_since = p.last_order_at.notnull() & (p.last_order_at >= p.last_cart_at)
    return {
        "has_open_cart": (
            (cart_age < rules.cart_window_days) & ~ordered_since.fill_null(False)
        ).fill_null(False),
        "has_unpaid_order": p.unpaid_orders > 0,
        "unpaid_order_age_days": s.local_days_before(p.oldest_unpaid_at),
        "has_favorites": p.favorites > 0,
        "refunded_recently": (
            s.local_days_before(p.last_refund_at) < rules.refund_window_days
        ).fill_null(False),
        "birthday_soon": (p.days_to_birthday <= rules.birthday_window_days).fill_null(False),
    }


PROFILE_COLUMNS = (
    # who
    "customer_id", "registered_at", "gender", "age", "birthday", "days_to_birthday",
    "province", "city", "acquisition_channel", "email_reachable", "sms_reachable",
    # where they stand
    "lifecycle", "stage", "lapse_threshold_days", "days_since_last_purchase",
    "has_open_cart", "has_unpaid_order", "unpaid_order_age_days", "has_favorites",
    "refunded_recently", "birthday_soon",
    # orders and money
    "n_orders", "paid_orders", "purchase_days", "first_order_at", "last_order_at",
    "days_since_last_order", "first_purchase_day",
    "last_purchase_day", "total_spent", "total_refunded", "net_spent", "largest_order",
    "unpaid_orders",
    # behaviour
    "visits", "views", "searches", "cart_adds", "favorites", "last_event_at",
    # RFM
    "r_score", "f_score", "m_score", "rfm_score", "rfm_segment", "value_tier",
    # preferences
    "top_category", "top_category_share", "second_category", "main_category",
    "price_position", "price_band", "discount_share", "discount_sensitive",
    "festival_purchases", "festival_pvalue", "festival_buyer",
    "preferred_hour", "preferred_weekday", "preferred_channel",
    # model scores
    "p_alive", "expected_purchases_90d", "expected_value_365d", "churn_risk",
    "as_of",
)  # fmt: skip


def run(b: Build) -> dict:
    """Write the profile, category scores, thresholds and device map; count what was found."""
    profile, scores, thresholds, models = profile_tables(b, b.ws.settings.profile)
    written = b.write(PROFILE, profile)
    b.write(CATEGORIES, scores)
    b.write(THRESHOLDS, thresholds)
    b.write(DEVICES, b.snapshot.identity_map)
    b.use_snapshot(replace(b.snapshot, identity_map=b.table(DEVICES)))
    b.report("profile", 10, 10)
    return {
        "lifecycle": _counts(written, "lifecycle"),
        "stages": _counts(written, "stage"),
        "rfm_segments": _counts(written, "rfm_segment"),
        "models": models.to_dict(),
    }


STEP = Step("profile", run)


def _counts(t: ir.Table, col: str) -> dict[str, int]:
    df = t.group_by(col).aggregate(n=t.count()).execute()
    df = df[df[col].notnull()].sort_values(["n", col], ascending=[False, True])
    return {str(k): int(v) for k, v in zip(df[col], df.n, strict=True)}
