"""Fitting and validating a customer-base model on a purchase log: the core of `archer clv`.

The purchases come from one of three places (a :data:`Source`):

* :class:`TransactionsFile` — a transaction log, CSV (plain or gzipped) or Parquet, with a
  customer, a date and optionally an amount column. A row with a blank customer id or a blank
  date is refused (its count and first rows named) unless ``skip_blank`` leaves such rows out,
  and then the result says how many it left out;
* :class:`SummaryFile` — a ready summary (``frequency, recency, T`` or ``periods``,
  optionally ``monetary_value`` and ``weights``);
* :class:`WorkspaceOrders` — the workspace's own paid orders, as the profile sees them
  (:meth:`archer.customers.facts.Snapshot.paid_orders`: paid, of known customers, amount net of
  refunds, one purchase per local pay day), as of the observation end.

:func:`fit` summarises the purchases in the engine (Ibis), fits the model on the distinct
patterns with their counts and returns a :class:`FitResult`; :func:`validate` fits on the
calibration period, predicts the holdout and returns a :class:`ValidationResult`. Bad input
raises :class:`ClvError` with a message that names the file, column or option; a prediction
that is not a finite number raises it too, so no NaN is ever reported as a result.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from archer.errors import Invalid

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from archer.models.diagnostics import Validation
    from archer.workspace import Workspace

# What each model is fitted on: purchase models on (frequency, recency, T), BG/BB on whole
# periods, Gamma-Gamma on the repeat customers' mean spend.
PERIODS_MODELS = frozenset({"bgbb"})
SPEND_MODELS = frozenset({"gamma-gamma"})
UNITS = ("day", "week")
FIRST_ROWS = 5  # rows named when blank ids or dates are refused


class ClvError(Invalid):
    """Input that cannot be fitted: the message says what and where."""


def models() -> dict[str, type]:
    """The model registry of :mod:`archer.models`."""
    from archer.models import MODELS

    return dict(MODELS)


# -- sources -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionsFile:
    path: Path
    customer_col: str = "customer_id"
    date_col: str = "date"
    amount_col: str | None = None
    skip_blank: bool = False


@dataclass(frozen=True)
class SummaryFile:
    path: Path


@dataclass(frozen=True)
class WorkspaceOrders:
    ws: Workspace


Source = TransactionsFile | SummaryFile | WorkspaceOrders


@dataclass(frozen=True)
class Purchases:
    """A purchase log with its date column as dates, ready to summarise."""

    table: ir.Table
    customer_col: str
    date_col: str
    amount_col: str | None
    label: str  # the file, or the workspace, for messages
    last_day: date | None
    skipped: dict[str, Any] | None = None  # rows left out for a blank id or date


@dataclass(frozen=True)
class FitRequest:
    """What to fit, on what: the options of ``archer clv fit``."""

    source: Source
    model: str = "bgnbd"
    unit: str = "week"
    calibration_end: date | None = None
    observation_end: date | None = None
    penalizer: float = 0.0


@dataclass
class FitResult:
    """A fitted model and where its data came from."""

    name: str
    model: Any
    patterns: int
    penalizer: float
    origin: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from archer.models.diagnostics import jsonable

        m = self.model
        return jsonable(
            {
                "model": self.name,
                "params": m.params_,
                "standard_errors": m.standard_errors_,
                "log_likelihood": m.log_likelihood_,
                "aic": m.aic_,
                "n_customers": int(round(m.n_customers_)),
                "patterns": self.patterns,
                "converged": m.converged_,
                "message": m.message_,
                "penalizer": self.penalizer,
                **self.origin,
            }
        )


@dataclass
class ValidationResult:
    """The calibration fit and every holdout figure (:class:`~archer.models.diagnostics.
    Validation`; ``write(out)`` writes the PNGs and ``figures.json``)."""

    fit: FitResult
    diagnostics: Validation

    @property
    def errors(self) -> dict[str, float]:
        return self.diagnostics.errors

    def to_dict(self) -> dict[str, Any]:
        return self.diagnostics.to_dict()

    def write(self, out: Path) -> dict[str, Path]:
        return self.diagnostics.write(out)


# -- reading -------------------------------------------------------------------------------------


def _read_file(path: Path):
    import ibis

    if not path.is_file():
        raise ClvError(f"{path}: no such file")
    con = ibis.duckdb.connect()
    parquet = path.suffix.lower() in (".parquet", ".pq")
    try:
        return con.read_parquet(str(path)) if parquet else con.read_csv(str(path))
    except Exception as e:  # DuckDB says what it could not read
        raise ClvError(f"{path}: cannot read as {'Parquet' if parquet else 'CSV'}: {e}") from None


def _need(table, label: str, *columns: str) -> None:
    have = set(table.columns)
    for c in columns:
        if c not in have:
            raise ClvError(f"{label}: no column {c!r} (columns: {', '.join(table.columns)})")


def _blank(col):
    """True where a value is missing or only spaces."""
    if col.type().is_string():
        return col.isnull() | (col.strip() == "")
    return col.isnull()


def _check_blanks(t, src: TransactionsFile, label: str):
    """Refuse (or, with ``skip_blank``, leave out and count) rows with a blank id or date."""
    import ibis

    cust, day = t[src.customer_col], t[src.date_col]
    counts = t.aggregate(
        ids=_blank(cust).cast("int64").sum(), dates=_blank(day).cast("int64").sum()
    ).to_pyarrow()
    n_ids = int(counts.column("ids")[0].as_py() or 0)
    n_dates = int(counts.column("dates")[0].as_py() or 0)
    if not n_ids and not n_dates:
        return t, None
    numbered = t.mutate(_row=ibis.row_number() + 1)
    bad = numbered.filter(_blank(numbered[src.customer_col]) | _blank(numbered[src.date_col]))
    rows = bad.order_by("_row").select("_row").limit(FIRST_ROWS).to_pyarrow()
    first = [int(v) for v in rows.column("_row").to_pylist()]
    # a CSV's data row n is on line n + 1 (the header is line 1)
    csv = src.path.suffix.lower() not in (".parquet", ".pq")
    where = [r + 1 for r in first] if csv else first
    skipped = {
        "blank_customer": n_ids,
        "blank_date": n_dates,
        "first_lines" if csv else "first_rows": where,
    }
    if not src.skip_blank:
        parts = []
        if n_ids:
            parts.append(f"{n_ids:,} rows have a blank {src.customer_col!r}")
        if n_dates:
            parts.append(f"{n_dates:,} rows have a blank {src.date_col!r}")
        listed = ", ".join(map(str, where))
        raise ClvError(
            f"{label}: {' and '.join(parts)} ({'lines' if csv else 'rows'} {listed}"
            f"{', …' if n_ids + n_dates > len(where) else ''}): fix them, or leave them out "
            "with --skip-blank"
        )
    return t.filter(~(_blank(cust) | _blank(day))), skipped


def _as_dates(t, col: str, label: str):
    """The column as dates; a value that is not a date stops with the file, column and value."""
    import ibis

    c = t[col]
    if c.type().is_date():
        return t
    if c.type().is_timestamp():
        return t.mutate(**{col: c.cast("date")})
    if c.type().is_integer():  # 19970101
        text = c.cast("string")
        iso = text.substr(0, 4) + "-" + text.substr(4, 2) + "-" + text.substr(6, 2)
        parsed = (text.length() == 8).ifelse(iso, ibis.null("string")).try_cast("date")
    elif c.type().is_string():
        parsed = c.try_cast("timestamp").cast("date")
        text = c
    else:
        raise ClvError(f"{label}: column {col!r} holds {c.type()}, not dates")
    bad = t.filter(c.notnull() & parsed.isnull()).select(v=text).limit(1).to_pyarrow()
    if bad.num_rows:
        first = bad.column("v")[0].as_py()
        raise ClvError(f"{label}: column {col!r} has values that are not dates, such as {first!r}")
    return t.mutate(**{col: parsed})


def read_transactions(src: TransactionsFile) -> Purchases:
    """The transaction log of ``src``, checked: columns there, dates dates, amounts numbers,
    no blank ids or dates (unless ``skip_blank``)."""
    label = str(src.path)
    t = _read_file(src.path)
    _need(t, label, src.customer_col, src.date_col, *([src.amount_col] if src.amount_col else []))
    t, skipped = _check_blanks(t, src, label)
    t = _as_dates(t, src.date_col, label)
    if src.amount_col is not None and not t[src.amount_col].type().is_numeric():
        raise ClvError(f"{label}: column {src.amount_col!r} holds {t[src.amount_col].type()}, "
                       "not amounts")  # fmt: skip
    last = t[src.date_col].max().to_pyarrow().as_py()
    return Purchases(t, src.customer_col, src.date_col, src.amount_col, label, last, skipped)


@contextmanager
def workspace_purchases(ws: Workspace, as_of: date | None) -> Iterator[Purchases]:
    """The workspace's paid orders up to the end of ``as_of`` (default: its latest activity)
    as purchases (:meth:`archer.facts.Snapshot.purchases`, the profile's definition); the
    warehouse stays lent while the caller works."""
    from archer.facts import Snapshot

    ws.require()
    with ws.warehouse() as wh:
        if wh.is_empty("orders"):
            raise ClvError(f"{ws.home}: no orders yet: import some first (archer import)")
        snap = Snapshot.at(wh, as_of, ws.tz, today=ws.today())
        yield Purchases(snap.purchases(), "customer_id", "day", "amount", str(ws.home), snap.as_of)


# -- the summary a model sees ----------------------------------------------------------------------


def _columns_for(name: str) -> tuple[str, ...]:
    if name in SPEND_MODELS:
        return ("frequency", "monetary_value")
    if name in PERIODS_MODELS:
        return ("frequency", "recency", "periods")
    return ("frequency", "recency", "T")


@dataclass
class _Inputs:
    rows: pd.DataFrame  # the model's input rows with ``weights``
    origin: dict[str, Any]
    label: str
    purchases: Purchases | None = None
    calibration_end: date | None = None
    observation_end: date | None = None


def _check_request(req: FitRequest, *, holdout: bool) -> None:
    if req.model not in models():
        raise ClvError(f"--model {req.model!r}: expected one of {', '.join(models())}")
    if req.unit not in UNITS:
        raise ClvError(f"--unit {req.unit!r}: expected day or week")
    if req.penalizer < 0 or not np.isfinite(req.penalizer):
        raise ClvError(f"--penalizer {req.penalizer}: expected a number >= 0")
    if holdout and req.model in SPEND_MODELS:
        raise ClvError("validate checks purchase models; gamma-gamma models spend (use `clv fit`)")


def _grouped(table, columns: tuple[str, ...]):
    """Distinct rows of ``columns`` with the customers behind each in ``weights``."""
    if "weights" in table.columns:
        return table.group_by(list(columns)).aggregate(weights=table.weights.sum())
    return table.group_by(list(columns)).aggregate(weights=table.count())


def _summarised(req: FitRequest, p: Purchases, *, holdout: bool, amount: bool) -> _Inputs:
    from archer.models import summary as s

    if p.last_day is None:
        raise ClvError(f"{p.label}: no transactions")
    obs = req.observation_end or p.last_day
    cal = req.calibration_end
    if cal is not None and cal >= obs:
        raise ClvError(f"--calibration-end {cal} must be before the observation end {obs}")
    if holdout and cal is None:
        raise ClvError("validate needs --calibration-end: the holdout is the time after it")
    if req.model in PERIODS_MODELS and req.unit != "day":
        raise ClvError("bgbb on transactions counts whole days as periods: use --unit day")
    kw: dict[str, Any] = dict(
        customer_col=p.customer_col, date_col=p.date_col, unit=req.unit,
        calibration_end=cal or obs,
    )  # fmt: skip
    if amount:
        kw["amount_col"] = p.amount_col
    if holdout:
        table = s.calibration_holdout_summary(p.table, observation_end=obs, **kw)
    else:
        table = s.rfm_summary(p.table, **kw)
    if req.model in PERIODS_MODELS:
        table = table.mutate(periods=table["T"])
    origin: dict[str, Any] = {"unit": req.unit, "observation_end": str(obs)}
    if cal is not None:
        origin["calibration_end"] = str(cal)
    if p.skipped:
        origin["skipped"] = p.skipped
    return _Inputs(_execute(req, table, p.label, holdout), origin, p.label, p, cal, obs)


def _execute(req: FitRequest, table, label: str, holdout: bool) -> pd.DataFrame:
    columns = _columns_for(req.model)
    if holdout:
        columns = (*columns, "frequency_holdout", "duration_holdout")
    _need(table, label, *columns)
    if req.model in SPEND_MODELS:
        table = table.filter(table.frequency > 0)
    try:
        rows = _grouped(table, columns).to_pandas()
    except Exception as e:
        raise ClvError(f"{label}: {e}") from None
    if rows.empty:
        raise ClvError(f"{label}: no customers to fit")
    if req.model not in SPEND_MODELS and not (rows[columns[2]] > 0).any():
        raise ClvError(
            f"{label}: every customer was first seen at the end of the period; nothing to fit"
        )
    return rows


@contextmanager
def _inputs(req: FitRequest, *, holdout: bool) -> Iterator[_Inputs]:
    """The model's input rows, from whichever source the request names (the workspace's
    warehouse stays open inside, for the validation's dated figures)."""
    _check_request(req, holdout=holdout)
    src = req.source
    spend = req.model in SPEND_MODELS
    if isinstance(src, SummaryFile):
        table = _read_file(src.path)
        yield _Inputs(_execute(req, table, str(src.path), holdout), {"summary": str(src.path)},
                      str(src.path))  # fmt: skip
    elif isinstance(src, TransactionsFile):
        if spend and src.amount_col is None:
            raise ClvError("gamma-gamma needs --amount-col, the amount of each transaction")
        p = read_transactions(src)
        got = _summarised(req, p, holdout=holdout, amount=spend)
        got.origin = {"transactions": str(src.path), **got.origin}
        yield got
    else:
        with workspace_purchases(src.ws, req.observation_end) as p:
            got = _summarised(req, p, holdout=holdout, amount=spend)
            got.origin = {"home": str(src.ws.home), **got.origin}
            yield got


# -- fitting -------------------------------------------------------------------------------------


def _fit_rows(name: str, rows: pd.DataFrame, penalizer: float):
    model = models()[name]()
    data = [rows[c].to_numpy(dtype=float) for c in _columns_for(name)]
    with warnings.catch_warnings(record=True):  # the fit reports convergence in converged_
        warnings.simplefilter("always")
        try:
            model.fit(*data, weights=rows["weights"].to_numpy(dtype=float), penalizer=penalizer)
        except (ValueError, FloatingPointError) as e:
            raise ClvError(f"{name}: {e}") from None
    if not np.isfinite(model.log_likelihood_) or not all(
        np.isfinite(v) for v in model.params_.values()
    ):
        raise ClvError(f"{name}: the fit ended on numbers that are not finite: {model.params_}")
    return model


def fit(req: FitRequest) -> FitResult:
    """Fit ``req.model`` by maximum likelihood on the source's distinct patterns."""
    with _inputs(req, holdout=False) as got:
        model = _fit_rows(req.model, got.rows, req.penalizer)
        return FitResult(req.model, model, len(got.rows), req.penalizer, got.origin)


def validate(req: FitRequest, *, max_frequency: int = 7) -> ValidationResult:
    """Fit on the calibration period, predict the holdout and compute every diagnostic."""
    from archer.models import diagnostics

    if max_frequency < 1:
        raise ClvError(f"--max-frequency {max_frequency}: expected at least 1")
    with _inputs(req, holdout=True) as got:
        columns = list(_columns_for(req.model))
        calibration = got.rows.groupby(columns, as_index=False)["weights"].sum()
        model = _fit_rows(req.model, calibration, req.penalizer)
        result = FitResult(req.model, model, len(calibration), req.penalizer, got.origin)
        tracking = {} if got.purchases is None else _tracking_inputs(got)
        with np.errstate(all="ignore"):
            v = diagnostics.validate(
                model, got.rows, time_col=columns[2], max_frequency=max_frequency,
                unit=req.unit, **tracking,
            )  # fmt: skip
    _check_finite(req.model, model, v)
    v.meta = {"fit": result.to_dict()}
    return ValidationResult(result, v)


def _check_finite(name: str, model, v: Validation) -> None:
    """Refuse a validation whose predictions are not all numbers (never print NaN)."""
    bad = [k for k, x in v.errors.items() if k != "aggregate_error_pct" and not np.isfinite(x)]
    bins = v.holdout_by_frequency
    expected = bins["expected"].to_numpy(dtype=float)[bins["customers"].to_numpy() > 0]
    if bad or not np.all(np.isfinite(expected)):
        params = ", ".join(f"{k} = {x:.6g}" for k, x in model.params_.items())
        raise ClvError(
            f"{name}: the model's expected holdout purchases cannot be computed as finite numbers "
            f"with {params}; try another --model or a --penalizer"
        )


def _tracking_inputs(got: _Inputs) -> dict[str, Any]:
    from archer.models import diagnostics
    from archer.models.summary import rfm_summary

    p = got.purchases
    cal = rfm_summary(
        p.table, customer_col=p.customer_col, date_col=p.date_col,
        calibration_end=got.calibration_end, unit=got.origin["unit"],
    )  # fmt: skip
    first = cal.group_by("first_purchase").aggregate(customers=cal.count()).to_pandas()
    repeats = diagnostics.repeat_purchases_by_day(
        p.table, customer_col=p.customer_col, date_col=p.date_col,
        calibration_end=got.calibration_end, observation_end=got.observation_end,
    ).to_pandas()  # fmt: skip
    return {
        "first_purchases": first,
        "repeats_by_day": repeats,
        "calibration_end": got.calibration_end,
        "observation_end": got.observation_end,
    }
