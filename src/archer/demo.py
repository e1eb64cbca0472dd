"""``archer demo``: the whole loop on a fresh synthetic shop.

So far the loop is sample → import → build the profile → count a few audiences; later steps
(campaigns, results) join it as they are built.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import ibis

from archer.audiences import count
from archer.config import CONFIG_FILE, init_workspace
from archer.customers.profile import build
from archer.ingest.importer import import_file
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.status import status
from archer.warehouse import Warehouse

MARKER = ".archer-demo"
# What an operator might ask on the first day.
DEMO_AUDIENCES = (
    'lifecycle = "ordered_unpaid" and unpaid_order_age >= 1d',
    'lifecycle in ("lapsing", "lost") and value_tier in ("top", "high") and email_reachable',
    'bought(category = "chocolate", within = 90d) and not bought(category = "chocolate", '
    "within = 14d)",
    'birthday within 7d and stage = "loyal"',
)
DEMO_END = date(2026, 10, 31)


class DemoError(ValueError):
    """The demo would overwrite something that is not a demo workspace."""


def fresh_home(home: Path) -> None:
    """Empty ``home`` for the demo, refusing to touch a real workspace."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise DemoError(
                f"{home} exists and is not a demo workspace; choose another folder with --home"
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by `archer demo`; safe to delete\n", encoding="utf-8")


def run_demo(
    home: Path,
    *,
    customers: int = 5_000,
    seed: int = 7,
    progress: Callable[[str, int, int], None] | None = None,
    say: Callable[[str], None] = lambda m: None,
) -> dict:
    """Sample a shop into ``home/sample``, import every table, and summarise."""
    home = Path(home)
    fresh_home(home)
    settings = init_workspace(home, shop_name="Archer demo shop")
    assert (home / CONFIG_FILE).exists()
    report = progress or (lambda *a: None)

    say(f"1/4 Writing a synthetic shop of {customers:,} customers (seed {seed}) …")
    sample_dir = home / "sample"
    generate(
        sample_dir,
        customers=customers,
        seed=seed,
        end=DEMO_END,
        progress=lambda stage, frac: report(f"sample: {stage}", int(frac * 100), 100),
    )
    say("2/4 Importing it, table by table …")
    now = datetime.combine(DEMO_END, datetime.max.time())
    imports = []
    for table in LOAD_ORDER:
        r = import_file(settings, table, sample_dir / f"{table}.csv", now=now, progress=report)
        imports.append(
            {
                "table": table,
                "rows": r.rows_read,
                "inserted": r.inserted,
                "rejected": r.rejected,
                "seconds": r.seconds,
            }
        )
        say(
            f"    {table:<12} {r.inserted:>10,} rows in {r.seconds:.1f} s"
            + (f", {r.rejected:,} rejected" if r.rejected else "")
        )
    say("3/4 Building the customer profile …")
    built = build(settings, DEMO_END, report)
    say(f"    {built.customers:,} profiles in {built.seconds:.1f} s")
    say("4/4 Counting audiences …")
    doc = status(settings)
    doc["imports"] = imports
    doc["highlights"] = highlights(settings.warehouse_url, settings.currency)
    doc["build"] = built.to_dict()
    doc["audiences"] = [{"query": q, "count": count(settings, q)["count"]} for q in DEMO_AUDIENCES]
    return doc


def highlights(url: str, currency: str) -> dict[str, str]:
    """A few facts about the shop, in words."""
    with Warehouse.connect(url) as wh:
        o = wh.table("orders")
        paid = o.filter(o.paid_at.notnull())
        per_buyer = (
            paid.filter(paid.customer_id.notnull())
            .group_by("customer_id")
            .aggregate(n=ibis._.count())
        )
        figures = (
            paid.aggregate(
                orders=paid.count(),
                revenue=paid.paid_amount.sum(),
                first=paid.created_at.min(),
                last=paid.created_at.max(),
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        buyers = (
            per_buyer.aggregate(
                buyers=per_buyer.count(), repeat=per_buyer.count(where=per_buyer.n > 1)
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        unpaid = int(o.filter(o.paid_at.isnull() & o.cancelled_at.isnull()).count().execute())
        refunded = wh.table("refunds").amount.sum().execute() or 0
    revenue = float(figures["revenue"] or 0)
    repeat = buyers["repeat"] / buyers["buyers"] if buyers["buyers"] else 0.0
    return {
        "paid orders": f"{figures['orders']:,} from {figures['first']:%Y-%m-%d} "
        f"to {figures['last']:%Y-%m-%d}",
        "revenue": f"{revenue:,.2f} {currency} (refunded {float(refunded):,.2f})",
        "buyers": f"{buyers['buyers']:,}, of whom {repeat:.0%} bought again",
        "orders waiting for payment": f"{unpaid:,}",
    }
