"""Basket affinities: which categories (or products) are bought together, and what to offer next.

An **item** is a line's category (``level="category"``) or product (``level="product"``) on a
paid order of a known customer (``Snapshot.paid_lines``); lines without a category are left out
at category level. A **transaction** is:

* ``scope="order"`` — one paid order: A and B are bought together when both are on it;
* ``scope="customer"`` — one buying customer: A and B are bought together when the customer paid
  for A and for B on local days at most ``window_days`` apart (the same order included).

With N transactions, n(A) those with A and n(A,B) those with A and B together, each directed rule
A → B has ``support`` = n(A,B)/N, ``confidence`` = n(A,B)/n(A) and ``lift`` = N·n(A,B)/(n(A)·n(B))
(> 1: bought together more often than chance). Rules with support below ``min_support`` are
dropped. Both directions are listed; support and lift are the same for A → B and B → A.

**Recommendations** give each buying customer the ``k`` categories they have never bought whose
best rule from a category they did buy has the highest lift (then confidence, then name), among
rules with lift above ``min_lift``; ``because`` names the category that rule starts from.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from archer.analytics.common import day_number, ratio
from archer.facts import Snapshot

LEVELS = ("category", "product")
SCOPES = ("order", "customer")


def _check(level: str, scope: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: expected one of {', '.join(LEVELS)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: expected one of {', '.join(SCOPES)}")


def bought_items(snap: Snapshot, level: str = "category") -> ir.Table:
    """Distinct (order_id, customer_id, item, day number) of paid lines."""
    _check(level, "order")
    lines = snap.paid_lines()
    item = lines.category if level == "category" else lines.product_id
    lines = lines.filter(item.notnull() & (item != ""))
    return lines.select("order_id", "customer_id", item=item, day=day_number(lines.day)).distinct()


def _co_occurrences(items: ir.Table, scope: str, window_days: int) -> tuple[ir.Table, ir.Table]:
    """Transactions per item and per ordered pair of distinct items."""
    tx_col = "order_id" if scope == "order" else "customer_id"
    tx = items.select(tx=items[tx_col], item=items.item).distinct()
    singles = tx.group_by("item").aggregate(n=tx.count())
    if scope == "order":
        a, b = tx, tx.view()
        j = a.join(b, (a.tx == b.tx) & (a.item != b.item))
        pairs = j.select(tx=a.tx, a=a.item, b=b.item)
    else:
        days = items.select(tx=items.customer_id, item=items.item, day=items.day).distinct()
        a, b = days, days.view()
        near = (a.day - b.day).abs() <= window_days
        j = a.join(b, (a.tx == b.tx) & (a.item != b.item) & near)
        pairs = j.select(tx=a.tx, a=a.item, b=b.item).distinct()
    counted = pairs.group_by("a", "b").aggregate(n_ab=pairs.count())
    return singles, counted


def affinities(
    snap: Snapshot,
    level: str = "category",
    scope: str = "order",
    window_days: int = 30,
    min_support: float = 0.001,
) -> ir.Table:
    """Directed rules A → B with pair count, support, confidence and lift, strongest first."""
    _check(level, scope)
    if window_days < 0:
        raise ValueError(f"window_days must be 0 or more, got {window_days}")
    items = bought_items(snap, level)
    singles, pairs = _co_occurrences(items, scope, window_days)
    tx_col = items.order_id if scope == "order" else items.customer_id
    total = items.aggregate(transactions=tx_col.nunique())
    sa = singles.select(_a="item", n_a="n")
    sb = singles.select(_b="item", n_b="n")
    j = pairs.join(sa, pairs.a == sa._a).join(sb, pairs.b == sb._b).cross_join(total)
    n = j.transactions.cast("float64")
    rules = j.select(
        antecedent=j.a,
        consequent=j.b,
        pair_count=j.n_ab.cast("int64"),
        antecedent_count=j.n_a.cast("int64"),
        consequent_count=j.n_b.cast("int64"),
        transactions=j.transactions.cast("int64"),
        support=ratio(j.n_ab, j.transactions),
        confidence=ratio(j.n_ab, j.n_a),
        lift=ratio(j.n_ab.cast("float64") * n, j.n_a.cast("float64") * j.n_b.cast("float64")),
    )
    rules = rules.filter(rules.support >= min_support)
    return rules.order_by(ibis.desc("lift"), ibis.desc("pair_count"), "antecedent", "consequent")


def recommendations(
    snap: Snapshot,
    k: int = 3,
    scope: str = "customer",
    window_days: int = 30,
    min_support: float = 0.001,
    min_lift: float = 1.0,
) -> ir.Table:
    """Top ``k`` categories per buying customer that they have not bought yet (see module doc)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rules = affinities(snap, "category", scope, window_days, min_support)
    rules = rules.filter(rules.lift > min_lift)
    bought = bought_items(snap, "category")
    owned = bought.select("customer_id", "item").distinct()
    cand = owned.join(rules, owned.item == rules.antecedent).select(
        customer_id=owned.customer_id,
        category=rules.consequent,
        because=rules.antecedent,
        lift=rules.lift,
        confidence=rules.confidence,
    )
    have = owned.select(_cid="customer_id", _item="item")
    cand = cand.anti_join(have, (cand.customer_id == have._cid) & (cand.category == have._item))
    order = [ibis.desc("lift"), ibis.desc("confidence"), "because"]
    best = cand.mutate(
        _r=ibis.row_number().over(group_by=["customer_id", "category"], order_by=order)
    )
    best = best.filter(best._r == 0).drop("_r")
    ranked = best.mutate(
        rank=ibis.row_number().over(
            group_by="customer_id",
            order_by=[ibis.desc("lift"), ibis.desc("confidence"), "category"],
        )
        + 1
    )
    ranked = ranked.filter(ranked["rank"] <= k)
    return ranked.select(
        "customer_id", ranked["rank"].cast("int64"), "category", "because", "lift", "confidence"
    ).order_by("customer_id", "rank")
