"""Frequency / recency / T summaries from a transaction log, computed in the engine with Ibis.

The summary follows Fader, Hardie & Lee (2005): per customer, ``frequency`` is the number of
repeat transactions (distinct purchase dates after the first, so several purchases on one day
count once), ``recency`` the time from the first to the last purchase and ``T`` the time from the
first purchase to the end of the calibration period, in days or weeks (weeks = days / 7).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

_DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}


def rfm_summary(
    transactions: ir.Table,
    *,
    customer_col: str,
    date_col: str,
    calibration_end: date,
    observation_start: date | None = None,
    unit: Literal["day", "week"] = "week",
) -> ir.Table:
    """Per customer ``first_purchase``, ``frequency``, ``recency`` and ``T`` in ``unit``.

    Only transactions dated on or before ``calibration_end`` (and on or after
    ``observation_start`` when given) count. The result is an unexecuted Ibis expression with
    columns ``customer_col, first_purchase, frequency, recency, T``.
    """
    if unit not in _DAYS_PER_UNIT:
        raise ValueError(f"unit must be 'day' or 'week', not {unit!r}")
    if isinstance(calibration_end, datetime):
        calibration_end = calibration_end.date()
    if isinstance(observation_start, datetime):
        observation_start = observation_start.date()
    per_unit = _DAYS_PER_UNIT[unit]

    day = transactions[date_col].cast("date")
    t = transactions.select(customer=transactions[customer_col], day=day)
    t = t.filter(t.day <= ibis.literal(calibration_end, type="date"))
    if observation_start is not None:
        t = t.filter(t.day >= ibis.literal(observation_start, type="date"))
    t = t.distinct()
    per_customer = t.group_by("customer").aggregate(
        first_purchase=t.day.min(), last_purchase=t.day.max(), n_days=t.day.count()
    )
    end = ibis.literal(calibration_end, type="date")
    return per_customer.select(
        per_customer.customer.name(customer_col),
        per_customer.first_purchase,
        frequency=(per_customer.n_days - 1).cast("int64"),
        recency=per_customer.last_purchase.delta(per_customer.first_purchase, unit="day").cast(
            "float64"
        )
        / per_unit,
        T=end.delta(per_customer.first_purchase, unit="day").cast("float64") / per_unit,
    )


def patterns(summary: ir.Table) -> ir.Table:
    """Distinct ``(frequency, recency, T)`` patterns with their customer count in ``weights``.

    A model fitted on the patterns with these weights has the same likelihood as one fitted on
    every customer, at the cost of the number of patterns.
    """
    return summary.group_by(["frequency", "recency", "T"]).aggregate(
        weights=summary.count().cast("int64")
    )
