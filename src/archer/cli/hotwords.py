"""`archer hotwords`: the site-search hot words of a festival window or a period, the words
rising against a baseline, and where each leads (:mod:`archer.analytics.hotwords`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from archer.cli.support import HomeOpt, JsonOpt, app, day_option, emit_json, load_home, out

DayOpt = Annotated[str | None, typer.Option(help="A local day, YYYY-MM-DD.")]


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _leads(items: list[dict], key: str) -> str:
    return ", ".join(escape(str(x[key])) for x in items[:3])


@app.command()
def hotwords(
    festival: Annotated[
        str | None,
        typer.Option(help="A festival's latest window (11.11, 6.18, 12.12, spring_festival …)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    baseline_from: Annotated[
        str | None,
        typer.Option(help="First day of the baseline (default: the same length just before)."),
    ] = None,
    baseline_to: Annotated[str | None, typer.Option(help="Last day of the baseline.")] = None,
    top: Annotated[int, typer.Option(min=1, max=200, help="Words and phrases to list.")] = 20,
    min_count: Annotated[
        int, typer.Option(min=1, help="Fewest searchers a rising word needs in the period.")
    ] = 10,
    as_of: Annotated[
        str | None, typer.Option(help="Look as of this day (default: the latest activity).")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search hot words: top words and phrases, rising words (with a test), where they lead."""
    from archer.analytics.hotwords import hotwords_report

    doc = hotwords_report(
        load_home(home),
        as_of=day_option(as_of, "--as-of"),
        festival=festival,
        start=day_option(start, "--from"),
        end=day_option(end, "--to"),
        baseline_start=day_option(baseline_from, "--baseline-from"),
        baseline_end=day_option(baseline_to, "--baseline-to"),
        top=top,
        min_count=min_count,
    )
    if json_out:
        emit_json(doc)
        return
    p, b = doc["period"], doc["baseline"]
    title = f"{doc['festival']['name']} " if doc["festival"] else ""
    out.print(
        f"{escape(title)}{p['start']} … {p['end']}: {doc['searches']:,} searches by "
        f"{doc['searchers']:,} people; baseline {b['start']} … {b['end']}: "
        f"{doc['baseline_searchers']:,} people. Words cut by {doc['segmenter']}.",
        highlight=False,
    )
    for note in doc["notes"]:
        out.print(f"Note: {escape(note)}", highlight=False)
    for name, rows in (("Rising words", doc["rising"]), ("Top words", doc["words"])):
        if not rows:
            out.print(f"{name}: none.", highlight=False)
            continue
        t = RichTable(title=name)
        for col in ("word", "searchers", "baseline", "lift ≥", "q", "viewed", "bought", "conv.",
                    "leads to"):  # fmt: skip
            t.add_column(col, justify="left" if col in ("word", "leads to") else "right")
        for r in rows:
            low = "—" if r["lift_low"] is None else f"{r['lift_low']:.1f}×"
            t.add_row(escape(r["word"]), f"{r['searchers']:,}", f"{r['baseline_searchers']:,}",
                      low, f"{r['q_value']:.2g}", f"{r['viewers']:,}", f"{r['buyers']:,}",
                      _pct(r["conversion"]), _leads(r["categories"], "category"))  # fmt: skip
        out.print(t)
    if doc["phrases"]:
        t = RichTable(title="Top phrases")
        t.add_column("phrase")
        t.add_column("searchers", justify="right")
        t.add_column("rising")
        for r in doc["phrases"]:
            t.add_row(escape(r["word"]), f"{r['searchers']:,}", "yes" if r["rising"] else "")
        out.print(t)
