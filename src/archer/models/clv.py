"""Customer lifetime value and churn-risk bands from a fitted purchase model and a spend model.

The lifetime value over a horizon of H periods of length ``period`` (in the purchase model's time
unit) is the standard discounted sum

    CLV = margin * E(spend) * sum_{i=1}^{H} (E[Y(i period)] - E[Y((i-1) period)]) / (1 + d)^i,

where E[Y(t)] is the purchase model's conditional expected number of purchases in the next t
(BG/NBD, MBG/NBD, Pareto/NBD; for BG/BB ``period`` counts transaction opportunities), d the
discount rate per period and E(spend) the Gamma-Gamma conditional expected spend per purchase
(or any expected spend per customer). Purchases in period i are discounted to the start as if
they fell at its end, as lifetimes and Fader, Hardie & Lee's spreadsheets do.

Churn risk bands p(alive): ``high`` below ``high`` (default 0.3), ``medium`` below ``medium``
(default 0.7), ``low`` otherwise. The thresholds are parameters: a shop whose customers buy
rarely may want lower ones.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

DAYS_PER = {
    "day": 1.0,
    "week": 7.0,
    "month": 365.25 / 12.0,
    "quarter": 365.25 / 4.0,
    "year": 365.25,
}
CHURN_HIGH = 0.3
CHURN_MEDIUM = 0.7


def period_length(
    unit: Literal["day", "week"], per: Literal["week", "month", "quarter", "year"]
) -> float:
    """How many model time ``unit`` s make one CLV period: ``period_length("week", "month")``
    is 4.348 (weeks in an average month)."""
    return DAYS_PER[per] / DAYS_PER[unit]


def period_rate(annual_rate: float, periods_per_year: int = 12) -> float:
    """The per-period discount rate equivalent to ``annual_rate``: (1 + a)^(1/k) - 1."""
    if annual_rate <= -1.0:
        raise ValueError("annual_rate must be > -1")
    return (1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0


def discounted_expected_purchases(
    model,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    horizon: int,
    period: float,
    discount_rate: float,
) -> np.ndarray:
    """sum_{i=1}^{H} (E[Y(i period)] - E[Y((i-1) period)]) / (1 + d)^i, per customer."""
    if horizon < 0 or period <= 0:
        raise ValueError("need horizon >= 0 and period > 0")
    if discount_rate <= -1.0:
        raise ValueError("discount_rate must be > -1")
    shape = np.broadcast_shapes(np.shape(frequency), np.shape(recency), np.shape(T))
    total = np.zeros(shape)
    previous = np.zeros(shape)
    for i in range(1, horizon + 1):
        current = model.conditional_expected_purchases(i * period, frequency, recency, T)
        total = total + (current - previous) / (1.0 + discount_rate) ** i
        previous = current
    return total


def lifetime_value(
    model,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    expected_spend: ArrayLike | None = None,
    spend_model=None,
    monetary_value: ArrayLike | None = None,
    horizon: int = 12,
    period: float,
    discount_rate: float = 0.01,
    margin: float = 1.0,
) -> np.ndarray:
    """Discounted gross profit each customer brings in the next ``horizon`` periods.

    Give either ``expected_spend`` (per purchase, per customer or one number) or a fitted
    ``spend_model`` (:class:`archer.models.GammaGamma`) with the customers' ``monetary_value``;
    ``margin`` is the shop's gross margin (1.0 gives revenue); ``discount_rate`` is per period
    (see :func:`period_rate` to convert an annual rate); ``period`` is the period's length in the
    purchase model's time unit (see :func:`period_length`).
    """
    if (expected_spend is None) == (spend_model is None):
        raise ValueError("give exactly one of expected_spend and spend_model")
    if spend_model is not None:
        if monetary_value is None:
            raise ValueError("spend_model needs the customers' monetary_value")
        expected_spend = spend_model.conditional_expected_spend(frequency, monetary_value)
    purchases = discounted_expected_purchases(
        model,
        frequency,
        recency,
        T,
        horizon=horizon,
        period=period,
        discount_rate=discount_rate,
    )
    return margin * np.asarray(expected_spend, dtype=float) * purchases


def churn_risk(
    p_alive: ArrayLike, *, high: float = CHURN_HIGH, medium: float = CHURN_MEDIUM
) -> np.ndarray:
    """``"high"`` where p(alive) < ``high``, ``"medium"`` where < ``medium``, else ``"low"``."""
    if not 0.0 <= high <= medium <= 1.0:
        raise ValueError("need 0 <= high <= medium <= 1")
    p = np.asarray(p_alive, dtype=float)
    if np.any(np.isnan(p)):
        raise ValueError("p_alive has NaN")
    return np.where(p < high, "high", np.where(p < medium, "medium", "low"))
