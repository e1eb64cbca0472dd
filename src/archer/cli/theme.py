"""`archer theme plan`: the theme plan of a festival — target group, products, stock risk and
send windows (:mod:`archer.themes.planner`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from archer.cli.support import (
    ArcherTyper,
    HomeOpt,
    JsonOpt,
    app,
    day_option,
    emit_json,
    load_home,
    out,
)

theme_app = ArcherTyper(help="Theme campaigns for festivals (see docs/themes.md).",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(theme_app, name="theme")


@theme_app.command("plan")
def plan_cmd(
    festival: Annotated[str, typer.Option(help="The festival: 11.11, 6.18, 12.12, qixi …")],
    words: Annotated[
        list[str] | None,
        typer.Option("--words", help="A hot word (repeat; default: the rising ones)."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=50, help="Products to select.")] = 10,
    as_of: Annotated[str | None, typer.Option(help="Plan as of this day, YYYY-MM-DD.")] = None,
    create: Annotated[
        str | None, typer.Option(help="Create the plan as a draft broadcast of this name.")
    ] = None,
    channel: Annotated[str, typer.Option(help="The broadcast's channel: email or sms.")] = "email",
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="The broadcast's holdout share.")
    ] = 0.1,
    confirm_oversell: Annotated[
        bool,
        typer.Option(
            "--confirm-oversell",
            help="Create it even if the selection may oversell (recorded with the broadcast).",
        ),
    ] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Suggest the target group, products, stock risk and send windows of a festival theme."""
    from archer.themes import plan

    day = day_option(as_of, "--as-of")
    ws = load_home(home)
    doc = plan(ws, festival, words, as_of=day, top=top)
    if create:
        from archer.themes.broadcast import create_broadcast

        doc["broadcast"] = create_broadcast(
            ws, doc, create, user="cli", channel=channel, holdout=holdout,
            confirm_oversell=confirm_oversell,
        )  # fmt: skip
    if json_out:
        emit_json(doc)
        return
    t = doc["target"]
    e = doc["evidence"]
    out.print(f"Theme {escape(festival)} {t['start']} … {t['end']} (evidence "
              f"{e['start']} … {e['end']})", highlight=False)  # fmt: skip
    for n in doc["notes"]:
        out.print(f"Note: {escape(n)}", highlight=False)
    out.print(f"Words: {escape(', '.join(doc['words']) or '—')}; categories: "
              f"{escape(', '.join(doc['categories']) or '—')}", highlight=False)  # fmt: skip
    g = doc["group"]
    out.print(f"Target group ({g['count']:,}; e-mail {g['reach']['email']:,}, SMS "
              f"{g['reach']['sms']:,}):\n  {escape(g['query'])}", highlight=False)  # fmt: skip
    tab = RichTable(title="Products")
    for col in ("product", "category", "band", "conv.", "margin", "discount", "margin left",
                "stock", "expected", "risk"):  # fmt: skip
        tab.add_column(col)
    for p in doc["products"]:
        lo, hi = p["units_interval"]
        tab.add_row(escape(p["product_id"]), escape(p["category"]), p["price_band"],
                    f"{100 * p['conversion']:.0f}%", f"{100 * p['margin']:.0f}%",
                    f"{100 * p['discount_depth']:.0f}%",
                    "—" if p["margin_left"] is None else f"{100 * p['margin_left']:.0f}%",
                    "—" if p["stock"] is None else f"{p['stock']:,}",
                    f"{p['expected_units']:.1f} ({lo:.0f}–{hi:.0f})", p["risk"])  # fmt: skip
    out.print(tab)
    for w in doc["send_windows"]:
        out.print(f"Send {w['channel']} at {w['at']}", highlight=False)
    if create:
        out.print(f"Broadcast {escape(create)} created as a draft (holdout {holdout:.0%}).",
                  highlight=False)  # fmt: skip
