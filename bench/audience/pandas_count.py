"""The pandas contender of the audience benchmark: the benchmark's audience, written by hand.

The audience (``common.shop.AUDIENCE``)::

    total_spent >= 200 and province in ("Jiangsu", "Zhejiang", "Shanghai", "Guangdong")
    and email_reachable and viewed(category = "skincare", within = 30d, count >= 2)
    and not bought(category = "skincare", within = 90d)

The columns it needs are read whole from the warehouse with DuckDB's ``.df()``, as a pandas
user does; the rest is pandas. The rules are Archer's (``archer.facts`` and
``archer.audiences.behaviour``), so that the answers can be compared:

* the shop is seen as of the end of the profile's as-of day in Asia/Shanghai (UTC+8): events
  and orders before that instant count; ``within = 30d`` keeps rows from 30 days before it;
* an event belongs to its ``customer_id``, or else to the member an event carrying both ids
  linked its ``anonymous_id`` to (the smallest such member id) — the anonymous-id linking;
* an event's category is its own, or else its product's; ``count`` counts distinct events
  (``event_id`` is the events' key: the benchmark checks it, so rows are counted);
* an order is paid when it has a ``paid_at`` before the cut-off, or no ``paid_at`` and a paid
  status; its payment time is ``paid_at`` or else ``created_at``; guest orders are left out.

Run as ``audience/pandas_count.py HOME [REPEATS]``: it reads once, computes ``REPEATS`` times
(default 3) and reports, on its last line, read seconds, the median compute seconds and the
count of the audience and of each clause.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import pandas as pd

from common.harness import report
from common.shop import warehouse

PAID_STATUSES = ["paid", "shipped", "completed", "refunded"]
OFFSET = timedelta(hours=8)  # Asia/Shanghai, no daylight saving
PROVINCES = ["Jiangsu", "Zhejiang", "Shanghai", "Guangdong"]
CATEGORY = "skincare"

COLUMNS = {
    "customer_profile": "customer_id, total_spent, province, email_reachable, as_of",
    "events": "customer_id, anonymous_id, type, occurred_at, product_id, category",
    "products": "product_id, category",
    "orders": "order_id, customer_id, created_at, paid_at, status",
    "order_items": "order_id, product_id",
}


def read(home: Path) -> dict[str, pd.DataFrame]:
    with warehouse(home) as con:
        return {t: con.sql(f"select {cols} from {t}").df() for t, cols in COLUMNS.items()}


def cutoff(as_of: date) -> datetime:
    """The first instant after the as-of day in shop time, as naive UTC."""
    return datetime.combine(as_of + timedelta(days=1), datetime.min.time()) - OFFSET


def viewers(d: dict[str, pd.DataFrame], cut: datetime) -> pd.Index:
    """Members with at least two views of skincare in the 30 days before the cut-off."""
    e = d["events"]
    e = e[e.occurred_at < cut]
    both = e[e.anonymous_id.notna() & e.customer_id.notna()]
    # The smallest member per device. groupby(...).min() on strings falls back to a Python
    # loop per group (seconds on 20,000 customers); sorting once is the usual idiom.
    first = both.sort_values("customer_id").drop_duplicates("anonymous_id")
    linked = first.set_index("anonymous_id").customer_id
    v = e[(e.type == "view") & (e.occurred_at >= cut - timedelta(days=30))]
    person = v.customer_id.fillna(v.anonymous_id.map(linked))
    product_category = d["products"].set_index("product_id").category
    category = v.category.fillna(v.product_id.map(product_category))
    per_person = person[person.notna() & (category == CATEGORY)].value_counts()
    return per_person.index[per_person >= 2]


def buyers(d: dict[str, pd.DataFrame], cut: datetime) -> pd.Index:
    """Customers with a paid order holding a skincare line paid in the 90 days before it."""
    o = d["orders"]
    o = o[o.created_at < cut]
    by_time = o.paid_at.notna() & (o.paid_at < cut)
    by_status = o.paid_at.isna() & o.status.isin(PAID_STATUSES)
    paid = o[(by_time | by_status) & o.customer_id.notna()]
    pay_time = paid.paid_at.fillna(paid.created_at)
    recent = paid.loc[pay_time >= cut - timedelta(days=90), ["order_id", "customer_id"]]
    lines = d["order_items"].merge(recent, on="order_id")
    lines = lines.merge(d["products"], on="product_id", how="left")
    return pd.Index(lines.loc[lines.category == CATEGORY, "customer_id"].unique())


def select(d: dict[str, pd.DataFrame]) -> dict:
    p = d["customer_profile"]
    cut = cutoff(pd.Timestamp(p.as_of.max()).date())
    clauses = [
        p.total_spent.ge(200).fillna(False).astype(bool),
        p.province.isin(PROVINCES),
        p.email_reachable.fillna(False).astype(bool),
        p.customer_id.isin(viewers(d, cut)),
        ~p.customer_id.isin(buyers(d, cut)),
    ]
    whole = clauses[0]
    for c in clauses[1:]:
        whole = whole & c
    return {"count": int(whole.sum()), "clauses": [int(c.sum()) for c in clauses]}


def main(home: str, repeats: int = 3) -> None:
    t0 = time.perf_counter()
    d = read(Path(home))
    read_s = time.perf_counter() - t0
    times, out = [], {}
    for _ in range(repeats):
        t1 = time.perf_counter()
        out = select(d)
        times.append(time.perf_counter() - t1)
    compute = statistics.median(times)
    report(
        read_s + times[0],
        out["count"],
        read_seconds=round(read_s, 3),
        compute_seconds=round(compute, 3),
        compute_all=[round(t, 3) for t in times],
        clauses=out["clauses"],
        events=len(d["events"]),
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
