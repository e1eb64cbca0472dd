"""RFM: recency, frequency and monetary value, their 1–5 scores, the named segment and a
value tier.

* ``recency_days`` — days from the last purchase day to the as-of day;
* ``frequency`` — purchase days (several paid orders on one day are one purchase);
* ``monetary`` — paid minus refunded;
* scores are given among buyers only, by quintile of the value's **percent rank**:
  ``score = min(5, 1 + floor(5 × percent_rank))``, where ``percent_rank = (rank − 1) / (n − 1)``
  and ``rank`` counts the buyers with a strictly worse value. Ties therefore always share a
  score, and the rule does not depend on row order. A shorter recency is better;
* the segment comes from the recency score R and ``FM = ceil((F + M) / 2)`` through
  :data:`SEGMENT_MAP`; the value tier from the monetary score (:data:`VALUE_TIERS`).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Needs attention",
    "About to sleep",
    "At risk",
    "Can't lose",
    "Hibernating",
    "Lost",
)

# R score → segment for FM = 1, 2, 3, 4, 5.
SEGMENT_MAP: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Champions"),
    3: ("About to sleep", "About to sleep", "Needs attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"),
    1: ("Lost", "Lost", "At risk", "At risk", "Can't lose"),
}

# M score → value tier; campaigns size coupons by it.
VALUE_TIERS: dict[int, str] = {5: "top", 4: "high", 3: "medium", 2: "medium", 1: "low"}


def _score(value: ir.NumericValue, higher_is_better: bool) -> ir.IntegerValue:
    key = value if higher_is_better else -value
    pr = ibis.percent_rank().over(ibis.window(order_by=key))
    return ibis.least(5, 1 + (pr * 5).floor().cast("int64")).cast("int64")


def rfm(buyers: ir.Table) -> ir.Table:
    """Scores, segment and tier for ``buyers`` (``customer_id, recency_days, frequency,
    monetary``, one row per buyer); returns ``customer_id`` and the five new columns."""
    b = buyers
    scored = b.select(
        "customer_id",
        r_score=_score(b.recency_days, higher_is_better=False),
        f_score=_score(b.frequency, higher_is_better=True),
        m_score=_score(b.monetary, higher_is_better=True),
    )
    fm = ((scored.f_score + scored.m_score + 1) / 2).floor().cast("int64")
    cases = [
        ((scored.r_score == r) & (fm == i + 1), name)
        for r, names in SEGMENT_MAP.items()
        for i, name in enumerate(names)
    ]
    tier = ibis.cases(*((scored.m_score == k, v) for k, v in VALUE_TIERS.items()))
    return scored.mutate(
        rfm_score=scored.r_score * 100 + scored.f_score * 10 + scored.m_score,
        rfm_segment=ibis.cases(*cases),
        value_tier=tier,
    )
