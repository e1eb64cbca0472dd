"""`archer theme plan`: the theme plan of a festival or a date range — target group, products,
stock risk and send windows (:mod:`archer.themes.planner`), with the operator's own words,
products and target group; `archer theme products`: the catalogue searched for products to
add."""

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
    fail,
    load_home,
    out,
)

theme_app = ArcherTyper(help="Theme campaigns for festivals (see docs/themes.md).",
                        no_args_is_help=True)  # fmt: skip
app.add_typer(theme_app, name="theme")


@theme_app.command("plan")
def plan_cmd(
    festival: Annotated[
        str | None,
        typer.Option(help="The festival: 11.11, 6.18, 12.12, qixi … (or --from/--to)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="A date range instead of a festival: its first day, YYYY-MM-DD."
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="The date range's last day, YYYY-MM-DD.")
    ] = None,
    words: Annotated[
        list[str] | None,
        typer.Option("--words", help="A hot word (repeat; default: the rising ones)."),
    ] = None,
    add: Annotated[
        list[str] | None,
        typer.Option("--add", help="Add this product (id; repeat) whatever its rank."),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="Leave this product (id; repeat) out of the selection."),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="The target group as you edited it (audience language) instead of the suggested.",
        ),
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
    """Suggest the target group, products, stock risk and send windows of a festival theme
    (or of a date range), with your own words, products and target group if given; --create
    makes that same plan a draft broadcast."""
    from archer.audiences import AudienceError
    from archer.cli.audience import language_error
    from archer.themes import plan

    if festival and (start or end):
        fail("--festival or a date range (--from and --to), not both")
    if not festival and not (start and end):
        fail("choose a festival (--festival) or a date range (both --from and --to)")
    day = day_option(as_of, "--as-of")
    first, last = day_option(start, "--from"), day_option(end, "--to")
    ws = load_home(home)
    try:
        doc = plan(ws, festival, words, start=first, end=last, as_of=day, top=top, add=add,
                   remove=remove, query=query)  # fmt: skip
    except AudienceError as e:  # the operator's group: the message with a caret at the place
        language_error(e, (query or "").strip())
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
    out.print(f"Theme {escape(doc['festival'])} {t['start']} … {t['end']} (evidence "
              f"{e['start']} … {e['end']})", highlight=False)  # fmt: skip
    for n in doc["notes"]:
        out.print(f"Note: {escape(n)}", highlight=False)
    out.print(f"Words: {escape(', '.join(doc['words']) or '—')}; categories: "
              f"{escape(', '.join(doc['categories']) or '—')}", highlight=False)  # fmt: skip
    g = doc["group"]
    edited = ", edited" if g["edited"] else ""
    out.print(f"Target group ({g['count']:,}{edited}; e-mail {g['reach']['email']:,}, SMS "
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
    if doc["removed"]:
        out.print(f"Removed: {escape(', '.join(doc['removed']))}", highlight=False)
    for w in doc["send_windows"]:
        out.print(f"Send {w['channel']} at {w['at']}", highlight=False)
    if create:
        out.print(f"Broadcast {escape(create)} created as a draft (holdout {holdout:.0%}).",
                  highlight=False)  # fmt: skip


@theme_app.command("products")
def products_cmd(
    search: Annotated[str, typer.Argument(help="Part of a product's id or name.")],
    limit: Annotated[int, typer.Option(min=1, max=50, help="Products to list.")] = 20,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the catalogue for products to add to a plan (theme plan --add)."""
    from archer.themes.planner import find_products

    ws = load_home(home)
    found = find_products(ws, search, limit=limit)
    if json_out:
        emit_json(found)
        return
    if not found:
        out.print(f"No product's id or name holds {escape(search)!r}.", highlight=False)
        return
    tab = RichTable()
    for col in ("product", "name", "category", "list price", "stock"):
        tab.add_column(col)
    for p in found:
        stock = "—" if p["stock"] is None else f"{p['stock']:,}"
        tab.add_row(escape(p["product_id"]), escape(p["name"] or ""), escape(p["category"] or ""),
                    f"{p['list_price']:,.2f}", stock)  # fmt: skip
    out.print(tab)
