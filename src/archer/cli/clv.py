"""`archer clv fit` and `archer clv validate`: customer-base models on a file.

Both read a transaction log (``--transactions``, CSV or Parquet, summarised in DuckDB through
Ibis) or a ready summary (``--summary``), fit the chosen model on the distinct patterns with
their counts, and print the parameters named as in the papers; ``validate`` also checks the fit
against a holdout period and writes the diagnostics (:mod:`archer.models.diagnostics`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from archer.cli.support import ArcherTyper, JsonOpt, app, emit_json, err, fail, out

clv_app = ArcherTyper(
    help="Customer-base models: fit BG/NBD and friends, validate them on a holdout.",
    no_args_is_help=True,
)
app.add_typer(clv_app, name="clv")

# What each model is fitted on: purchase models on (frequency, recency, T), BG/BB on whole
# periods, Gamma-Gamma on the repeat customers' mean spend.
PERIODS_MODELS = {"bgbb"}
SPEND_MODELS = {"gamma-gamma"}


def models() -> dict[str, type]:
    """The model registry of :mod:`archer.models` (only BG/NBD where it is not there yet)."""
    import archer.models as m

    return dict(getattr(m, "MODELS", {"bgnbd": m.BGNBD}))


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="bgnbd, mbgnbd, pareto-nbd, bgbb or gamma-gamma.", show_default=True
    ),
]
TransactionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        help="Transaction log (CSV or Parquet): customer, date and optionally amount.",
    ),
]
SummaryOpt = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        help="Summary (CSV or Parquet): frequency, recency, T (BG/BB: periods); optionally "
        "monetary_value and weights.",
    ),
]
CustomerColOpt = Annotated[str, typer.Option("--customer-col", help="Customer id column.")]
DateColOpt = Annotated[str, typer.Option("--date-col", help="Purchase date or time column.")]
AmountColOpt = Annotated[
    str | None, typer.Option("--amount-col", help="Amount column (needed for gamma-gamma).")
]
CalibrationEndOpt = Annotated[
    str | None,
    typer.Option("--calibration-end", help="Last day of the calibration period (YYYY-MM-DD)."),
]
ObservationEndOpt = Annotated[
    str | None,
    typer.Option(
        "--observation-end",
        help="Last day observed (YYYY-MM-DD); default: the last day in the file.",
    ),
]
UnitOpt = Annotated[str, typer.Option("--unit", help="Time unit: day or week.")]
PenalizerOpt = Annotated[
    float, typer.Option("--penalizer", min=0.0, help="L2 penalty on the parameters.")
]


# -- reading ------------------------------------------------------------------------------------


@dataclass
class Source:
    """The input named on the command line, read through DuckDB."""

    path: Path
    table: Any  # ibis Table
    kind: str  # "transactions" or "summary"
    info: dict[str, Any] = field(default_factory=dict)


def _read(path: Path, kind: str) -> Source:
    import ibis

    if not path.is_file():
        fail(f"{path}: no such file")
    con = ibis.duckdb.connect()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            t = con.read_parquet(str(path))
        else:
            t = con.read_csv(str(path))
    except Exception as e:  # DuckDB says what it could not read
        fail(f"{path}: cannot read as {'Parquet' if path.suffix == '.parquet' else 'CSV'}: {e}")
    return Source(path, t, kind, {kind: str(path)})


def _need(src: Source, *columns: str) -> None:
    have = set(src.table.columns)
    for c in columns:
        if c not in have:
            listed = ", ".join(src.table.columns)
            fail(f"{src.path}: no column {c!r} (columns: {listed})")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: expected a date as YYYY-MM-DD")
        raise


def _dates(src: Source, col: str):
    """The column as dates; a value that is not a date stops with the file, column and value."""
    import ibis

    t = src.table
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
        fail(f"{src.path}: column {col!r} holds {c.type()}, not dates")
    bad = t.filter(c.notnull() & parsed.isnull()).select(v=text).limit(1).to_pyarrow()
    if bad.num_rows:
        first = bad.column("v")[0].as_py()
        fail(f"{src.path}: column {col!r} has values that are not dates, such as {first!r}")
    return t.mutate(**{col: parsed})


@dataclass
class Inputs:
    """Everything a fit needs, read from one file."""

    source: Source
    unit: str
    calibration_end: date | None = None
    observation_end: date | None = None
    dated: Any = None  # the transactions with a date column, when read from transactions
    customer_col: str = ""
    date_col: str = ""


def _transactions(
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    calibration_end: str | None,
    observation_end: str | None,
    unit: str,
) -> Inputs:
    src = _read(path, "transactions")
    _need(src, customer_col, date_col, *([amount_col] if amount_col else []))
    dated = _dates(src, date_col)
    if amount_col is not None:
        a = dated[amount_col]
        if not a.type().is_numeric():
            fail(f"{path}: column {amount_col!r} holds {a.type()}, not amounts")
    last = dated[date_col].max().to_pyarrow().as_py()
    if last is None:
        fail(f"{path}: no transactions")
    obs = _day(observation_end, "--observation-end") or last
    cal = _day(calibration_end, "--calibration-end")
    if cal is not None and cal >= obs:
        fail(f"--calibration-end {cal} must be before the observation end {obs}")
    src.info.update(unit=unit, observation_end=str(obs))
    if cal is not None:
        src.info["calibration_end"] = str(cal)
    return Inputs(src, unit, cal, obs, dated, customer_col, date_col)


def _summary_of(inputs: Inputs, amount_col: str | None, *, holdout: bool):
    """Per-customer summary (calibration period, and the holdout after it when asked)."""
    from archer.models import summary as s

    end = inputs.calibration_end or inputs.observation_end
    kw = dict(
        customer_col=inputs.customer_col,
        date_col=inputs.date_col,
        unit=inputs.unit,
        calibration_end=end,
    )
    if amount_col is not None:
        kw["amount_col"] = amount_col
    if holdout:
        return s.calibration_holdout_summary(
            inputs.dated, observation_end=inputs.observation_end, **kw
        )
    return s.rfm_summary(inputs.dated, **kw)


def _columns_for(name: str) -> tuple[str, ...]:
    if name in SPEND_MODELS:
        return ("frequency", "monetary_value")
    if name in PERIODS_MODELS:
        return ("frequency", "recency", "periods")
    return ("frequency", "recency", "T")


def _grouped(table, columns: tuple[str, ...]):
    """Distinct rows of ``columns`` with the customers behind each in ``weights``."""
    if "weights" in table.columns:
        return table.group_by(list(columns)).aggregate(weights=table.weights.sum())
    return table.group_by(list(columns)).aggregate(weights=table.count())


def _load(
    name: str,
    transactions: Path | None,
    summary: Path | None,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    calibration_end: str | None,
    observation_end: str | None,
    unit: str,
    *,
    holdout: bool,
):
    """The model's input rows (pandas, with ``weights``) and where they came from."""
    if (transactions is None) == (summary is None):
        fail("give one of --transactions FILE or --summary FILE")
    if unit not in ("day", "week"):
        fail(f"--unit {unit!r}: expected day or week")
    columns = _columns_for(name)
    if holdout:
        columns = (*columns, "frequency_holdout", "duration_holdout")
    if summary is not None:
        src = _read(summary, "summary")
        _need(src, *columns)
        table = src.table
    else:
        if name in SPEND_MODELS and amount_col is None:
            fail("gamma-gamma needs --amount-col, the amount of each transaction")
        if holdout and calibration_end is None:
            fail("validate needs --calibration-end: the holdout is the time after it")
        inputs = _transactions(
            transactions, customer_col, date_col, amount_col, calibration_end, observation_end,
            unit,
        )  # fmt: skip
        src = inputs.source
        table = _summary_of(inputs, amount_col, holdout=holdout)
        if name in PERIODS_MODELS:
            if unit != "day":
                fail("bgbb on transactions counts whole days as periods: use --unit day")
            table = table.mutate(periods=table["T"])
        src.info["inputs"] = inputs
    if name in SPEND_MODELS:
        table = table.filter(table.frequency > 0)
    try:
        rows = _grouped(table, columns).to_pandas()
    except Exception as e:
        fail(f"{src.path}: {e}")
    if rows.empty:
        fail(f"{src.path}: no customers to fit")
    if name not in SPEND_MODELS and not (rows[columns[2]] > 0).any():
        fail(f"{src.path}: every customer was first seen at the end of the period; nothing to fit")
    return rows, src


# -- fitting ------------------------------------------------------------------------------------


def _fit(name: str, rows, penalizer: float):
    registry = models()
    if name not in registry:
        fail(f"--model {name!r}: expected one of {', '.join(registry)}")
    model = registry[name]()
    data = [rows[c].to_numpy(dtype=float) for c in _columns_for(name)]
    with warnings.catch_warnings(record=True):  # the fit reports convergence in converged_
        warnings.simplefilter("always")
        try:
            model.fit(*data, weights=rows["weights"].to_numpy(dtype=float), penalizer=penalizer)
        except (ValueError, FloatingPointError) as e:
            fail(f"{name}: {e}")
    return model


def fit_document(name: str, model, rows, src: Source, penalizer: float) -> dict[str, Any]:
    from archer.models.diagnostics import jsonable

    info = {k: v for k, v in src.info.items() if k != "inputs"}
    return jsonable(
        {
            "model": name,
            "params": model.params_,
            "standard_errors": model.standard_errors_,
            "log_likelihood": model.log_likelihood_,
            "aic": model.aic_,
            "n_customers": int(round(model.n_customers_)),
            "patterns": len(rows),
            "converged": model.converged_,
            "message": model.message_,
            "penalizer": penalizer,
            **info,
        }
    )


def _print_fit(doc: dict[str, Any]) -> None:
    t = RichTable(
        title=f"{doc['model']} on {doc['n_customers']:,} customers ({doc['patterns']:,} patterns)",
        title_justify="left",
    )
    t.add_column("parameter")
    t.add_column("estimate", justify="right")
    t.add_column("std. error", justify="right")
    for k, v in doc["params"].items():
        se = doc["standard_errors"].get(k)
        t.add_row(k, f"{v:.4f}", "—" if se is None else f"{se:.4f}")
    out.print(t)
    out.print(f"log-likelihood {doc['log_likelihood']:,.2f}, AIC {doc['aic']:,.2f}")
    if not doc["converged"]:
        err.print(f"[bold yellow]warning:[/] the fit did not converge: {doc['message']}")


@clv_app.command("fit")
def fit_cmd(
    model: ModelOpt = "bgnbd",
    transactions: TransactionsOpt = None,
    summary: SummaryOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    date_col: DateColOpt = "date",
    amount_col: AmountColOpt = None,
    calibration_end: CalibrationEndOpt = None,
    observation_end: ObservationEndOpt = None,
    unit: UnitOpt = "week",
    penalizer: PenalizerOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Fit a model by maximum likelihood; print its parameters, standard errors, fit figures."""
    if model not in models():
        fail(f"--model {model!r}: expected one of {', '.join(models())}")
    rows, src = _load(
        model, transactions, summary, customer_col, date_col, amount_col, calibration_end,
        observation_end, unit, holdout=False,
    )  # fmt: skip
    fitted = _fit(model, rows, penalizer)
    doc = fit_document(model, fitted, rows, src, penalizer)
    if json_out:
        emit_json(doc)
    else:
        _print_fit(doc)


@clv_app.command("validate")
def validate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and figures.json.")],
    model: ModelOpt = "bgnbd",
    transactions: TransactionsOpt = None,
    summary: SummaryOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    date_col: DateColOpt = "date",
    calibration_end: CalibrationEndOpt = None,
    observation_end: ObservationEndOpt = None,
    unit: UnitOpt = "week",
    penalizer: PenalizerOpt = 0.0,
    max_frequency: Annotated[
        int, typer.Option("--max-frequency", min=1, help="Last frequency bin of the plots (k+).")
    ] = 7,
    json_out: JsonOpt = False,
) -> None:
    """Fit on the calibration period, predict the holdout, write the diagnostics."""
    from archer.models import diagnostics

    if model not in models():
        fail(f"--model {model!r}: expected one of {', '.join(models())}")
    if model in SPEND_MODELS:
        fail("validate checks purchase models; gamma-gamma models spend (use `clv fit`)")
    rows, src = _load(
        model, transactions, summary, customer_col, date_col, None, calibration_end,
        observation_end, unit, holdout=True,
    )  # fmt: skip
    time_col = _columns_for(model)[2]
    calibration = rows.groupby(list(_columns_for(model)), as_index=False)["weights"].sum()
    fitted = _fit(model, calibration, penalizer)
    tracking: dict[str, Any] = {}
    inputs = src.info.get("inputs")
    if inputs is not None:
        tracking = _tracking_inputs(inputs)
    v = diagnostics.validate(
        fitted, rows, time_col=time_col, max_frequency=max_frequency, unit=unit, **tracking
    )
    v.meta = {"fit": fit_document(model, fitted, calibration, src, penalizer)}
    try:
        paths = v.write(out_dir)
    except OSError as e:
        fail(f"--out {out_dir}: {e}")
    if json_out:
        emit_json({**v.to_dict(), "files": {k: str(p) for k, p in paths.items()}})
        return
    _print_fit(v.meta["fit"])
    e = v.errors
    out.print(
        f"Holdout: {e['actual_purchases']:,.0f} purchases, the model expected "
        f"{e['expected_purchases']:,.1f} ({e['aggregate_error_pct']:+.1f}%); per customer "
        f"MAE {e['mae']:.3f}, RMSE {e['rmse']:.3f}"
    )
    for p in paths.values():
        out.print(f"  wrote {p}")


def _tracking_inputs(inputs: Inputs) -> dict[str, Any]:
    from archer.models import diagnostics
    from archer.models.summary import rfm_summary

    cal = rfm_summary(
        inputs.dated,
        customer_col=inputs.customer_col,
        date_col=inputs.date_col,
        calibration_end=inputs.calibration_end,
        unit=inputs.unit,
    )
    first = cal.group_by("first_purchase").aggregate(customers=cal.count()).to_pandas()
    repeats = diagnostics.repeat_purchases_by_day(
        inputs.dated,
        customer_col=inputs.customer_col,
        date_col=inputs.date_col,
        calibration_end=inputs.calibration_end,
        observation_end=inputs.observation_end,
    ).to_pandas()
    return {
        "first_purchases": first,
        "repeats_by_day": repeats,
        "calibration_end": inputs.calibration_end,
        "observation_end": inputs.observation_end,
    }
