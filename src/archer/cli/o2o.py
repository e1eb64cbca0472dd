"""`archer o2o …`: offline group-buy events — the event, sign-ups, check-ins, staged payments
and the funnel per channel; thin shells over :mod:`archer.measurement.o2o` (docs/o2o.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table as RichTable

from archer.cli.campaign import NowOpt, parse_now
from archer.cli.support import ArcherTyper, HomeOpt, JsonOpt, app, emit_json, load_home, out
from archer.errors import Invalid
from archer.measurement import o2o

o2o_app = ArcherTyper(
    help="Offline group-buy events: sign-ups, check-ins, orders (see docs/o2o.md).",
    no_args_is_help=True,
)
event_app = ArcherTyper(help="Events: create, list.", no_args_is_help=True)
signups_app = ArcherTyper(help="Sign-ups by channel.", no_args_is_help=True)
payments_app = ArcherTyper(help="Staged payments (deposit, balance).", no_args_is_help=True)
app.add_typer(o2o_app, name="o2o")
o2o_app.add_typer(event_app, name="event")
o2o_app.add_typer(signups_app, name="signups")
o2o_app.add_typer(payments_app, name="payments")

Opt = typer.Option
EventArg = Annotated[str, typer.Argument(help="The event's name.")]


def _costs(items: list[str] | None) -> dict[str, str]:
    costs: dict[str, str] = {}
    for item in items or []:
        ch, sep, cost = item.partition("=")
        if not sep or not ch.strip():
            raise Invalid(f"--channel {item!r}: expected CHANNEL=COST, e.g. wechat=800")
        costs[ch.strip()] = cost.strip()
    return costs


@event_app.command("create")
def event_create(
    name: str,
    start: Annotated[str, Opt("--start", help="When it opens, e.g. '2026-05-01 09:00'.")],
    end: Annotated[str, Opt("--end", help="When it closes (the shop's time zone).")],
    channel: Annotated[
        list[str] | None,
        Opt("--channel", help="A channel and what it cost in yuan: forum=2000 (repeat it)."),
    ] = None,
    coupon: Annotated[str | None, Opt("--coupon", help="The event's coupon code.")] = None,
    window_days: Annotated[
        int, Opt("--window-days", help="Orders count until this many days after the end.")
    ] = 30,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an event with its channels' costs."""
    doc = o2o.create_event(
        load_home(home),
        name,
        starts=start,
        ends=end,
        channels=_costs(channel),
        coupon=coupon,
        window_days=window_days,
    )
    emit_json(doc) if as_json else out.print(
        f"{doc['name']}: {doc['starts_at'][:16]} to {doc['ends_at'][:16]}, "
        f"{len(doc['channels'])} channels"
    )


@event_app.command("list")
def event_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Events, the latest first, with their sign-ups and scans."""
    docs = o2o.list_events(load_home(home))
    if as_json:
        emit_json(docs)
        return
    if not docs:
        out.print("no events yet: archer o2o event create NAME --start … --end …")
        return
    t = RichTable("event", "starts", "ends", "channels", "coupon", "sign-ups", "scans")
    for d in docs:
        t.add_row(
            d["name"],
            d["starts_at"][:16],
            d["ends_at"][:16],
            ", ".join(d["channels"]),
            d["coupon"] or "",
            f"{d['signups']:,}",
            f"{d['scans']:,}",
        )
    out.print(t)


@signups_app.command("import")
def signups_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or Excel: name, phone, customer id, channel, signed-up time."),
    ],
    event: Annotated[str, Opt("--event", help="The event they signed up for.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import sign-ups; a file with a bad row is refused whole, each problem named."""
    doc = o2o.import_signups(load_home(home), event, file)
    emit_json(doc) if as_json else out.print(
        f"{doc['added']:,} sign-ups added ({doc['already']:,} already signed up, "
        f"{doc['repeated']:,} repeated in the file)"
    )


@payments_app.command("import")
def payments_import(
    file: Annotated[
        Path, typer.Argument(help="CSV or Excel: payment id, order id, amount, paid time, kind.")
    ],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import payments of orders paid in stages (deposit, balance); all rows or none."""
    doc = o2o.import_payments(load_home(home), file)
    emit_json(doc) if as_json else out.print(
        f"{doc['added']:,} payments added ({doc['already']:,} already recorded)"
    )


@o2o_app.command("checkin")
def checkin(
    event: EventArg,
    scan: Annotated[str, Opt("--scan", help="The scan's id (a double scan counts once).")],
    phone: Annotated[str | None, Opt("--phone")] = None,
    customer: Annotated[str | None, Opt("--customer", help="The customer id.")] = None,
    name: Annotated[str | None, Opt("--name")] = None,
    at: Annotated[str | None, Opt("--at", help="When (default: now).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a check-in at the desk, as the check-in API does."""
    doc = o2o.check_in(
        load_home(home), event, scan_id=scan, phone=phone, customer_id=customer, name=name, at=at
    )
    if as_json:
        emit_json(doc)
        return
    again = " (a double scan: counted once)" if doc["duplicate"] else ""
    out.print(f"{doc['scan_id']}: {doc['channel']}{again}")


@o2o_app.command("report")
def report_cmd(
    event: EventArg, now: NowOpt = None, home: HomeOpt = None, as_json: JsonOpt = False
) -> None:
    """The funnel per channel: sign-ups → check-ins → buyers → orders → sales, unit price,
    cost per sign-up, attendee and order."""
    ws = load_home(home)
    doc = o2o.report(ws, event, at=parse_now(now, ws.tz))
    if as_json:
        emit_json(doc)
        return
    out.print(f"{doc['event']['name']} as of {doc['as_of'][:16]}")
    t = RichTable(
        "channel",
        "sign-ups",
        "check-ins",
        "buyers",
        "orders",
        "sales",
        "unit price",
        "cost",
        "per sign-up",
        "per attendee",
        "per order",
    )
    for r in [*doc["channels"], doc["total"]]:
        t.add_row(
            r["channel"],
            *(f"{r[k]:,}" for k in ("signups", "checkins", "buyers", "orders")),
            *(
                _money(r[k])
                for k in (
                    "sales",
                    "unit_price",
                    "cost",
                    "cost_per_signup",
                    "cost_per_attendee",
                    "cost_per_order",
                )
            ),
        )
    out.print(t)


def _money(v: Any) -> str:
    return "–" if v is None else f"{v:,.2f}"
