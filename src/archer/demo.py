"""``archer demo``: the whole loop on a fresh synthetic shop.

The loop: sample → import → build → count a few audiences → run campaigns → let the shop
answer them → measure. The campaigns run over the sample's last 40 days on a manual clock, a
round every six hours: the unpaid-order reminders (a flow keyed per order) and a broadcast with
a coupon to lapsing customers of high value, sending real e-mail to a local mail server the demo
starts (kept in ``<home>/mail``, a Maildir). Then the shop that responds
(:mod:`archer.sample.simulate`) carries the shop on for two weeks, its members answering the
campaigns by their latent traits, and each campaign's results are read against its holdout.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import ibis

from archer.audiences import count
from archer.campaigns import service as campaigns
from archer.clock import ManualClock
from archer.config import SmtpSettings, init_workspace
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
DEMO_DAYS = 40  # the campaigns run over the sample's last days: long enough for a 30-day step
DEMO_AFTER = 14  # then the shop goes on this many days, answering them


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

    say(f"1/6 Writing a synthetic shop of {customers:,} customers (seed {seed}) …")
    sample_dir = home / "sample"
    generate(
        sample_dir,
        customers=customers,
        seed=seed,
        end=DEMO_END,
        progress=lambda stage, frac: report(f"sample: {stage}", int(frac * 100), 100),
    )
    say("2/6 Importing it, table by table …")
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
    say("3/6 Building the customer profile …")
    built = build(ws, DEMO_END, report)
    say(f"    {built.customers:,} profiles in {built.seconds:.1f} s")
    say("4/6 Counting audiences …")
    doc = status(ws)
    doc["imports"] = imports
    doc["highlights"] = highlights(ws, DEMO_END)
    doc["build"] = built.to_dict()
    doc["audiences"] = [{"query": q, "count": count(ws, q)["count"]} for q in DEMO_AUDIENCES]
    ws.close()
    say(f"5/6 Running campaigns over the last {DEMO_DAYS} days, e-mail to a local mail server …")
    doc["campaigns"] = run_campaigns(ws, say)
    if "campaigns" in doc["campaigns"]:
        say(f"6/6 The shop goes on for {DEMO_AFTER} days, its members answering the campaigns; "
            "what each earned over its holdout …")  # fmt: skip
        doc["results"] = measure(ws, say)
    return doc


def measure(ws: Workspace, say: Callable[[str], None] = lambda m: None) -> dict:
    """Simulate the shop's next days (:mod:`archer.sample.simulate`) and read each campaign's
    results against its holdout, beside the truth the simulator wrote."""
    from archer.measurement.results import results
    from archer.sample.simulate import simulate

    until = DEMO_END + timedelta(days=DEMO_AFTER)
    later = Workspace(ws.settings, ManualClock(datetime.combine(until, time(23, 59),
                                                                tzinfo=ws.tz)))  # fmt: skip
    sim = simulate(later, until).to_dict()
    out: dict = {"simulated": {k: sim[k] for k in ("until", "orders", "paid_late", "refunds")}}
    for name in ("unpaid-reminders", "win-back-vip"):
        r = results(later, name).to_dict()
        truth = sim["campaigns"].get(name, {})
        r["true_uplift"] = truth.get("true_uplift")
        out[name] = r
        t, h, c = r["arms"]["treatment"], r["arms"]["holdout"], r["uplift"]["conversion"]
        say(f"    {name:<17} buyers {_pct(t['conversion'])} of {t['runs']:,} treated vs "
            f"{_pct(h['conversion'])} of {h['runs']:,} held out: "
            + ("no holdout to compare with" if c is None or c["diff"] is None else
               f"{c['diff'] * 100:+.1f} pts (95% {c['low'] * 100:+.1f} to {c['high'] * 100:+.1f})"
               f" — {c['verdict']}" + _below_mde(c)))  # fmt: skip
        if truth and c is not None and c["low"] is not None:
            true = truth["true_uplift"]
            covers = c["low"] <= true <= c["high"]
            say(f"    {'':<17} the simulator's true uplift: {true * 100:+.1f} pts — "
                + ("inside the interval" if covers else "outside the interval: a 95% interval "
                   "misses the truth about one time in twenty"))  # fmt: skip
        igp = r["incremental_gross_profit"]
        roi = "—" if r["roi"] is None else f"{r['roi']:.2f}"
        say(f"    {'':<17} sales {t['sales']:,.2f} vs {h['sales']:,.2f}; incremental gross profit "
            f"{'—' if igp is None else f'{igp:,.2f}'}, promotion cost "
            f"{t['promotion_cost']:,.2f}, ROI {roi}")  # fmt: skip
    later.close()
    return out


def run_campaigns(ws: Workspace, say: Callable[[str], None] = lambda m: None) -> dict:
    """The unpaid-order flow and a broadcast, sent to a local mail server; what went out,
    what was held back, and why."""
    try:
        from archer.messaging.sink import MailSink
    except ImportError:  # aiosmtpd is not installed: the shop's inbox only
        return {"skipped": "install aiosmtpd (the test extras) to see the demo's e-mail"}
    with MailSink(ws.home / "mail") as sink:
        start = datetime.combine(DEMO_END - timedelta(days=DEMO_DAYS), time(0), tzinfo=ws.tz)
        clock = ManualClock(start)
        mail = ws.settings.model_copy(update={
            "smtp": SmtpSettings(host=sink.host, port=sink.port, security="none",
                                 sender="Archer demo shop <news@demo.archer.test>"),
        })  # fmt: skip
        cws = Workspace(mail, clock)
        flow = campaigns.template("unpaid-reminders")
        campaigns.create(cws, flow, user="demo", template_name="unpaid-reminders", start=True)
        broadcast = campaigns.apply_settings(campaigns.template("newsletter"), [
            "name=win-back-vip",
            "trigger.audience='lifecycle in (\"lapsing\", \"lost\") and "
            "value_tier in (\"top\", \"high\")'",
            f"send_at={DEMO_END - timedelta(days=2)}T10:00:00",
            f"send_until={DEMO_END - timedelta(days=1)}T10:00:00",
            "steps.news.subject=好久不见，{{ customer.name or '' }}：送您{{ coupon.label }}",
        ])  # fmt: skip
        from archer.offers import coupons

        coupons.define(cws, "comeback-20", kind="threshold", threshold=99, amount=20,
                       valid_days=14)  # fmt: skip
        broadcast["steps"].insert(0, {"id": "give", "type": "coupon", "template": "comeback-20"})
        news = broadcast["steps"][1]
        news["text"] = news["text"].rstrip() + (
            "\n\n您的{{ coupon.label }}券：{{ coupon.code }}（{{ coupon.expires }} 前有效）\n"
        )
        campaigns.create(cws, broadcast, user="demo", template_name="newsletter", start=True)
        end = datetime.combine(DEMO_END, time(23, 59), tzinfo=ws.tz)
        rounds = 0
        while clock.now() <= end:
            campaigns.run_round(cws)
            rounds += 1
            clock.advance(hours=6)
        cws.close()
        out = {"rounds": rounds, "mailbox": str(sink.folder), "received": sink.received}
        out["campaigns"] = [
            {k: c[k] for k in ("name", "kind", "enrolled", "holdout", "sent", "held_back",
                               "skipped", "planned", "failed", "coupons_issued",
                               "points_awarded")}
            | {"skipped_by_reason": c["ledger"]["skipped"],
               "sent_by_step": {st: v.get("sent", 0) for st, v in
                                c["ledger"]["messages"].get("treatment", {}).items()}}
            for c in (campaigns.get(cws, n) for n in ("unpaid-reminders", "win-back-vip"))
        ]  # fmt: skip
    for c in out["campaigns"]:
        reasons = ", ".join(
            f"{k} {v:,}" for k, v in c["skipped_by_reason"].items() if k != "holdout"
        )
        say(f"    {c['name']:<17} enrolled {c['enrolled']:,}, sent {c['sent']:,}, held back "
            f"{c['held_back']:,} (holdout), skipped {c['skipped']:,}"
            + (f" ({reasons})" if reasons else "")
            + (f"; {c['coupons_issued']:,} coupons, {c['points_awarded']:,} points given"
               if c["coupons_issued"] or c["points_awarded"] else ""))  # fmt: skip
    ladder = out["campaigns"][0]["sent_by_step"]
    say("    unpaid ladder, sent per step: " + ", ".join(f"{k} {v:,}" for k, v in ladder.items()))
    say(f"    the local mail server received {out['received']:,} messages: {out['mailbox']}")
    return out


def _below_mde(c: dict) -> str:
    """Why a difference whose interval leaves out 0 is still not called: it is smaller than
    what a test of this size can detect (measurement.stats.verdict)."""
    if c["low"] is None or c["low"] <= 0.0 <= c["high"] or c["mde"] is None:
        return ""
    if abs(c["diff"]) >= c["mde"]:
        return ""
    return f": below the {c['mde'] * 100:.1f} pts this size can detect"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


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
