"""`archer funnel`, `archer cohorts`, `archer affinities`, `archer kpis`: the shop-level views.

Each command parses its options, calls one report of :mod:`archer.analytics.reports` and renders
it as a Rich table, or as one JSON document with ``--json``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from archer.cli.support import HomeOpt, JsonOpt, app, day_option, emit_json, fail, load_home, out

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Look at the shop as of the end of this local day, YYYY-MM-DD "
        "(default: the day of the latest order or event).",
    ),
]  # fmt: skip


def _run(report, *args, **kw) -> dict:
    """Call a report, turning bad options and warehouse trouble into a clean error."""
    from archer.warehouse import WarehouseError

    try:
        return report(*args, **kw)
    except (ValueError, WarehouseError) as e:
        fail(str(e))
        raise


def _show(t: RichTable) -> None:
    """Print a table at its natural width, so no number is cut short on a narrow console."""
    natural = out.measure(t, options=out.options.update_width(10_000)).maximum
    if natural <= out.width:
        out.print(t)
        return
    wide = Console(
        file=out.file,
        width=natural,
        soft_wrap=True,
        force_terminal=out.is_terminal,
        color_system=out.color_system,
    )
    wide.print(t)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:,.{digits}f}"


@app.command()
def funnel(
    by: Annotated[
        str | None,
        typer.Option(help="Split by 'channel' (acquisition channel) or 'month' (registration)."),
    ] = None,
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Lifecycle funnel: visit → registration → product view → cart → order → payment →
    repeat purchase; each step's people who reached it (did it or a later step) and, for
    visit, view and cart, who did it. Steps the imported data cannot tell are shown as —."""
    from archer.analytics.funnel import DID, STEPS, funnel_steps
    from archer.analytics.reports import funnel_report

    doc = _run(funnel_report, load_home(home), day_option(as_of, "--as-of"), by)
    if json_out:
        emit_json(doc)
        return
    if by is None:
        t = RichTable(title=f"Lifecycle funnel as of {doc['as_of']}")
        for col in ("step", "reached", "did it", "step conversion", "overall conversion"):
            t.add_column(col, justify="left" if col == "step" else "right")
        row = doc["rows"][0] if doc["rows"] else {}
        for st in funnel_steps(row) if doc["rows"] else []:
            did = _count(st["did"]) if st["step"] in DID else ""
            t.add_row(st["step"], _count(st["count"]), did,
                      _pct(st["step_conversion"]), _pct(st["overall_conversion"]))  # fmt: skip
        _show(t)
        if doc["rows"]:
            out.print(
                f"Net sales {_num(row['net_sales'])}; per registered customer "
                f"{_num(row['per_capita'])}.",
                highlight=False,
            )
        for note in doc["notes"]:
            out.print(f"Note: {note}.", highlight=False)
        return
    t = RichTable(title=f"Lifecycle funnel by {by} as of {doc['as_of']} (step conversion)")
    t.add_column(by, no_wrap=True)
    t.add_column("visitors", justify="right")
    for col in STEPS[1:]:
        t.add_column(col, justify="right")
    t.add_column("per capita", justify="right")
    for r in doc["rows"]:
        cells = [_pct(r[f"{s}_rate"]) for s in STEPS[1:]]
        t.add_row(r["group"], _count(r["visitors"]), *cells, _num(r["per_capita"]))
    _show(t)
    for note in doc["notes"]:
        out.print(f"Note: {note}.", highlight=False)


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


@app.command()
def cohorts(
    by: Annotated[
        str,
        typer.Option(help="Cohort by 'first_purchase' month (default) or 'registration' month."),
    ] = "first_purchase",
    months: Annotated[
        int, typer.Option(min=0, help="Months since acquisition to show (0 … N).")
    ] = 12,
    show: Annotated[
        str,
        typer.Option(
            help="Cells of the table: 'retention' (% active) or 'revenue' "
            "(cumulative net revenue per customer)."
        ),
    ] = "retention",
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Monthly acquisition cohorts: retention and net revenue by month since acquisition."""
    from archer.analytics.reports import cohorts_report

    if show not in ("retention", "revenue"):
        fail(f"--show {show!r}: expected retention or revenue")
    doc = _run(cohorts_report, load_home(home), day_option(as_of, "--as-of"), by, months)
    if json_out:
        emit_json(doc)
        return
    cells: dict[str, dict[int, dict]] = {}
    for r in doc["rows"]:
        cells.setdefault(r["cohort"][:7], {})[r["months_since"]] = r
    what = "retention" if show == "retention" else "cumulative net revenue per customer"
    t = RichTable(title=f"Cohorts by {by.replace('_', ' ')} month as of {doc['as_of']}: {what}")
    t.add_column("cohort", no_wrap=True)
    t.add_column("size", justify="right")
    for k in range(months + 1):
        t.add_column(f"+{k}", justify="right")
    for cohort, row in cells.items():
        size = next(iter(row.values()))["cohort_size"]
        vals = []
        for k in range(months + 1):
            r = row.get(k)
            if r is None:
                vals.append("")
            elif show == "retention":
                vals.append(_pct(r["retention"]))
            else:
                vals.append(_num(r["cumulative_revenue_per_customer"], 0))
        t.add_row(cohort, f"{size:,}", *vals)
    _show(t)


@app.command()
def affinities(
    level: Annotated[str, typer.Option(help="'category' or 'product' pairs.")] = "category",
    scope: Annotated[
        str | None,
        typer.Option(
            help="'order' (bought in one order; the default for pairs) or 'customer' (by one "
            "customer within --window; the default with --recommend)."
        ),
    ] = None,
    window: Annotated[
        int, typer.Option(min=0, help="Days apart two purchases may be, with --scope customer.")
    ] = 30,
    min_support: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Smallest share of transactions with the pair.")
    ] = 0.001,
    limit: Annotated[int, typer.Option(min=0, help="Rows to show (0 = all).")] = 20,
    recommend: Annotated[
        bool,
        typer.Option(
            "--recommend",
            help="Show each customer's next categories to recommend instead of the pairs "
            "(with --top, --customer).",
        ),
    ] = False,
    top: Annotated[int, typer.Option(min=1, help="Categories per customer with --recommend.")] = 3,
    customer: Annotated[
        str | None, typer.Option(help="With --recommend: only this customer id.")
    ] = None,
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Basket affinities: pairs bought together with support, confidence and lift."""
    from archer.analytics.reports import affinities_report, recommendations_report

    s, day = load_home(home), day_option(as_of, "--as-of")
    if recommend:
        doc = _run(
            recommendations_report, s, day, top, scope or "customer", window, min_support, customer,
            limit or None,
        )  # fmt: skip
        if json_out:
            emit_json(doc)
            return
        t = RichTable(title=f"Next categories to recommend as of {doc['as_of']}")
        for col, just in (("customer", "left"), ("rank", "right"), ("category", "left"),
                          ("because they bought", "left"), ("lift", "right"),
                          ("confidence", "right")):  # fmt: skip
            t.add_column(col, justify=just)
        for r in doc["rows"]:
            t.add_row(r["customer_id"], str(r["rank"]), r["category"], r["because"],
                      _num(r["lift"]), _pct(r["confidence"]))  # fmt: skip
        _show(t)
        return
    scope = scope or "order"
    doc = _run(affinities_report, s, day, level, scope, window, min_support, limit or None)
    if json_out:
        emit_json(doc)
        return
    how = "in one order" if scope == "order" else f"by one customer within {window} days"
    level = doc["level"]
    t = RichTable(title=f"{level.capitalize()} pairs bought {how}, as of {doc['as_of']}")
    for col in ("A", "B", "pairs", "support", "confidence A→B", "lift"):
        t.add_column(col, justify="left" if col in ("A", "B") else "right")
    for r in doc["rows"]:
        a, b = r["antecedent"], r["consequent"]
        if level == "product":  # names, with the id to tell two of one name apart
            a = f"{r['antecedent_name']} ({a})" if r.get("antecedent_name") else a
            b = f"{r['consequent_name']} ({b})" if r.get("consequent_name") else b
        t.add_row(a, b, f"{r['pair_count']:,}",
                  _pct(r["support"]), _pct(r["confidence"]), _num(r["lift"]))  # fmt: skip
    _show(t)
    for note in doc["notes"]:
        out.print(f"Note: {note}.", highlight=False)


@app.command()
def kpis(
    grain: Annotated[str, typer.Option(help="Period: day, week (Monday–Sunday) or month.")] = (
        "month"
    ),
    last: Annotated[int, typer.Option(min=0, help="Only the last N periods (0 = all).")] = 0,
    as_of: AsOfOpt = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """KPIs over time: registrations, buyers, orders, net sales, repeat rate, AOV, refunds."""
    from archer.analytics.reports import kpis_report

    doc = _run(kpis_report, load_home(home), day_option(as_of, "--as-of"), grain, last or None)
    if json_out:
        emit_json(doc)
        return
    t = RichTable(title=f"KPIs by {grain} as of {doc['as_of']}")
    cols = ("period", "regist.", "new", "active", "repeat", "orders", "net sales", "AOV",
            "refunds")  # fmt: skip
    t.add_column(cols[0], no_wrap=True)
    for col in cols[1:]:
        t.add_column(col, justify="right")
    for r in doc["rows"]:
        period = r["period"] + (" *" if r["partial"] else "")
        t.add_row(period, f"{r['registrations']:,}", f"{r['new_buyers']:,}",
                  f"{r['active_buyers']:,}", _pct(r["repeat_rate"]), f"{r['orders']:,}",
                  _num(r["net_sales"], 0), _num(r["aov"]), _pct(r["refund_rate"]))  # fmt: skip
    _show(t)
    out.print(
        "new/active: buyers; repeat: share of active buyers who had bought on an earlier day; "
        "refunds: share of gross sales refunded.",
        highlight=False,
    )
    if any(r["partial"] for r in doc["rows"]):
        out.print("* the as-of day does not close this period")
