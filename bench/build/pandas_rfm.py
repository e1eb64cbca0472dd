"""The pandas contender of the build benchmark: RFM and lifecycle, as a pandas user writes them.

The canonical tables are read whole (the columns the rules need) from the warehouse with
DuckDB's ``.df()``; everything after that is pandas: filters to the as-of cut-off, anonymous events
linked to members, paid orders
and their net amounts, purchase days, recency, quintile scores by percent rank, each buyer's
main category, the learned lapse thresholds (quantile of the gaps between purchase days per
category and gender, shrunk towards the category and the shop) and the lifecycle state.
The rules are those of ``archer.customers`` (facts, lifecycle, rfm, preferences) with the
default ``[profile]`` settings, so that the answers can be compared customer by customer.

Run as ``build/pandas_rfm.py HOME OUT.parquet AS_OF``: it reports its seconds (reading and computing
apart) on its last line and writes its table, untimed, for the parent to compare.
"""

from __future__ import annotations

import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/: the common package

import numpy as np
import pandas as pd

from common.harness import report
from common.shop import warehouse

PAID_STATUSES = ["paid", "shipped", "completed", "refunded"]
OFFSET = pd.Timedelta(hours=8)  # Asia/Shanghai, no daylight saving
LOYAL_MIN_PURCHASES, LOST_FACTOR = 2, 2.0
LAPSE_QUANTILE, LAPSE_PRIOR_GAPS, LAPSE_MIN_DAYS = 0.9, 50.0, 14.0
WEIGHTS = {"bought": 5.0, "favorite": 3.0, "cart_add": 2.0, "view": 1.0}

COLUMNS = {
    "customers": "customer_id, registered_at, gender",
    "products": "product_id, category",
    "orders": "order_id, customer_id, created_at, paid_at, status, goods_amount, "
    "discount_amount, shipping_fee, paid_amount",
    "order_items": "order_id, product_id",
    "refunds": "order_id, refunded_at, amount",
    "events": "customer_id, anonymous_id, type, occurred_at, product_id, category",
}


def load(home: Path) -> dict[str, pd.DataFrame]:
    with warehouse(home) as con:
        return {t: con.sql(f"select {cols} from {t}").df() for t, cols in COLUMNS.items()}


def rfm_lifecycle(t: dict[str, pd.DataFrame], as_of: date) -> pd.DataFrame:
    """One row per member: the RFM facts and scores, main category, threshold, lifecycle."""
    cut = pd.Timestamp(datetime.combine(as_of + timedelta(days=1), datetime.min.time())) - OFFSET
    as_of_ts = pd.Timestamp(as_of)
    c = t["customers"]
    c = c[c.registered_at.isna() | (c.registered_at < cut)]
    o = t["orders"]
    o = o[o.created_at < cut].copy()
    r = t["refunds"]
    r = r[r.refunded_at < cut]
    e = t["events"]
    e = e[e.occurred_at < cut]
    # A visitor's events before signing in count for the member their device is linked to:
    # an event with both ids links them (several members on one device: the smallest id).
    both = e[e.anonymous_id.notna() & e.customer_id.notna()]
    person = e.anonymous_id.map(both.groupby("anonymous_id").customer_id.min())
    e = e.assign(customer_id=e.customer_id.fillna(person))
    e = e[e.customer_id.notna()]

    # Orders: paid or not, amount, refunds capped at the amount, net, local pay day.
    paid = (o.paid_at.notna() & (o.paid_at < cut)) | (
        o.paid_at.isna() & o.status.isin(PAID_STATUSES)
    )
    amount = o.paid_amount.fillna(
        o.goods_amount.fillna(0) - o.discount_amount.fillna(0) + o.shipping_fee.fillna(0)
    )
    o["amount"] = np.where(paid, amount, 0.0)
    refunded = o.order_id.map(r.groupby("order_id").amount.sum()).fillna(0.0)
    o["net"] = o.amount - np.where(paid, np.minimum(refunded, o.amount), 0.0)
    o["pay_day"] = (o.paid_at.fillna(o.created_at) + OFFSET).dt.normalize().where(paid)
    o = o[o.customer_id.notna()]
    per = o.groupby("customer_id").agg(
        n_orders=("order_id", "size"),
        purchase_days=("pay_day", "nunique"),
        last_purchase_day=("pay_day", "max"),
        net_spent=("net", "sum"),
    )
    carts = e[e.type == "cart_add"].groupby("customer_id").size().rename("cart_adds")
    p = c[["customer_id", "gender"]].merge(per, on="customer_id", how="left")
    p = p.merge(carts, on="customer_id", how="left")
    p[["n_orders", "purchase_days", "cart_adds"]] = (
        p[["n_orders", "purchase_days", "cart_adds"]].fillna(0).astype("int64")
    )
    p["net_spent"] = p.net_spent.fillna(0.0)
    p["recency_days"] = (as_of_ts - p.last_purchase_day).dt.days.astype("Int64")

    # Quintile scores among buyers: 1 + floor(5 x percent rank), ties sharing the lower rank.
    b = p.purchase_days > 0
    for col, key in (("r_score", -p.recency_days), ("f_score", p.purchase_days)):
        p.loc[b, col] = _score(key[b].astype("float64"))
    p.loc[b, "m_score"] = _score(p.net_spent[b])

    # Main category: most bought lines, then highest score, then alphabetical.
    paid_o = o[paid.loc[o.index]]
    lines = t["order_items"].merge(paid_o[["order_id", "customer_id"]], on="order_id")
    lines = lines.merge(t["products"], on="product_id", how="left")
    lines = lines[lines.category.notna()].assign(kind="bought")
    seen = e[e.type.isin(["favorite", "cart_add", "view"])]
    prod_cat = seen.product_id.map(t["products"].set_index("product_id").category)
    seen = seen.assign(category=seen.category.fillna(prod_cat), kind=seen.type)
    seen = seen[seen.category.notna()]
    u = pd.concat(
        [lines[["customer_id", "category", "kind"]], seen[["customer_id", "category", "kind"]]]
    )
    counts = u.groupby(["customer_id", "category", "kind"]).size().unstack("kind", fill_value=0)
    counts = counts.reindex(columns=list(WEIGHTS), fill_value=0)
    counts["score"] = sum(counts[k] * w for k, w in WEIGHTS.items())
    counts = counts[counts.bought > 0].reset_index()
    counts = counts.sort_values(
        ["customer_id", "bought", "score", "category"], ascending=[True, False, False, True]
    )
    main = counts.drop_duplicates("customer_id").set_index("customer_id").category
    p["main_category"] = p.customer_id.map(main)
    p["gender_cell"] = p.gender.where(p.gender.isin(["f", "m"]), "unknown")

    # Learned lapse thresholds from the gaps between consecutive purchase days.
    days = (
        paid_o[["customer_id", "pay_day"]].drop_duplicates().sort_values(["customer_id", "pay_day"])
    )
    days["gap"] = days.groupby("customer_id").pay_day.diff().dt.days
    gaps = days.dropna(subset=["gap"]).merge(
        p[["customer_id", "main_category", "gender_cell"]], on="customer_id"
    )
    shop_n, shop_q = _quantile(gaps.gap)
    cat = gaps.groupby("main_category").gap.apply(_quantile).apply(pd.Series)
    cat.columns = ["n", "q"]
    cat["t"] = _shrink(cat.n, cat.q, shop_q)
    cell = gaps.groupby(["main_category", "gender_cell"]).gap.apply(_quantile).apply(pd.Series)
    cell.columns = ["n", "q"]
    cell = cell.reset_index().merge(
        cat.t.rename("cat_t"), left_on="main_category", right_index=True
    )
    cell["t"] = _shrink(cell.n, cell.q, cell.cat_t)
    p = p.merge(
        cell[["main_category", "gender_cell", "t"]], on=["main_category", "gender_cell"], how="left"
    )
    p["lapse_threshold_days"] = p.t.fillna(p.main_category.map(cat.t)).fillna(
        max(shop_q, LAPSE_MIN_DAYS)
    )

    since = p.recency_days.astype("float64")
    thr = p.lapse_threshold_days
    p["lifecycle"] = np.select(
        [
            ~b & (p.n_orders > 0),
            ~b & (p.cart_adds > 0),
            ~b,
            since > thr * LOST_FACTOR,
            since > thr,
            p.purchase_days >= LOYAL_MIN_PURCHASES,
        ],
        [
            "ordered_unpaid",
            "cart_no_order",
            "registered_no_cart",
            "lost",
            "lapsing",
            "repeat_buyer",
        ],
        default="one_time_buyer",
    )
    keep = ["customer_id", "recency_days", "purchase_days", "net_spent", "r_score", "f_score"]
    return p[[*keep, "m_score", "main_category", "lapse_threshold_days", "lifecycle"]]


def _score(key: pd.Series) -> np.ndarray:
    n = len(key)
    pr = (key.rank(method="min") - 1) / (n - 1) if n > 1 else key * 0.0
    return np.minimum(5, 1 + np.floor(pr * 5)).astype("int64")


def _quantile(g: pd.Series) -> tuple[int, float]:
    """The smallest gap with at least the lapse quantile of the gaps at or below it."""
    s = np.sort(g.to_numpy())
    k = int(np.ceil(len(s) * LAPSE_QUANTILE))
    return len(s), float(s[k - 1])


def _shrink(n: pd.Series, own: pd.Series, prior) -> pd.Series:
    return np.maximum((n * own + LAPSE_PRIOR_GAPS * prior) / (n + LAPSE_PRIOR_GAPS), LAPSE_MIN_DAYS)


def main(home: Path, out: Path, as_of: date) -> None:
    t0 = time.perf_counter()
    tables = load(home)
    t1 = time.perf_counter()
    result = rfm_lifecycle(tables, as_of)
    t2 = time.perf_counter()
    result.to_parquet(out, index=False)
    report(t2 - t0, len(result), read_seconds=round(t1 - t0, 3), compute_seconds=round(t2 - t1, 3))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), date.fromisoformat(sys.argv[3]))
