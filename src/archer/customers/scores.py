"""Model scores in the profile: p(alive), expected purchases, expected value and churn risk.

The build fits the shop's purchase model and its spend model on the paid orders up to the
as-of day (time in days, several orders on one day one purchase, amounts net of refunds):

1. **choice of model** — each candidate in ``clv_models`` (BG/NBD, MBG/NBD, Pareto/NBD) is
   fitted on a calibration period that ends ``clv_holdout_days`` before the as-of day and
   predicts each customer's purchases in the holdout; the model with the smallest root mean
   squared error per customer wins (not the best likelihood: the question is which predicts);
2. **scores** — the winner is fitted again on everything up to the as-of day and scores each
   distinct (frequency, recency, T) pattern once: p(alive), expected purchases in the next 90
   days and the discounted expected purchases of the next 12 months; the Gamma-Gamma model,
   fitted on repeat buyers, gives each buyer's expected spend per purchase. Both are joined
   back in the warehouse, so scoring ten million customers is a join;
3. ``expected_value_365d`` = expected spend × discounted purchases × margin, where the margin is
   ``clv_margin`` or, when not set, the shop's gross margin from the unit costs of its order lines
   (1.0 when it has none); ``churn_risk`` bands p(alive): ``high`` below ``churn_high``,
   ``medium`` below ``churn_medium``, else ``low``.

A fit that does not converge is not used: the build notes why and leaves the scores empty
rather than filling them with numbers nobody should trust.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import timedelta

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from archer.customers.rules import ProfileRules
from archer.facts import Snapshot
from archer.models import MODELS, GammaGamma
from archer.models.clv import DAYS_PER, discounted_expected_purchases, period_rate
from archer.models.summary import calibration_holdout_summary, patterns, rfm_summary

SCORE_COLUMNS = ("p_alive", "expected_purchases_90d", "expected_value_365d", "churn_risk")
KEY = ["frequency", "recency", "T"]


@dataclass
class ModelReport:
    """What the build learned about the models, for the build result and the docs."""

    chosen: str | None = None
    candidates: dict[str, dict] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    spend_params: dict[str, float] = field(default_factory=dict)
    margin: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "chosen": self.chosen,
            "candidates": self.candidates,
            "params": self.params,
            "spend_params": self.spend_params,
            "margin": self.margin,
            "notes": self.notes,
        }


# A forecast of a year from a few days of buying is noise (and a fit on it can be degenerate:
# a 9-day behaviour log gave parameters whose series took minutes to fail).
MIN_HISTORY_DAYS = 28


def _purchases(s: Snapshot) -> ir.Table:
    return s.purchases()


def _fit(name: str, pats, report: ModelReport):
    """Fit ``name`` on executed patterns (sorted, so every engine fits the same numbers)."""
    model = MODELS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(pats.frequency, pats.recency, pats["T"], weights=pats.weights)
    if not model.converged_:
        report.notes.append(f"{name} did not converge: {model.message_}")
        return None
    return model


def _rank(s: Snapshot, buys: ir.Table, rules: ProfileRules, report: ModelReport) -> list[str]:
    """The candidate models, best holdout error first (those that could not fit left out)."""
    first = buys.day.min().execute()
    if first is None or first != first:
        report.notes.append("no paid orders: no model")
        return []
    span = (s.as_of - _as_date(first)).days
    holdout = min(rules.clv_holdout_days, span // 3)
    if holdout < 7:
        report.notes.append(f"{span} days of history are too short for a holdout")
        return list(rules.clv_models)
    cal_end = s.as_of - timedelta(days=holdout)
    summary = calibration_holdout_summary(
        buys,
        customer_col="customer_id",
        date_col="day",
        calibration_end=cal_end,
        observation_end=s.as_of,
        unit="day",
    )
    g = summary.group_by(KEY).aggregate(
        weights=summary.count().cast("int64"),
        actual=summary.frequency_holdout.sum().cast("float64"),
        actual2=(summary.frequency_holdout * summary.frequency_holdout).sum().cast("float64"),
    )
    pats = g.execute().sort_values(KEY, kind="stable").reset_index(drop=True)
    n = float(pats.weights.sum())
    for name in rules.clv_models:
        model = _fit(name, pats, report)
        if model is None:
            continue
        with np.errstate(all="ignore"):
            pred = model.conditional_expected_purchases(
                float(holdout), pats.frequency, pats.recency, pats["T"]
            )
        if not np.all(np.isfinite(pred)):
            report.notes.append(f"{name} predicts non-finite purchases with {model.params_}")
            continue
        sse = float(np.sum(pats.actual2 - 2 * pred * pats.actual + pats.weights * pred**2))
        report.candidates[name] = {
            "holdout_rmse": float(np.sqrt(max(sse, 0.0) / n)),
            "holdout_predicted": float(np.sum(pats.weights * pred)),
            "holdout_actual": float(pats.actual.sum()),
            "log_likelihood": model.log_likelihood_,
            "holdout_days": holdout,
        }
    return sorted(report.candidates, key=lambda k: report.candidates[k]["holdout_rmse"])


def _as_date(v):
    return v.date() if hasattr(v, "date") and callable(v.date) else v


def _margin(s: Snapshot, rules: ProfileRules) -> float:
    if rules.clv_margin is not None:
        return rules.clv_margin
    lines = s.paid_lines()
    known = lines.filter(lines.unit_cost.notnull() & lines.unit_price.notnull())
    q = known.quantity.cast("float64")
    sums = known.aggregate(
        revenue=(q * known.unit_price).sum(), cost=(q * known.unit_cost).sum()
    ).execute()
    revenue, cost = sums.revenue.iloc[0], sums.cost.iloc[0]
    if revenue is None or not revenue == revenue or revenue <= 0:
        return 1.0
    return float(1.0 - cost / revenue)


def clv_scores(s: Snapshot, rules: ProfileRules) -> tuple[ir.Table | None, ModelReport]:
    """Per buyer ``customer_id`` and :data:`SCORE_COLUMNS`, or None when no model can be
    trusted (the report says why)."""
    report = ModelReport()
    if not rules.clv_models:
        return None, report
    buys = _purchases(s)
    ranked = _rank(s, buys, rules, report)
    summary = rfm_summary(
        buys,
        customer_col="customer_id",
        date_col="day",
        calibration_end=s.as_of,
        unit="day",
        amount_col="amount",
    )
    pats = patterns(summary).execute().sort_values(KEY, kind="stable").reset_index(drop=True)
    span = int(pats["T"].max()) if len(pats) else 0
    if span < MIN_HISTORY_DAYS:
        report.notes.append(
            f"the purchases span {span} days; the customer-base models need at least "
            f"{MIN_HISTORY_DAYS} days of history before they forecast a year (no p_alive or CLV)"
        )
        return None, report
    scored = None
    for name in ranked:  # the best model whose scores are all finite numbers
        model = _fit(name, pats, report)
        scored = None if model is None else _score_patterns(model, pats, rules)
        if scored is not None:
            report.chosen, report.params = name, dict(model.params_)
            break
        if model is not None:
            report.notes.append(f"{name} gives non-finite scores with {model.params_}")
    if scored is None:
        return None, report
    spend = _spend(summary, report)
    report.margin = _margin(s, rules)
    m = ibis.memtable(scored)
    j = summary.join(
        m, (summary.frequency == m._f) & (summary.recency == m._r) & (summary["T"] == m._t)
    )
    if spend is None:
        value = ibis.null("float64")
    else:
        p, q, g = spend
        xm = ibis.ifelse(j.frequency > 0, j.frequency * j.monetary_value, 0.0)
        per_purchase = (g + xm) * p / (p * j.frequency + q - 1.0)
        value = per_purchase * j._discounted * report.margin
    risk = ibis.cases(
        (j.p_alive < rules.churn_high, "high"),
        (j.p_alive < rules.churn_medium, "medium"),
        else_="low",
    )
    out = j.select(
        "customer_id",
        "p_alive",
        "expected_purchases_90d",
        expected_value_365d=value.cast("float64"),
        churn_risk=risk,
    )
    return out, report


def _score_patterns(model, pats, rules: ProfileRules) -> pa.Table | None:
    """Scores of each pattern, or None when any is not a finite number."""
    x, tx, T = pats.frequency.to_numpy(), pats.recency.to_numpy(), pats["T"].to_numpy()
    with np.errstate(all="ignore"):
        p_alive = model.p_alive(x, tx, T)
        e90 = model.conditional_expected_purchases(90.0, x, tx, T)
        rate = period_rate(rules.clv_discount_rate, 12)
        disc = discounted_expected_purchases(
            model, x, tx, T, horizon=12, period=DAYS_PER["month"], discount_rate=rate
        )
    if not all(np.all(np.isfinite(v)) for v in (p_alive, e90, disc)):
        return None
    return pa.table(
        {
            "_f": pa.array(x, pa.int64()),
            "_r": pa.array(tx, pa.float64()),
            "_t": pa.array(T, pa.float64()),
            "p_alive": pa.array(p_alive, pa.float64()),
            "expected_purchases_90d": pa.array(e90, pa.float64()),
            "_discounted": pa.array(disc, pa.float64()),
        }
    )


def _spend(summary: ir.Table, report: ModelReport) -> tuple[float, float, float] | None:
    repeat = summary.filter(summary.frequency > 0).select("frequency", "monetary_value")
    data = repeat.execute().sort_values(["frequency", "monetary_value"], kind="stable")
    data = data[data.monetary_value > 0]
    # Means of money computed by different engines may differ in the last bit; rounded to a
    # millionth of a yuan, every engine fits the same numbers and gets the same parameters.
    data = data.assign(monetary_value=data.monetary_value.round(6))
    if len(data) < 20:
        report.notes.append(f"only {len(data)} repeat buyers: no spend model")
        return None
    gg = GammaGamma()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gg.fit(data.frequency, data.monetary_value)
    if not gg.converged_ or gg.params_["q"] <= 1.0:
        report.notes.append(f"gamma-gamma not usable: {gg.message_}, params {gg.params_}")
        return None
    report.spend_params = dict(gg.params_)
    return gg.params_["p"], gg.params_["q"], gg.params_["gamma"]
