"""Calibration/holdout validation of a fitted customer-base model: error figures and the plots.

The model is fitted on a calibration period; the holdout period after it shows how well it
predicts. The figures are the ones analysts know from Fader, Hardie & Lee (2005):

- per-customer error of the holdout purchases (MAE, RMSE) and the aggregate error;
- actual vs expected holdout purchases by calibration frequency (the paper's Figure 4);
- cumulative repeat purchases week by week, actual vs model (Figure 3);
- the calibration frequency histogram, actual vs model (Figure 2);
- P(alive) by frequency and recency, as a heat map.

Each is a pandas DataFrame (or a dict) that the web app can chart and that goes to JSON, and
each has a PNG drawn with Matplotlib's object API (no pyplot state, no backend switch). The
model is any of :mod:`archer.models` with ``conditional_expected_purchases``, ``p_alive``,
``expected_purchases_new`` and ``probability_of_purchases``; time is in the summary's unit
(``T``, or ``periods`` for BG/BB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

DAYS_PER_UNIT = {"day": 1.0, "week": 7.0}
PLOTS = ("holdout_by_frequency", "tracking", "frequency_histogram", "p_alive")


def _weights(data: pd.DataFrame) -> np.ndarray:
    if "weights" in data:
        return data["weights"].to_numpy(dtype=float)
    return np.ones(len(data))


def _expected_holdout(model, data: pd.DataFrame, time_col: str) -> np.ndarray:
    return np.asarray(
        model.conditional_expected_purchases(
            data["duration_holdout"].to_numpy(dtype=float),
            data["frequency"].to_numpy(dtype=float),
            data["recency"].to_numpy(dtype=float),
            data[time_col].to_numpy(dtype=float),
        ),
        dtype=float,
    )


# -- figures ------------------------------------------------------------------------------------


def holdout_errors(model, data: pd.DataFrame, time_col: str = "T") -> dict[str, float]:
    """Per-customer MAE and RMSE of the holdout purchases, and the aggregate error.

    ``data`` has ``frequency, recency, <time_col>, frequency_holdout, duration_holdout`` and
    optionally ``weights`` (customers per row). ``aggregate_error`` is expected minus actual
    holdout purchases of all customers; ``aggregate_error_pct`` the same relative to actual.
    """
    w = _weights(data)
    actual = data["frequency_holdout"].to_numpy(dtype=float)
    expected = _expected_holdout(model, data, time_col)
    n = float(w.sum())
    err = expected - actual
    total_actual, total_expected = float(w @ actual), float(w @ expected)
    return {
        "n_customers": n,
        "actual_purchases": total_actual,
        "expected_purchases": total_expected,
        "aggregate_error": total_expected - total_actual,
        "aggregate_error_pct": 100.0 * (total_expected - total_actual) / total_actual
        if total_actual
        else float("nan"),
        "mae": float(w @ np.abs(err)) / n,
        "rmse": float(np.sqrt(w @ err**2 / n)),
    }


def _bins(frequency: np.ndarray, max_frequency: int) -> tuple[np.ndarray, list[str]]:
    labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    return np.minimum(frequency.astype(int), max_frequency), labels


def holdout_by_frequency(
    model, data: pd.DataFrame, max_frequency: int = 7, time_col: str = "T"
) -> pd.DataFrame:
    """Mean actual and expected holdout purchases per calibration frequency (last bin: ``k+``).

    Columns: ``frequency`` (label), ``customers``, ``actual``, ``expected``.
    """
    w = _weights(data)
    b, labels = _bins(data["frequency"].to_numpy(), max_frequency)
    actual = data["frequency_holdout"].to_numpy(dtype=float)
    expected = _expected_holdout(model, data, time_col)
    k = len(labels)
    customers = np.bincount(b, weights=w, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "frequency": labels,
                "customers": customers,
                "actual": np.bincount(b, weights=w * actual, minlength=k) / customers,
                "expected": np.bincount(b, weights=w * expected, minlength=k) / customers,
            }
        )


def frequency_histogram(
    model, data: pd.DataFrame, max_frequency: int = 7, time_col: str = "T"
) -> pd.DataFrame:
    """Customers per calibration frequency, actual and as the model expects them.

    The model's count for ``x`` is the sum over customers of P(X(T) = x), each customer at their
    own ``T``; the last bin ``k+`` holds the rest. Columns: ``frequency``, ``actual``,
    ``expected``.
    """
    w = _weights(data)
    b, labels = _bins(data["frequency"].to_numpy(), max_frequency)
    actual = np.bincount(b, weights=w, minlength=len(labels))
    by_T = pd.DataFrame({"T": data[time_col].to_numpy(dtype=float), "w": w})
    by_T = by_T.groupby("T", sort=False)["w"].sum()
    T = by_T.index.to_numpy(dtype=float)
    expected = np.empty(len(labels))
    for x in range(max_frequency):
        expected[x] = float(by_T.to_numpy() @ model.probability_of_purchases(np.full_like(T, x), T))
    expected[-1] = w.sum() - expected[:-1].sum()
    return pd.DataFrame({"frequency": labels, "actual": actual, "expected": expected})


def p_alive_matrix(
    model,
    T: float,
    max_frequency: int = 20,
    steps: int = 40,
    discrete: bool = False,
) -> pd.DataFrame:
    """P(alive) of a customer observed for ``T`` by frequency and recency, in long form.

    Columns ``frequency, recency, p_alive``; impossible cells (repeat purchases at recency 0,
    recency without repeat purchases, and for a discrete model more purchases than periods) are
    NaN. ``discrete`` (BG/BB) puts recency on whole periods.
    """
    recency = (
        np.unique(np.round(np.linspace(0.0, T, steps))) if discrete else np.linspace(0, T, steps)
    )
    x, r = np.meshgrid(np.arange(max_frequency + 1, dtype=float), recency, indexing="ij")
    valid = (x == 0) == (r == 0)
    if discrete:
        valid &= x <= r
    p = np.full(x.shape, np.nan)
    p[valid] = model.p_alive(x[valid], r[valid], np.full(int(valid.sum()), float(T)))
    return pd.DataFrame({"frequency": x.ravel(), "recency": r.ravel(), "p_alive": p.ravel()})


def repeat_purchases_by_day(
    transactions: ir.Table,
    *,
    customer_col: str,
    date_col: str,
    calibration_end: date,
    observation_end: date,
    observation_start: date | None = None,
) -> ir.Table:
    """Repeat purchase days per calendar day, for customers first seen in the calibration period.

    A customer's first purchase day is not a repeat; several purchases on one day count once, as
    in :func:`archer.models.summary.rfm_summary`. Columns ``day, repeat_purchases``; computed in
    the engine.
    """
    t = transactions.select(
        customer=transactions[customer_col], day=transactions[date_col].cast("date")
    )
    if observation_start is not None:
        t = t.filter(t.day >= ibis.literal(observation_start, type="date"))
    t = t.filter(t.day <= ibis.literal(observation_end, type="date")).distinct()
    t = t.mutate(first_day=t.day.min().over(group_by=t.customer))
    t = t.filter(
        (t.day > t.first_day) & (t.first_day <= ibis.literal(calibration_end, type="date"))
    )
    return t.group_by("day").aggregate(repeat_purchases=t.count().cast("int64"))


def tracking(
    model,
    first_purchases: pd.DataFrame,
    repeats_by_day: pd.DataFrame,
    *,
    calibration_end: date,
    observation_end: date,
    unit: str = "week",
) -> pd.DataFrame:
    """Cumulative repeat purchases week by week, actual and expected by the model.

    ``first_purchases`` has ``first_purchase`` (a date) and ``customers`` (how many customers
    made their first purchase that day); ``repeats_by_day`` has ``day`` and
    ``repeat_purchases`` (see :func:`repeat_purchases_by_day`). The expected cumulative count at
    the end of a week is the sum over cohorts of ``customers * E[X(t)]``, ``t`` the time since
    their first purchase. Columns: ``week_end`` (date), ``week``, ``actual``, ``expected``,
    ``actual_cumulative``, ``expected_cumulative``, ``period`` (calibration or holdout).
    """
    per_unit = DAYS_PER_UNIT[unit]
    cohorts = pd.to_datetime(first_purchases["first_purchase"]).dt.date.to_numpy()
    sizes = first_purchases["customers"].to_numpy(dtype=float)
    start = min(cohorts)
    n_weeks = -(-((observation_end - start).days + 1) // 7)
    ends = [min(start + timedelta(days=7 * (k + 1) - 1), observation_end) for k in range(n_weeks)]
    start_ord = np.array([d.toordinal() for d in cohorts], dtype=float)
    expected_cum = np.empty(n_weeks)
    for k, end in enumerate(ends):
        t = np.maximum(end.toordinal() - start_ord, 0.0) / per_unit
        expected_cum[k] = float(sizes @ model.expected_purchases_new(t))
    days = pd.to_datetime(repeats_by_day["day"]).dt.date
    week = np.array([(d - start).days // 7 for d in days], dtype=int)
    counts = repeats_by_day["repeat_purchases"].to_numpy(dtype=float)
    inside = (week >= 0) & (week < n_weeks)
    actual = np.bincount(week[inside], weights=counts[inside], minlength=n_weeks)
    return pd.DataFrame(
        {
            "week_end": ends,
            "week": np.arange(1, n_weeks + 1),
            "actual": actual,
            "expected": np.diff(expected_cum, prepend=0.0),
            "actual_cumulative": np.cumsum(actual),
            "expected_cumulative": expected_cum,
            "period": ["calibration" if e <= calibration_end else "holdout" for e in ends],
        }
    )


# -- plots --------------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def plot_holdout_by_frequency(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = _figure()
    ax.plot(table["frequency"], table["actual"], marker="o", label="actual")
    ax.plot(table["frequency"], table["expected"], marker="s", linestyle="--", label="model")
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Holdout purchases by calibration frequency")
    ax.legend()
    fig.savefig(path)
    return path


def plot_tracking(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = _figure(8.0, 4.5)
    ax.plot(table["week"], table["actual_cumulative"], label="actual")
    ax.plot(table["week"], table["expected_cumulative"], linestyle="--", label="model")
    holdout = table.index[table["period"] == "holdout"]
    if len(holdout):
        ax.axvline(table["week"].iloc[holdout[0]] - 0.5, color="grey", linestyle=":")
        ax.annotate("holdout →", (table["week"].iloc[holdout[0]], 0), color="grey")
    ax.set_xlabel("week")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Tracking cumulative repeat purchases")
    ax.legend()
    fig.savefig(path)
    return path


def plot_frequency_histogram(table: pd.DataFrame, path: Path) -> Path:
    fig, ax = _figure()
    pos = np.arange(len(table))
    ax.bar(pos - 0.2, table["actual"], width=0.4, label="actual")
    ax.bar(pos + 0.2, table["expected"], width=0.4, label="model")
    ax.set_xticks(pos, table["frequency"])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.set_title("Frequency of repeat purchases")
    ax.legend()
    fig.savefig(path)
    return path


def plot_p_alive(table: pd.DataFrame, path: Path) -> Path:
    grid = table.pivot(index="frequency", columns="recency", values="p_alive")
    fig, ax = _figure()
    r = grid.columns.to_numpy(dtype=float)
    f = grid.index.to_numpy(dtype=float)
    image = ax.imshow(
        grid.to_numpy(),
        origin="lower",
        aspect="auto",
        extent=(r[0], r[-1], f[0] - 0.5, f[-1] + 0.5),
        vmin=0.0,
        vmax=1.0,
        cmap="viridis",
    )
    fig.colorbar(image, ax=ax, label="P(alive)")
    ax.set_xlabel("recency (time of the last purchase)")
    ax.set_ylabel("repeat purchases")
    ax.set_title("P(alive) by frequency and recency")
    fig.savefig(path)
    return path


# -- everything at once ---------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, so JSON stays strict."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value


@dataclass
class Validation:
    """All the figures of one calibration/holdout validation."""

    errors: dict[str, float]
    holdout_by_frequency: pd.DataFrame
    frequency_histogram: pd.DataFrame
    p_alive: pd.DataFrame
    tracking: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the errors, and each table as a list of records (NaN as null)."""

        def records(df: pd.DataFrame | None):
            if df is None:
                return None
            return json.loads(df.to_json(orient="records", date_format="iso"))

        return {
            **jsonable(self.meta),
            "errors": jsonable(self.errors),
            "holdout_by_frequency": records(self.holdout_by_frequency),
            "frequency_histogram": records(self.frequency_histogram),
            "tracking": records(self.tracking),
            "p_alive": records(self.p_alive),
        }

    def write(self, out: Path) -> dict[str, Path]:
        """``figures.json`` and one ``clv-<figure>.png`` per plot into ``out``; their paths."""
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "holdout_by_frequency": plot_holdout_by_frequency(
                self.holdout_by_frequency, out / "clv-holdout-by-frequency.png"
            ),
            "frequency_histogram": plot_frequency_histogram(
                self.frequency_histogram, out / "clv-frequency-histogram.png"
            ),
            "p_alive": plot_p_alive(self.p_alive, out / "clv-p-alive.png"),
        }
        if self.tracking is not None:
            paths["tracking"] = plot_tracking(self.tracking, out / "clv-tracking.png")
        doc = out / "figures.json"
        doc.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        paths["figures"] = doc
        return paths


def validate(
    model,
    data: pd.DataFrame,
    *,
    time_col: str = "T",
    max_frequency: int = 7,
    first_purchases: pd.DataFrame | None = None,
    repeats_by_day: pd.DataFrame | None = None,
    calibration_end: date | None = None,
    observation_end: date | None = None,
    unit: str = "week",
) -> Validation:
    """Every figure for a model fitted on ``data``'s calibration columns.

    The tracking plot needs the dated inputs (``first_purchases``, ``repeats_by_day`` and the
    two ends); without them it is left out.
    """
    T = float(data[time_col].max())
    track = None
    if first_purchases is not None and repeats_by_day is not None:
        if calibration_end is None or observation_end is None:
            raise ValueError("tracking needs calibration_end and observation_end")
        track = tracking(
            model,
            first_purchases,
            repeats_by_day,
            calibration_end=calibration_end,
            observation_end=observation_end,
            unit=unit,
        )
    return Validation(
        errors=holdout_errors(model, data, time_col),
        holdout_by_frequency=holdout_by_frequency(model, data, max_frequency, time_col),
        frequency_histogram=frequency_histogram(model, data, max_frequency, time_col),
        p_alive=p_alive_matrix(model, T, discrete=time_col == "periods"),
        tracking=track,
    )
