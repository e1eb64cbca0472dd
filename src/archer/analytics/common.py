"""Small pieces the shop-level views share: safe ratios, calendar periods as integers, people.

Periods are integer keys so they join, group and range the same way on every engine: a local
day is its number of days since 1970-01-01, a week (Monday to Sunday) is ``(day + 3) // 7``
(1970-01-01 was a Thursday) and a month is ``year * 12 + month - 1``.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from archer.facts import Snapshot

GRAINS = ("day", "week", "month")
EPOCH = date(1970, 1, 1)


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """``num / den`` as a float, or null when ``den`` is zero."""
    return num.cast("float64") / den.cast("float64").nullif(0.0)


def day_number(d: ir.DateValue) -> ir.IntegerValue:
    return d.delta(ibis.literal(EPOCH, type="date"), unit="day").cast("int64")


def month_number(d: ir.DateValue) -> ir.IntegerValue:
    return d.year().cast("int64") * 12 + d.month().cast("int64") - 1


def period_key(d: ir.DateValue, grain: str) -> ir.IntegerValue:
    """The integer key of the day/week/month that local day ``d`` falls in."""
    check_grain(grain)
    if grain == "month":
        return month_number(d)
    n = day_number(d)
    return n if grain == "day" else (n + 3) // 7


def period_start(key: ir.IntegerValue, grain: str) -> ir.DateValue:
    """The first day of the period with integer ``key`` (inverse of :func:`period_key`)."""
    check_grain(grain)
    if grain == "month":
        return ibis.date(key // 12, key % 12 + 1, 1)
    days = key if grain == "day" else key * 7 - 3
    return ibis.literal(EPOCH, type="date") + days.as_interval("D")


def python_period_key(d: date, grain: str) -> int:
    """:func:`period_key` for a Python date (the as-of day's period)."""
    check_grain(grain)
    if grain == "month":
        return d.year * 12 + d.month - 1
    n = (d - EPOCH).days
    return n if grain == "day" else (n + 3) // 7


def check_grain(grain: str) -> None:
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}: expected one of {', '.join(GRAINS)}")


def month_label(key: ir.IntegerValue) -> ir.StringValue:
    """``2025-03`` for month key ``2025 * 12 + 2``."""
    year = (key // 12).cast("string")
    month = (key % 12 + 1).cast("string").lpad(2, "0")
    return year.concat("-", month)


def people(snap: Snapshot, events: ir.Table) -> ir.Table:
    """``events`` with ``person`` and ``anonymous``: see :meth:`Snapshot.people`."""
    return snap.people(events)
