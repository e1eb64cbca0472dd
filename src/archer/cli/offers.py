"""`archer coupon …` and `archer points …`: coupon templates, codes and pools; the points
ledger — thin shells over :mod:`archer.offers` (see docs/offers.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from archer.cli.support import ArcherTyper, HomeOpt, JsonOpt, app, emit_json, load_home, out
from archer.errors import Invalid
from archer.offers import coupons, points

coupon_app = ArcherTyper(help="Coupons: templates, codes, pools.", no_args_is_help=True)
points_app = ArcherTyper(help="Points: balances, awards, exchange, expiry.", no_args_is_help=True)
app.add_typer(coupon_app, name="coupon")
app.add_typer(points_app, name="points")

Opt = typer.Option


@coupon_app.command("define")
def define_cmd(
    name: str,
    kind: Annotated[str, Opt("--kind", help="threshold (满减), rate (折) or cash (无门槛).")],
    amount: Annotated[float, Opt("--amount", help="Money saved (threshold, cash).")] = 0,
    threshold: Annotated[float, Opt("--threshold", help="Spend at least (threshold).")] = 0,
    rate: Annotated[float | None, Opt("--rate", help="Share paid, e.g. 0.9 (rate).")] = None,
    max_saving: Annotated[float | None, Opt("--max-saving", help="Cap of a rate coupon.")] = None,
    valid_days: Annotated[
        int | None, Opt("--valid-days", help="Valid this long from issue.")
    ] = None,
    valid_until: Annotated[datetime | None, Opt("--valid-until")] = None,
    per_customer: Annotated[int | None, Opt("--per-customer")] = 1,
    total_limit: Annotated[int | None, Opt("--total-limit")] = None,
    budget: Annotated[
        float | None, Opt("--budget", help="The most all its coupons may save.")
    ] = None,
    category: Annotated[list[str] | None, Opt("--category", help="Only these categories.")] = None,
    pool: Annotated[bool, Opt("--pool", help="Hand out imported codes.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Define a coupon template, checked before it is stored."""
    ws = load_home(home)
    until = valid_until.replace(tzinfo=ws.tz) if valid_until and not valid_until.tzinfo else None
    doc = coupons.define(
        ws, name, kind=kind, amount=amount, threshold=threshold, rate=rate,
        max_saving=max_saving, valid_days=valid_days, valid_until=until,
        per_customer=per_customer, total_limit=total_limit, budget=budget,
        categories=category, codes="pool" if pool else "generated",
    )  # fmt: skip
    emit_json(doc) if as_json else out.print(f"{doc['name']}: {doc['label']}")


@coupon_app.command("list")
def list_cmd(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Coupon templates with what was issued, redeemed and expired."""
    docs = coupons.summary(load_home(home))
    if as_json:
        emit_json(docs)
        return
    t = RichTable("template", "coupon", "issued", "redeemed", "expired", "in pool", "cost")
    for d in docs:
        t.add_row(d["name"], d["label"], f"{d['issued']:,}", f"{d['redeemed']:,}",
                  f"{d['expired']:,}", f"{d['pool']:,}", f"{d['promotion_cost']:,.2f}")  # fmt: skip
    out.print(t)


@coupon_app.command("issue")
def issue_cmd(template: str, customer: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Give one coupon to a customer by hand (limits and budget apply)."""
    doc = coupons.issue_to(load_home(home), template, customer)
    emit_json(doc) if as_json else out.print(f"{doc['code']} for {customer}")


@coupon_app.command("import")
def import_cmd(
    template: str,
    file: Annotated[Path, typer.Argument(help="A text file with one code per line.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a shop's own codes to a pool template; each is handed out once."""
    try:
        if file.stat().st_size > 50_000_000:
            raise Invalid(f"{file}: at most 50 MB of codes at once")
        lines = file.read_text("utf-8").splitlines()
    except OSError as e:
        raise Invalid(f"cannot read {file}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise Invalid(f"{file}: not UTF-8 text") from None
    doc = coupons.import_pool(load_home(home), template, lines)
    emit_json(doc) if as_json else out.print(
        f"{doc['added']:,} codes added ({doc['duplicates']:,} already known)"
    )


@points_app.command("show")
def points_show(customer: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A customer's balance, what expires in 30 days, and the entries."""
    doc = points.account(load_home(home), customer)
    if as_json:
        emit_json(doc)
        return
    out.print(f"{customer}: {doc['balance']:,} points, {doc['expiring_30d']:,} expire in 30 days")
    t = RichTable("at", "kind", "points", "source", "expires")
    for e in doc["entries"][:30]:
        t.add_row(e["at"][:16], e["kind"], f"{e['points']:+,}", e["source"],
                  (e["expires_at"] or "")[:10])  # fmt: skip
    out.print(t)


@points_app.command("award")
def points_award(
    customer: str,
    amount: Annotated[int, typer.Argument(help="Points to give.")],
    days: Annotated[int, Opt("--days", help="Valid this many days.")] = 365,
    note: Annotated[str | None, Opt("--note")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give points by hand (an adjustment, with a note)."""
    doc = points.adjust(load_home(home), customer, amount, days=days, note=note)
    emit_json({"customer_id": doc["customer_id"], "balance": doc["balance"]}) if as_json else (
        out.print(f"{customer}: {doc['balance']:,} points")
    )


@points_app.command("exchange")
def points_exchange(customer: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Exchange points for a cash coupon at the rate of [points]."""
    doc = points.exchange_at_rate(load_home(home), customer)
    emit_json(doc) if as_json else out.print(
        f"{doc['coupon']['code']} ({doc['coupon']['value']:g}); {doc['balance']:,} points left"
    )


@points_app.command("expire")
def points_expire(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Close the lots past their expiry, and expire coupons past theirs."""
    ws = load_home(home)
    doc = {**points.expire(ws), "coupons_expired": coupons.expire(ws)}
    emit_json(doc) if as_json else out.print(
        f"{doc['points']:,} points in {doc['lots']:,} lots expired; "
        f"{doc['coupons_expired']:,} coupons expired"
    )
