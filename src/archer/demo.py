"""``archer demo``: the whole loop on a fresh synthetic shop.

So far the loop is sample → import → build → count a few audiences; the campaigns and their
results join it as they are built. The demo's clock stands at the end of the sample's last day.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path

import ibis

from archer.audiences import count
from archer.clock import ManualClock
from archer.config import init_workspace
from archer.errors import Invalid
from archer.facts import Snapshot
from archer.ingest.importer import import_file
from archer.pipeline import build
from archer.sample import generate
from archer.schema import LOAD_ORDER
from archer.status import status
from archer.workspace import Workspace

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


class DemoError(Invalid):
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
    ws = Workspace(
        settings, ManualClock(datetime.combine(DEMO_END, time(23, 59), tzinfo=settings.tz))
    )
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
    now = datetime.combine(DEMO_END, datetime.max.time())  # the import log's stamp
    imports = []
    for table in LOAD_ORDER:
        r = import_file(ws, table, sample_dir / f"{table}.csv", now=now, progress=report)
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
    built = build(ws, DEMO_END, report)
    say(f"    {built.customers:,} profiles in {built.seconds:.1f} s")
    say("4/4 Counting audiences …")
    doc = status(ws)
    doc["imports"] = imports
    doc["highlights"] = highlights(ws, DEMO_END)
    doc["build"] = built.to_dict()
    doc["audiences"] = [{"query": q, "count": count(ws, q)["count"]} for q in DEMO_AUDIENCES]
    ws.close()
    return doc


def highlights(ws: Workspace, as_of: date) -> dict[str, str]:
    """A few facts about the shop, in words: paid and net as :mod:`archer.facts` defines them."""
    with ws.warehouse() as wh:
        snap = Snapshot.at(wh, as_of, ws.tz, today=ws.today())
        f = snap.order_facts()
        paid = f.filter(f.is_paid)
        per_buyer = (
            paid.filter(paid.customer_id.notnull())
            .group_by("customer_id")
            .aggregate(n=ibis._.count())
        )
        figures = (
            paid.aggregate(
                orders=paid.count(),
                revenue=paid.amount.sum(),
                refunded=paid.refunded.sum(),
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
        unpaid = int(f.filter(~f.is_paid & f.cancelled_at.isnull()).count().execute())
    revenue = float(figures["revenue"] or 0)
    refunded = float(figures["refunded"] or 0)
    repeat = buyers["repeat"] / buyers["buyers"] if buyers["buyers"] else 0.0
    currency = ws.settings.currency
    return {
        "paid orders": f"{figures['orders']:,} from {figures['first']:%Y-%m-%d} "
        f"to {figures['last']:%Y-%m-%d}",
        "revenue": f"{revenue:,.2f} {currency} (refunded {refunded:,.2f})",
        "buyers": f"{buyers['buyers']:,}, of whom {repeat:.0%} bought again",
        "orders waiting for payment": f"{unpaid:,}",
    }
