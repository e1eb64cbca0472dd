"""`archer clv fit` and `archer clv validate`: customer-base models on a file or a workspace.

Both read a transaction log (``--transactions``), a ready summary (``--summary``) or the
workspace's own paid orders (``--home``), fit the chosen model on the distinct patterns with
their counts, and print the parameters named as in the papers; ``validate`` also checks the fit
against a holdout period and writes the diagnostics. The work is :mod:`archer.models.fit`'s;
this module parses the options and renders the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from archer.cli.support import (
    ArcherTyper,
    JsonOpt,
    app,
    day_option,
    emit_json,
    err,
    fail,
    load_home,
    out,
)
from archer.models import fit as core

clv_app = ArcherTyper(
    help="Customer-base models: fit BG/NBD and friends, validate them on a holdout.",
    no_args_is_help=True,
)
app.add_typer(clv_app, name="clv")

models = core.models

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
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Fit on this workspace's own paid orders (net of refunds, one purchase per day).",
    ),
]
SkipBlankOpt = Annotated[
    bool,
    typer.Option(
        "--skip-blank",
        help="Leave out transactions with a blank customer id or date (counted in the output) "
        "instead of refusing the file.",
    ),
]
PenalizerOpt = Annotated[
    float, typer.Option("--penalizer", min=0.0, help="L2 penalty on the parameters.")
]


def _request(
    model: str,
    transactions: Path | None,
    summary: Path | None,
    home: Path | None,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    skip_blank: bool,
    calibration_end: str | None,
    observation_end: str | None,
    unit: str,
    penalizer: float,
) -> core.FitRequest:
    given = [o for o, v in (("--transactions", transactions), ("--summary", summary),
                            ("--home", home)) if v is not None]  # fmt: skip
    if len(given) != 1:
        fail("give one of --transactions FILE, --summary FILE or --home DIR")
    source: core.Source
    if transactions is not None:
        source = core.TransactionsFile(transactions, customer_col, date_col, amount_col, skip_blank)
    elif summary is not None:
        source = core.SummaryFile(summary)
    else:
        source = core.WorkspaceOrders(load_home(home))
    return core.FitRequest(
        source=source,
        model=model,
        unit=unit,
        calibration_end=day_option(calibration_end, "--calibration-end"),
        observation_end=day_option(observation_end, "--observation-end"),
        penalizer=penalizer,
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
    skipped = doc.get("skipped")
    if skipped:
        where = skipped.get("first_lines") or skipped.get("first_rows")
        err.print(
            f"[bold yellow]note:[/] left out {skipped['blank_customer']:,} rows with a blank "
            f"customer id and {skipped['blank_date']:,} with a blank date (first: "
            f"{', '.join(map(str, where))})",
            highlight=False,
        )
    if not doc["converged"]:
        err.print(f"[bold yellow]warning:[/] the fit did not converge: {doc['message']}")


@clv_app.command("fit")
def fit_cmd(
    model: ModelOpt = "bgnbd",
    transactions: TransactionsOpt = None,
    summary: SummaryOpt = None,
    home: HomeOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    date_col: DateColOpt = "date",
    amount_col: AmountColOpt = None,
    skip_blank: SkipBlankOpt = False,
    calibration_end: CalibrationEndOpt = None,
    observation_end: ObservationEndOpt = None,
    unit: UnitOpt = "week",
    penalizer: PenalizerOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Fit a model by maximum likelihood; print its parameters, standard errors, fit figures."""
    req = _request(
        model, transactions, summary, home, customer_col, date_col, amount_col, skip_blank,
        calibration_end, observation_end, unit, penalizer,
    )  # fmt: skip
    doc = core.fit(req).to_dict()  # a ClvError is the command's error (cli/support.py)
    _answer(json_out, doc, doc)


@clv_app.command("validate")
def validate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and figures.json.")],
    model: ModelOpt = "bgnbd",
    transactions: TransactionsOpt = None,
    summary: SummaryOpt = None,
    home: HomeOpt = None,
    customer_col: CustomerColOpt = "customer_id",
    date_col: DateColOpt = "date",
    skip_blank: SkipBlankOpt = False,
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
    req = _request(
        model, transactions, summary, home, customer_col, date_col, None, skip_blank,
        calibration_end, observation_end, unit, penalizer,
    )  # fmt: skip
    v = core.validate(req, max_frequency=max_frequency)
    try:
        paths = v.write(out_dir)
    except OSError as e:
        fail(f"--out {out_dir}: {e}")
        raise
    doc = {**v.to_dict(), "files": {k: str(p) for k, p in paths.items()}}
    _answer(json_out, doc, v.fit.to_dict(), _holdout(v.errors, paths))


def _answer(
    json_out: bool, doc: dict[str, Any], fit: dict[str, Any], more: Iterable[str] = ()
) -> None:
    """``doc`` as JSON with ``--json``; otherwise the ``fit`` in a table, then ``more`` lines."""
    if json_out:
        emit_json(doc)
        return
    _print_fit(fit)
    for line in more:
        out.print(line)


def _holdout(e: dict[str, float], paths: dict[str, Path]) -> Iterator[str]:
    yield (
        f"Holdout: {e['actual_purchases']:,.0f} purchases, the model expected "
        f"{e['expected_purchases']:,.1f} ({_pct(e['aggregate_error_pct'])}); per customer "
        f"MAE {e['mae']:.3f}, RMSE {e['rmse']:.3f}"
    )
    for p in paths.values():
        yield f"  wrote {p}"


def _pct(value: float) -> str:
    """The aggregate error in percent; none without holdout purchases to compare with."""
    return f"{value:+.1f}%" if value == value else "no holdout purchases to compare with"
