"""The shop's KPIs over time, by local day, week (Monday to Sunday) or month.

For each period from the first one with a registration or an order up to the as-of period
(every period listed, zeros where nothing happened; ``partial`` marks an as-of period that the
as-of day does not close):

* ``registrations`` — customers whose registration falls in the period;
* ``new_buyers`` — customers whose first paid order was paid in the period;
* ``active_buyers`` — customers with a paid order paid in the period;
* ``repeat_buyers`` / ``repeat_rate`` — active buyers whose purchase in the period is not their
  first purchase day (they bought on an earlier day, in this period or before), over active
  buyers;
* ``orders`` — paid orders paid in the period, guest orders included;
* ``gross_sales`` — their amount; ``refunded`` — what was refunded on them up to the as-of day;
  ``net_sales`` = gross − refunded (refunds count against the period of the sale);
* ``aov`` — average order value, gross_sales ÷ orders;
* ``refund_rate`` — refunded ÷ gross_sales.

"Paid", "amount", "refunded" and "net" are those of ``Snapshot.order_facts``; buyers are known
customers (``Snapshot.paid_orders``).
"""

from __future__ import annotations

from datetime import timedelta

import ibis
import ibis.expr.types as ir

from archer.analytics.common import check_grain, period_key, period_start, python_period_key, ratio
from archer.facts import Snapshot


def _period_closed(snap: Snapshot, grain: str) -> bool:
    """Whether the as-of day is the last day of its period."""
    nxt = snap.as_of + timedelta(days=1)
    return python_period_key(nxt, grain) != python_period_key(snap.as_of, grain)


def kpis(snap: Snapshot, grain: str = "month") -> ir.Table:
    """One row per period with the KPIs listed in the module docstring."""
    check_grain(grain)
    c = snap.customers
    c = c.filter(c.registered_at.notnull())
    regs = c.select(p=period_key(snap.local_day(c.registered_at), grain))
    regs = regs.group_by("p").aggregate(registrations=regs.count())

    f = snap.order_facts()
    f = f.filter(f.is_paid).mutate(p=period_key(f.pay_day, grain))
    sales = f.group_by("p").aggregate(
        orders=f.count(), gross_sales=f.amount.sum().round(2), refunded=f.refunded.sum().round(2)
    )

    po = snap.paid_orders()
    po = po.mutate(p=period_key(po.pay_day, grain))
    first = po.group_by("customer_id").aggregate(first_day=po.pay_day.min())
    per = po.group_by("customer_id", "p").aggregate(last_day=po.pay_day.max())
    per = per.join(first, "customer_id")
    per = per.mutate(
        new=period_key(per.first_day, grain) == per.p, repeat=per.first_day < per.last_day
    )
    buyers = per.group_by("p").aggregate(
        active_buyers=per.count(),
        new_buyers=per.count(where=per.new),
        repeat_buyers=per.count(where=per.repeat),
    )

    last = python_period_key(snap.as_of, grain)
    starts = regs.select("p").union(sales.select("p"))
    starts = starts.filter(starts.p <= last)
    span = starts.aggregate(first=starts.p.min())
    grid = span.filter(span.first.notnull()).select(
        p=ibis.range(span.first, ibis.literal(last) + 1).unnest().cast("int64")
    )
    g = grid.left_join(regs, "p").left_join(sales, "p").left_join(buyers, "p")

    def count(col: ir.IntegerValue) -> ir.IntegerValue:
        return col.fill_null(0).cast("int64")

    gross = g.gross_sales.fill_null(0.0)
    refunded = g.refunded.fill_null(0.0)
    out = g.select(
        period=period_start(g.p, grain),
        registrations=count(g.registrations),
        new_buyers=count(g.new_buyers),
        active_buyers=count(g.active_buyers),
        repeat_buyers=count(g.repeat_buyers),
        repeat_rate=ratio(count(g.repeat_buyers), count(g.active_buyers)),
        orders=count(g.orders),
        gross_sales=gross,
        refunded=refunded,
        net_sales=(gross - refunded).round(2),
        aov=ratio(gross, count(g.orders)),
        refund_rate=ratio(refunded, gross),
        partial=(g.p == last) & ibis.literal(not _period_closed(snap, grain)),
    )
    return out.order_by("period")
