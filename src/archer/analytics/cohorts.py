"""Monthly acquisition cohorts: how many of a month's new customers buy again, and for how much.

A customer's **cohort** is the local month of their first paid order (``by="first_purchase"``,
the default) or of their registration (``by="registration"``). For each cohort and each month
since acquisition (0 = the cohort month itself, up to the as-of month):

* ``cohort_size`` — customers in the cohort;
* ``active`` — cohort customers with a paid order paid in that month;
* ``retention`` — active ÷ cohort_size (month 0 of a first-purchase cohort is 1 by definition);
* ``orders`` and ``net_revenue`` — the cohort's paid orders in that month and their net
  (paid − refunded up to the as-of day);
* ``revenue_per_customer`` — net_revenue ÷ cohort_size, and ``cumulative_revenue_per_customer``
  its running total since acquisition (the cohort's value curve);
* ``partial`` — the month is the as-of month and the as-of day is not its last day.

Payments come from ``Snapshot.paid_orders`` (guest orders have no customer and no cohort).
A registration cohort's purchases made before registering count in month 0. Every month from
0 to the as-of month appears, with zeros where nobody bought.
"""

from __future__ import annotations

from datetime import timedelta

import ibis
import ibis.expr.types as ir
import pandas as pd

from archer.analytics.common import month_number, period_start, python_period_key, ratio
from archer.facts import Snapshot

COHORT_BASES = ("first_purchase", "registration")


def _acquisitions(snap: Snapshot, by: str, payments: ir.Table) -> ir.Table:
    """``customer_id`` → ``cohort`` (month key) by first purchase or by registration."""
    if by == "first_purchase":
        return payments.group_by("customer_id").aggregate(cohort=payments.month.min())
    c = snap.customers
    c = c.filter(c.registered_at.notnull())
    return c.select("customer_id", cohort=month_number(snap.local_day(c.registered_at)))


def cohorts(snap: Snapshot, by: str = "first_purchase") -> ir.Table:
    """One row per (cohort, months since acquisition) with size, activity and revenue."""
    if by not in COHORT_BASES:
        raise ValueError(f"unknown cohort basis {by!r}: expected one of {', '.join(COHORT_BASES)}")
    po = snap.paid_orders()
    payments = po.select("customer_id", "net", month=month_number(po.pay_day))
    acq = _acquisitions(snap, by, payments)
    sizes = acq.group_by("cohort").aggregate(cohort_size=acq.count())

    j = payments.join(acq, "customer_id")
    j = j.mutate(months_since=ibis.greatest(j.month - j.cohort, 0))
    act = j.group_by("cohort", "months_since").aggregate(
        active=j.customer_id.nunique(), orders=j.count(), net_revenue=j.net.sum().round(2)
    )

    last = python_period_key(snap.as_of, "month")
    grid = sizes.select(
        "cohort",
        "cohort_size",
        months_since=ibis.range(0, ibis.literal(last) - sizes.cohort + 1).unnest().cast("int64"),
    )
    g = grid.left_join(act, ["cohort", "months_since"])
    month_ends = (snap.as_of + timedelta(days=1)).month != snap.as_of.month
    rows = g.select(
        cohort=period_start(g.cohort, "month"),
        months_since=g.months_since,
        month=period_start(g.cohort + g.months_since, "month"),
        cohort_size=g.cohort_size.cast("int64"),
        active=g.active.fill_null(0).cast("int64"),
        retention=ratio(g.active.fill_null(0), g.cohort_size),
        orders=g.orders.fill_null(0).cast("int64"),
        net_revenue=g.net_revenue.fill_null(0.0),
        revenue_per_customer=ratio(g.net_revenue.fill_null(0.0), g.cohort_size),
        partial=(g.cohort + g.months_since == last) & ibis.literal(not month_ends),
    )
    cum = rows.revenue_per_customer.cumsum(group_by="cohort", order_by="months_since")
    rows = rows.mutate(cumulative_revenue_per_customer=cum)
    rows = rows.relocate("partial", after="cumulative_revenue_per_customer")
    return rows.order_by("cohort", "months_since")


def retention_matrix(
    rows: pd.DataFrame, value: str = "retention", months: int = 12
) -> pd.DataFrame:
    """Cohorts down, months since acquisition across (0 … ``months``), for display."""
    df = rows[rows.months_since <= months]
    m = df.pivot(index="cohort", columns="months_since", values=value)
    sizes = df.groupby("cohort").cohort_size.first()
    m.insert(0, "cohort_size", sizes)
    return m
