"""Frequency / recency / T summaries from a transaction log, computed in the engine with Ibis.

The summary follows Fader, Hardie & Lee (2005): per customer, ``frequency`` is the number of
repeat transactions (distinct purchase dates after the first, so several purchases on one day
count once), ``recency`` the time from the first to the last purchase and ``T`` the time from the
first purchase to the end of the calibration period, in days or weeks (weeks = days / 7).
``monetary_value`` is the mean value of the repeat transactions (amounts of one day summed, the
first day left out, 0 without repeat purchases), the input of the Gamma-Gamma model.
:func:`calibration_holdout_summary` adds what each customer did in the holdout period after it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import ibis
import ibis.expr.types as ir

_DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}


def _as_date(d: date | datetime | None) -> date | None:
    return d.date() if isinstance(d, datetime) else d


def _daily(
    transactions: ir.Table, customer_col: str, date_col: str, amount_col: str | None
) -> ir.Table:
    """One row per customer and purchase day (with the day's summed amount)."""
    day = transactions[date_col].cast("date")
    if amount_col is None:
        return transactions.select(customer=transactions[customer_col], day=day).distinct()
    t = transactions.select(
        customer=transactions[customer_col],
        day=day,
        amount=transactions[amount_col].cast("float64"),
    )
    return t.group_by(["customer", "day"]).aggregate(amount=t.amount.sum())


def rfm_summary(
    transactions: ir.Table,
    *,
    customer_col: str,
    date_col: str,
    calibration_end: date,
    observation_start: date | None = None,
    unit: Literal["day", "week"] = "week",
    amount_col: str | None = None,
) -> ir.Table:
    """Per customer ``first_purchase``, ``frequency``, ``recency`` and ``T`` in ``unit``.

    Only transactions dated on or before ``calibration_end`` (and on or after
    ``observation_start`` when given) count. The result is an unexecuted Ibis expression with
    columns ``customer_col, first_purchase, frequency, recency, T``, and ``monetary_value``
    when ``amount_col`` is given.
    """
    if unit not in _DAYS_PER_UNIT:
        raise ValueError(f"unit must be 'day' or 'week', not {unit!r}")
    calibration_end = _as_date(calibration_end)
    observation_start = _as_date(observation_start)
    per_unit = _DAYS_PER_UNIT[unit]

    t = _daily(transactions, customer_col, date_col, amount_col)
    t = t.filter(t.day <= ibis.literal(calibration_end, type="date"))
    if observation_start is not None:
        t = t.filter(t.day >= ibis.literal(observation_start, type="date"))
    if amount_col is not None:
        t = t.mutate(first_day=t.day.min().over(group_by=t.customer))
    metrics = {
        "first_purchase": t.day.min(),
        "last_purchase": t.day.max(),
        "n_days": t.day.count(),
    }
    if amount_col is not None:
        metrics["repeat_amount"] = (t.day > t.first_day).ifelse(t.amount, 0.0).sum()
    per_customer = t.group_by("customer").aggregate(**metrics)
    end = ibis.literal(calibration_end, type="date")
    frequency = (per_customer.n_days - 1).cast("int64")
    columns = {
        "frequency": frequency,
        "recency": per_customer.last_purchase.delta(per_customer.first_purchase, unit="day").cast(
            "float64"
        )
        / per_unit,
        "T": end.delta(per_customer.first_purchase, unit="day").cast("float64") / per_unit,
    }
    if amount_col is not None:
        columns["monetary_value"] = (frequency > 0).ifelse(
            per_customer.repeat_amount / frequency.cast("float64"), 0.0
        )
    return per_customer.select(
        per_customer.customer.name(customer_col), per_customer.first_purchase, **columns
    )


def calibration_holdout_summary(
    transactions: ir.Table,
    *,
    customer_col: str,
    date_col: str,
    calibration_end: date,
    observation_end: date,
    observation_start: date | None = None,
    unit: Literal["day", "week"] = "week",
    amount_col: str | None = None,
) -> ir.Table:
    """The calibration summary of :func:`rfm_summary` plus the holdout after it.

    For every customer whose first purchase falls in the calibration period:
    ``frequency_holdout`` (distinct purchase days in ``(calibration_end, observation_end]``),
    ``duration_holdout`` (that period's length in ``unit``, the same for everyone) and, with
    ``amount_col``, ``monetary_value_holdout`` (mean value of the holdout purchase days, 0 when
    there are none). Customers first seen in the holdout are not in the result.
    """
    calibration_end, observation_end = _as_date(calibration_end), _as_date(observation_end)
    if observation_end <= calibration_end:
        raise ValueError("observation_end must be after calibration_end")
    calibration = rfm_summary(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        calibration_end=calibration_end,
        observation_start=observation_start,
        unit=unit,
        amount_col=amount_col,
    )
    d = _daily(transactions, customer_col, date_col, amount_col)
    d = d.filter(
        (d.day > ibis.literal(calibration_end, type="date"))
        & (d.day <= ibis.literal(observation_end, type="date"))
    )
    metrics = {"n_holdout": d.day.count()}
    if amount_col is not None:
        metrics["amount_holdout"] = d.amount.sum()
    holdout = d.group_by("customer").aggregate(**metrics)
    joined = calibration.left_join(holdout, calibration[customer_col] == holdout.customer)
    n = joined.n_holdout.fill_null(0).cast("int64")
    columns = {
        "frequency_holdout": n,
        "duration_holdout": ibis.literal(
            (observation_end - calibration_end).days / _DAYS_PER_UNIT[unit], type="float64"
        ),
    }
    if amount_col is not None:
        columns["monetary_value_holdout"] = (n > 0).ifelse(
            joined.amount_holdout / n.cast("float64"), 0.0
        )
    return joined.select(*calibration.columns, **columns)


def patterns(summary: ir.Table) -> ir.Table:
    """Distinct ``(frequency, recency, T)`` patterns with their customer count in ``weights``.

    A model fitted on the patterns with these weights has the same likelihood as one fitted on
    every customer, at the cost of the number of patterns.
    """
    return summary.group_by(["frequency", "recency", "T"]).aggregate(
        weights=summary.count().cast("int64")
    )
