"""`archer build` and `archer customer`: build the customer profile and read one."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table as RichTable

from archer.cli.support import HomeOpt, JsonOpt, app, emit_json, load_home, out, progress_bar
from archer.customers.describe import load_profile, sentences
from archer.jobs import Jobs
from archer.pipeline import build as build_profile

AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Build as of the end of this day (YYYY-MM-DD, shop time); default: the day of the "
        "latest order or event.",
    ),
]


@app.command()
def build(home: HomeOpt = None, as_of: AsOfOpt = None, json_out: JsonOpt = False) -> None:
    """Build the customer profile: lifecycle, stage, RFM, preferences, lapse thresholds."""
    ws = load_home(home)
    day = as_of.date() if as_of else None
    with progress_bar(not json_out) as report:

        def work(job_report) -> dict:
            def both(stage: str, done: int, total: int) -> None:
                report(stage, done, total)
                job_report(stage, done, total)

            return build_profile(ws, day, both).to_dict()

        job = Jobs(ws).run("build", work, who=f"cli:{getpass.getuser()}", params={"as_of": day})
    doc = job["result"]
    if json_out:
        emit_json(doc)
        return
    out.print(
        f"Profile built as of {doc['as_of']}: {doc['customers']:,} customers "
        f"in {doc['seconds']:.1f} s"
    )
    for title, key in (("lifecycle", "lifecycle"), ("stage", "stages"), ("RFM", "rfm_segments")):
        t = RichTable(title=title, title_justify="left", show_edge=False)
        t.add_column(title)
        t.add_column("customers", justify="right")
        t.add_column("share", justify="right")
        for name, n in doc[key].items():
            t.add_row(name, f"{n:,}", f"{n / max(doc['customers'], 1):.1%}")
        out.print(t)


@app.command()
def customer(
    customer_id: Annotated[str, typer.Argument(help="The customer's id, as in `customers`.")],
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """One customer's profile in words (or every field with --json)."""
    ws = load_home(home)
    p = load_profile(ws, customer_id)
    if json_out:
        emit_json(p)
        return
    for heading, sentence in sentences(p, ws.settings.currency):
        out.print(f"[bold]{heading:<10}[/]{sentence}", highlight=False)
