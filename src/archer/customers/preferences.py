"""What each customer likes: categories, price band, discounts, festivals, hour, weekday and
channel.

* **categories** — each bought line, favourite, cart add and product view scores its category
  (weights ``weight_bought`` 5, ``weight_favorite`` 3, ``weight_cart`` 2, ``weight_view`` 1);
  a customer's share of a category is its score over their total. The top category has the
  highest score (ties: alphabetical); the *main* category — the one lapse thresholds are
  learned for — is the most bought (ties: score, then alphabetical);
* **price band** — each paid line's unit price is placed in the distribution of paid unit prices
  of its category (percent rank, 0 cheapest … 1 dearest); the customer's ``price_position`` is
  the median over their lines: ``budget`` below 1/3, ``premium`` above 2/3, else ``mid``;
* **discount sensitivity** — share of paid orders with a discount or a coupon; sensitive above
  ``discount_share`` (more than half by default) with at least ``discount_min_orders`` paid
  orders;
* **festival buyer** — of a customer's n purchase days, k fall in festival windows; the chance
  of one purchase day falling in a window is the shop's share p0 of all purchase days that do.
  A one-sided binomial test P(X ≥ k | n, p0) below ``festival_alpha`` makes a festival buyer;
* **hour, weekday, channel** — the most frequent local hour and weekday (0 = Monday) of the
  customer's events and payments, and the channel of most paid orders (ties: the smaller).
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from scipy.stats import binom

from archer.customers.rules import ProfileRules
from archer.facts import Snapshot

PRICE_BANDS = ("budget", "mid", "premium")
FESTIVAL_LOOKBACK_YEARS = 10


def category_scores(s: Snapshot, rules: ProfileRules) -> ir.Table:
    """One row per customer and category: counts, ``score``, ``share``, ``rank`` (1 = top)
    and ``bought_rank`` (1 = main category)."""
    lines = s.paid_lines()
    bought = lines.filter(lines.category.notnull()).select(
        "customer_id",
        "category",
        b=ibis.literal(1, "int32"),
        f=ibis.literal(0, "int32"),
        c=ibis.literal(0, "int32"),
        v=ibis.literal(0, "int32"),
    )
    e = s.member_events()
    e = e.filter(e.type.isin(["favorite", "cart_add", "view"]))
    p = s.products.select(_pid="product_id", _pcat="category")
    e = e.left_join(p, e.product_id == p._pid)
    cat = e.category.coalesce(e._pcat)
    seen = e.filter(cat.notnull()).select(
        "customer_id",
        category=cat,
        b=ibis.literal(0, "int32"),
        f=(e.type == "favorite").cast("int32"),
        c=(e.type == "cart_add").cast("int32"),
        v=(e.type == "view").cast("int32"),
    )
    u = bought.union(seen)
    g = u.group_by(["customer_id", "category"]).aggregate(
        bought_lines=u.b.sum().cast("int64"),
        favorites=u.f.sum().cast("int64"),
        cart_adds=u.c.sum().cast("int64"),
        views=u.v.sum().cast("int64"),
    )
    score = (
        g.bought_lines * rules.weight_bought
        + g.favorites * rules.weight_favorite
        + g.cart_adds * rules.weight_cart
        + g.views * rules.weight_view
    ).cast("float64")
    g = g.mutate(score=score)
    by_customer = ibis.window(group_by=g.customer_id)
    w_top = ibis.window(group_by=g.customer_id, order_by=[ibis.desc(g.score), g.category])
    w_main = ibis.window(
        group_by=g.customer_id,
        order_by=[ibis.desc(g.bought_lines), ibis.desc(g.score), g.category],
    )
    total = g.score.sum().over(by_customer)
    return g.mutate(
        share=ibis.ifelse(total > 0, g.score / total, 0.0),
        rank=(ibis.row_number().over(w_top) + 1).cast("int64"),
        bought_rank=(ibis.row_number().over(w_main) + 1).cast("int64"),
    )


def top_categories(scores: ir.Table) -> ir.Table:
    """Per customer: ``top_category``, ``top_category_share``, ``second_category``,
    ``main_category`` (most bought; NULL when nothing was bought)."""
    t = scores
    top = t.filter(t.rank == 1).select(
        "customer_id", top_category=t.category, top_category_share=t.share
    )
    second = t.filter(t.rank == 2).select(_c2="customer_id", second_category=t.category)
    main = t.filter((t.bought_rank == 1) & (t.bought_lines > 0)).select(
        _c3="customer_id", main_category=t.category
    )
    j = top.left_join(second, top.customer_id == second._c2)
    j = j.left_join(main, j.customer_id == main._c3)
    return j.drop("_c2", "_c3")


def price_bands(s: Snapshot) -> ir.Table:
    """Per buyer: ``price_position`` (0 cheapest … 1 dearest in their categories) and band."""
    lines = s.paid_lines()
    lines = lines.filter(lines.category.notnull() & lines.unit_price.notnull())
    pr = ibis.percent_rank().over(ibis.window(group_by=lines.category, order_by=lines.unit_price))
    ranked = lines.mutate(_pr=pr)
    # The median of the customer's positions, written with a window so that every engine gives
    # the same exact value: the middle line, or the mean of the two middle lines.
    w = ibis.window(group_by=ranked.customer_id, order_by=[ranked._pr])
    ranked = ranked.mutate(
        _i=ibis.row_number().over(w), _n=ranked.count().over(ibis.window(group_by="customer_id"))
    )
    lo = ((ranked._n - 1) / 2).floor().cast("int64")
    hi = ((ranked._n - 1) / 2).ceil().cast("int64")
    mid = ranked.filter((ranked._i == lo) | (ranked._i == hi))
    g = mid.group_by("customer_id").aggregate(price_position=mid._pr.mean())
    band = ibis.cases(
        (g.price_position < 1 / 3, "budget"),
        (g.price_position > 2 / 3, "premium"),
        else_="mid",
    )
    return g.mutate(price_band=band)


def _window_days(s: Snapshot, rules: ProfileRules) -> ir.Table:
    start = date(s.as_of.year - FESTIVAL_LOOKBACK_YEARS, 1, 1)
    days: dict[date, str] = {}
    for f in rules.windows(start, s.as_of):
        d = f.start
        while d <= f.end:
            days.setdefault(d, f.key)
            d += timedelta(days=1)
    tbl = pa.table(
        {"_fday": pa.array(sorted(days), pa.date32()), "_fkey": [days[d] for d in sorted(days)]}
    )
    return ibis.memtable(tbl)


def festival_buyers(s: Snapshot, rules: ProfileRules) -> ir.Table:
    """Per buyer: ``festival_purchases`` (k), ``festival_pvalue`` and ``festival_buyer``."""
    f = s.paid_orders()
    days = f.select("customer_id", day=f.pay_day).distinct()
    win = _window_days(s, rules)
    j = days.left_join(win, days.day == win._fday)
    per = j.group_by("customer_id").aggregate(n=j.count(), k=j._fday.notnull().cast("int64").sum())
    totals = per.aggregate(n=per.n.sum(), k=per.k.sum()).execute()
    n_all, k_all = int(totals.n.iloc[0] or 0), int(totals.k.iloc[0] or 0)
    p0 = k_all / n_all if n_all else 0.0
    pairs = per.select("n", "k").distinct().execute()
    pv = binom.sf(pairs.k.to_numpy() - 1, pairs.n.to_numpy(), p0) if len(pairs) else []
    table = pa.table(
        {
            "_n": pa.array(pairs.n.to_numpy(), pa.int64()),
            "_k": pa.array(pairs.k.to_numpy(), pa.int64()),
            "festival_pvalue": pa.array(pv, pa.float64()),
        }
    )
    m = ibis.memtable(table)
    out = per.join(m, (per.n == m._n) & (per.k == m._k))
    return out.select(
        "customer_id",
        festival_purchases=out.k,
        festival_pvalue=out.festival_pvalue,
        festival_buyer=out.festival_pvalue < rules.festival_alpha,
    )


def _mode(t: ir.Table, column: str, name: str) -> ir.Table:
    """The most frequent value of ``column`` per customer (ties: the smaller value)."""
    g = t.group_by(["customer_id", column]).aggregate(_n=t.count())
    w = ibis.window(group_by=g.customer_id, order_by=[ibis.desc(g._n), g[column]])
    ranked = g.mutate(_r=ibis.row_number().over(w))
    top = ranked.filter(ranked._r == 0)
    return top.select("customer_id", **{name: top[column]})


def habits(s: Snapshot) -> ir.Table:
    """Per customer: ``preferred_hour`` (0–23), ``preferred_weekday`` (0 = Monday) of their
    activity in local time, and ``preferred_channel`` of their paid orders."""
    e = s.member_events()
    f = s.paid_orders()

    def when(t: ir.Table, ts: ir.TimestampValue) -> ir.Table:
        local = s.local(ts)
        return t.select(
            "customer_id",
            hour=local.hour().cast("int64"),
            weekday=local.day_of_week.index().cast("int64"),
        )

    moments = when(e, e.occurred_at).union(when(f, f.pay_time))
    hour = _mode(moments, "hour", "preferred_hour")
    weekday = _mode(moments, "weekday", "preferred_weekday").rename(_cw="customer_id")
    channel = _mode(f.filter(f.channel.notnull()), "channel", "preferred_channel").rename(
        _cc="customer_id"
    )
    j = hour.join(weekday, hour.customer_id == weekday._cw).drop("_cw")
    j = j.left_join(channel, j.customer_id == channel._cc)
    return j.drop("_cc")
