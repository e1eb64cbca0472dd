"""`archer measure experiment`: the report of an arm-level test a shop ran elsewhere.

The work is :func:`archer.measurement.experiment.report`'s; this module parses the options and
renders the report as two tables (the arms; each arm against the control) or as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table as RichTable

from archer.cli.support import ArcherTyper, app, emit_json, fail, out

measure_app = ArcherTyper(
    help="Measure: what a test or a campaign earned, with intervals.", no_args_is_help=True
)
app.add_typer(measure_app, name="measure")

FORMATS = ("table", "json")


@measure_app.command("experiment")
def experiment(
    file: Annotated[
        Path, typer.Argument(help="The test's file (CSV or Parquet), a row per customer.")
    ],
    arm_col: Annotated[str, typer.Option("--arm-col", help="Column of each customer's arm.")],
    control: Annotated[str, typer.Option("--control", help="The control arm's value in it.")],
    converted_col: Annotated[
        str,
        typer.Option("--converted-col", help="Column saying whether the customer bought (0/1)."),
    ],
    revenue_col: Annotated[
        str | None, typer.Option("--revenue-col", help="Column of what the customer spent.")
    ] = None,
    level: Annotated[float, typer.Option("--level", help="Confidence level.")] = 0.95,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    json_out: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Compare each arm of a test with its control: conversion and spend per customer, their
    differences with intervals, the minimum detectable effect and a verdict."""
    from archer.measurement.experiment import report

    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: expected table or json")
    got = report(
        file,
        arm_col=arm_col,
        control=control,
        converted_col=converted_col,
        revenue_col=revenue_col,
        level=level,
    )
    if json_out or fmt == "json":
        emit_json(got.to_dict())
        return
    render(got)


def render(r) -> None:
    """The arms, then one table per figure: each arm against the control."""
    pct = f"{r.level:.0%}"
    arms = table(f"{r.source} — control: {r.control}", "arm", "customers", "buyers", "conversion")
    if r.revenue_col:
        for heading in ("spend", "/customer", "/buyer"):
            arms.add_column(heading, justify="right")
    for a in r.arms:
        cells = [a.arm, f"{a.customers:,}", f"{a.buyers:,}", percent(a.conversion)]
        if r.revenue_col:
            cells += [money(a.spend), money(a.spend_per_customer), money(a.spend_per_buyer)]
        arms.add_row(*cells)
    out.print(arms)
    figures = [("conversion", "percentage points", "conversion", points)]
    if r.revenue_col:
        figures.append(("spend per customer", "money", "spend_per_customer", signed))
    for title, unit, attr, show in figures:
        t = table(f"{title} against {r.control} ({unit})",
                  "arm", "difference", f"{pct} interval", "lift", "MDE", "verdict")  # fmt: skip
        for c in r.comparisons:
            d = getattr(c, attr)
            t.add_row(c.arm, show(d.diff), interval(d.low, d.high, show), lift(d.relative),
                      show(d.mde).lstrip("+"), d.verdict)  # fmt: skip
        out.print(t)
    out.print(
        "A fixed-horizon test: read these figures once, at the size planned before the test. "
        "Checking daily and stopping on a good day overstates them.",
        highlight=False,
    )


def table(title: str, *headings: str) -> RichTable:
    t = RichTable(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for h in headings:
        t.add_column(h, justify="left" if h in ("arm", "verdict") else "right", no_wrap=h == "arm")
    return t


def percent(v: float | None) -> str:
    return "–" if v is None else f"{v:.2%}"


def points(v: float | None) -> str:
    """A difference of rates in percentage points."""
    return "–" if v is None else f"{v * 100:+.4f}"


def money(v: float | None) -> str:
    return "–" if v is None else f"{v:,.2f}"


def signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+,.2f}"


def lift(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1%}"


def interval(low: float | None, high: float | None, show) -> str:
    return "–" if low is None or high is None else f"{show(low)} to {show(high)}"
