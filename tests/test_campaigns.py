"""Campaigns on the sample shop, on a manual clock, sending real e-mail to a local SMTP server.

The scenario: the unpaid-order reminders (1, 7 and 30 days) run for 40 simulated days, a round
every six hours. The truth is read from the shop's own orders table, independently of the
engine: which orders were open when a round looked, when each was paid.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from archer.campaigns import engine, service
from archer.clock import ManualClock
from archer.config import SmtpSettings
from archer.ingest.importer import import_file
from archer.messaging import consent
from archer.messaging.dispatch import Dispatcher
from archer.messaging.sink import MailSink
from archer.store import campaigns as rows
from archer.workspace import Workspace
from support import sample_shop

START = datetime(2026, 9, 15, 0, 0, tzinfo=UTC)
DAYS = 40
WINDOW = "07:30-21:00"  # the campaign's send window, shop time (Asia/Shanghai)
LOW_STOCK = 3  # under the reminders' threshold of 10 (the abandoned cart's)

pytestmark = pytest.mark.xdist_group("campaign-shop")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaigns")
    clock = ManualClock(START)
    ws = sample_shop(root, customers=4000, seed=11, clock=clock, as_of=START.date())
    return ws, clock


def _run_low(ws: Workspace, folder) -> None:
    """Every other product of the orders of the scenario's days runs low (stock 3, an import
    of the catalogue), so some reminders have a product to name as running low, some not."""
    with ws.warehouse() as wh:
        o = wh.table("orders").execute()
        items = wh.table("order_items").execute()
        products = wh.table("products").execute()
    created = _utc(o.created_at)
    mine = o.order_id[(created >= START - timedelta(days=2)) & (created <= START + timedelta(DAYS))]
    pids = sorted(set(items.product_id[items.order_id.isin(mine)]))[::2]
    path = folder / "products.csv"
    products[products.product_id.isin(pids)].assign(stock=LOW_STOCK).to_csv(path, index=False)
    r = import_file(ws, "products", path, now=ws.now().replace(tzinfo=None))
    assert r.rejected == 0 and r.updated + r.unchanged == len(pids), r


@pytest.fixture(scope="module")
def scenario(shop, tmp_path_factory):
    ws, clock = shop
    _run_low(ws, tmp_path_factory.mktemp("stock"))
    with MailSink(tmp_path_factory.mktemp("mail")) as sink:
        settings = ws.settings.model_copy(update={
            "smtp": SmtpSettings(host=sink.host, port=sink.port, security="none",
                                 sender="Shop <news@shop.test>"),
            "campaigns": ws.settings.campaigns.model_copy(update={"consent": "opt_out"}),
        })  # fmt: skip
        cws = Workspace(settings, clock)
        flow = service.template("unpaid-reminders")
        raw = service.apply_settings(flow, [f'windows=["{WINDOW}"]'])
        service.create(cws, raw, user="test", start=True)
        looked: list[datetime] = []
        reports = []
        for _ in range(DAYS * 4):
            looked.append(clock.now())
            reports.append(service.run_round(cws))
            clock.advance(hours=6)
        mails = list(sink.box)
    return cws, looked, reports, mails


def _orders(ws: Workspace) -> pd.DataFrame:
    with ws.warehouse() as wh:
        return wh.table("orders").execute()


def _ledger(ws: Workspace):
    with ws.session() as s:
        runs = pd.DataFrame(
            [
                {"id": e.id, "customer_id": e.customer_id, "key": e.trigger_key, "arm": e.arm,
                 "state": e.state, "end_reason": e.end_reason, "next_run_at": e.next_run_at}
                for e in s.scalars(select(rows.Enrollment))
            ]
        )  # fmt: skip
        msgs = pd.DataFrame(
            [
                {"uid": m.uid, "enrollment_id": m.enrollment_id, "step": m.step, "arm": m.arm,
                 "state": m.state, "reason": m.reason, "sent_at": m.sent_at, "due_at": m.due_at,
                 "address": m.address}
                for m in s.scalars(select(rows.Message))
            ]
        )  # fmt: skip
    return runs, msgs


def _utc(col: pd.Series) -> pd.Series:
    return pd.to_datetime(col, utc=True)


def test_each_unpaid_order_is_enrolled_once_and_only_those(scenario):
    ws, looked, reports, _ = scenario
    runs, _ = _ledger(ws)
    o = _orders(ws)
    o = o[o.customer_id.notna()]
    created, paid = _utc(o.created_at), _utc(o.paid_at)
    cancelled = _utc(o.cancelled_at)
    expected = set()
    for t in looked:  # open when a round looked, created within the 2-day lookback
        open_ = (
            (created <= t)
            & (created >= t - timedelta(days=2))
            & (paid.isna() | (paid > t))
            & (cancelled.isna() | (cancelled > t))
            & ~(o.status.isin(["paid", "shipped", "completed", "refunded"]) & paid.isna())
            & (o.status != "cancelled")
        )
        expected |= set(o.order_id[open_])
    assert len(expected) > 40  # the scenario means something
    assert not runs.duplicated(["key"]).any()  # the same order is never enrolled twice
    assert set(runs.key) == expected
    two = runs.groupby("customer_id").key.nunique()
    assert (two >= 2).any()  # a customer with two unpaid orders is enrolled twice
    assert sum(r["enrolled"] for r in reports) == len(runs)


def test_holdout_subjects_are_enrolled_and_never_messaged(scenario):
    ws, _, _, mails = scenario
    runs, msgs = _ledger(ws)
    held = runs[runs.arm == "holdout"]
    assert 0.04 < len(held) / len(runs) < 0.2
    hm = msgs[msgs.arm == "holdout"]
    assert not (hm.state == "sent").any()
    assert (hm.reason == "holdout").any()
    held_addresses = set(hm.address.dropna())
    to = {str(m["To"]).lower() for m in mails}
    assert not (held_addresses & to) or all(
        a in set(msgs[(msgs.arm == "treatment") & (msgs.state == "sent")].address)
        for a in held_addresses & to
    )  # an address seen got mail only from its treatment runs


def test_an_order_paid_stops_its_reminders(scenario):
    ws, looked, _, _ = scenario
    runs, msgs = _ledger(ws)
    o = _orders(ws).set_index("order_id")
    paid = _utc(o.paid_at)
    checked = 0
    for run in runs.itertuples():
        p = paid.get(run.key)
        mine = msgs[msgs.enrollment_id == run.id]
        if pd.isna(p):
            continue
        # nothing planned for a moment after the payment; the run ended on its goal
        assert (_utc(mine.due_at) < p).all(), run.key
        if p < looked[-1]:  # it ended when it woke after the payment, or sleeps on still
            assert run.state in ("converted", "exited") or run.next_run_at > looked[-1], run.key
        entered = o.loc[run.key, "created_at"]
        if timedelta(days=1, hours=6) < p - _utc(pd.Series([entered]))[0] < timedelta(days=7):
            assert set(mine.step) <= {"remind-1d"}  # paid on day 3: no second reminder
            checked += 1
    assert checked > 0


def test_no_mail_goes_out_in_quiet_hours(scenario):
    ws, _, _, _ = scenario
    _, msgs = _ledger(ws)
    sent = _utc(msgs.sent_at[msgs.state == "sent"])
    local = sent.dt.tz_convert("Asia/Shanghai")
    minutes = local.dt.hour * 60 + local.dt.minute
    assert len(sent) > 20
    assert ((minutes >= 7 * 60 + 30) & (minutes < 21 * 60)).all()
    assert (msgs.reason == "expired").any() or (msgs.state == "sent").any()


def test_the_smtp_server_received_exactly_what_the_ledger_says_was_sent(scenario):
    ws, _, _, mails = scenario
    _, msgs = _ledger(ws)
    sent = msgs[msgs.state == "sent"]
    got = [m["Message-ID"] for m in mails]
    assert len(got) == len(set(got)) == len(sent)
    assert {g.strip("<>").split("@")[0] for g in got} == set(sent.uid)
    assert all(m["List-Unsubscribe"] is None for m in mails if "未付款" in str(m["Subject"]))


def _plain_text(m) -> str:
    part = next(p for p in m.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def test_a_reminder_names_a_product_of_the_order_running_low(scenario):
    ws, _, _, mails = scenario
    runs, msgs = _ledger(ws)
    sent = msgs[(msgs.state == "sent") & (msgs.step == "remind-1d")]
    sent = sent.merge(runs[["id", "key"]], left_on="enrollment_id", right_on="id")
    with ws.warehouse() as wh:
        items = wh.table("order_items").execute()
        products = wh.table("products").execute().set_index("product_id")
    low = products[(products.stock > 0) & (products.stock < 10)]  # the cart flow's threshold
    by_uid = {str(m["Message-ID"]).strip("<>").split("@")[0]: m for m in mails}
    named = plain = 0
    for r in sent.itertuples():
        text = _plain_text(by_uid[r.uid])
        lines = items[items.order_id == r.key].sort_values("line_no")
        lows = [pid for pid in lines.product_id if pid in low.index]
        for pid in lows:
            assert f"{low.name[pid]}库存仅剩 {int(low.stock[pid])} 件" in text, text
        assert ("库存仅剩" in text) == bool(lows), text
        named, plain = named + bool(lows), plain + (not lows)
    assert named and plain, (named, plain)  # both kinds were sent


def test_a_second_round_at_the_same_moment_adds_nothing(scenario):
    ws, _, _, _ = scenario
    before = _ledger(ws)
    again = service.run_round(ws)
    assert again["enrolled"] == again["planned"] == again["sent"] == 0
    after = _ledger(ws)
    assert len(after[0]) == len(before[0]) and len(after[1]) == len(before[1])


def test_the_cli_shapes_of_show(scenario):
    ws, _, _, _ = scenario
    doc = service.get(ws, "unpaid-reminders")
    led = doc["ledger"]
    assert led["enrolled"] == doc["enrolled"] > 0
    assert set(led["runs"]) == {"treatment", "holdout"}
    assert led["messages"]["treatment"]["remind-1d"]["sent"] > 0
    assert json.dumps(doc)  # plain JSON


def test_a_late_opt_out_wins_over_a_planned_message(shop, tmp_path):
    ws, clock = shop
    cws = Workspace(ws.settings.model_copy(update={"database": f"sqlite:///{tmp_path}/s.db"}),
                    ManualClock(START + timedelta(days=2)))  # fmt: skip
    raw = service.apply_settings(service.template("first-order"), ["holdout=0"])
    raw["steps"] = [s for s in raw["steps"] if s.get("channel", "inbox") == "inbox"]
    raw["windows"] = []
    service.create(cws, raw, user="t", start=True)
    service.run_round(cws, send=False)
    with cws.session() as s:
        first = s.scalars(select(rows.Message).order_by(rows.Message.id)).first()
        n = s.scalar(select(func.count()).select_from(rows.Message))
    assert n > 10
    consent.set_consent(cws, first.customer_id, "inbox", False, source="api")
    with Dispatcher(cws) as d:
        tally = d.run()
    assert tally.skipped["no_consent"] == 1 and tally.sent == n - 1


def test_caps_apply_before_the_holdout_split():
    """Guards judge a holdout message like a treatment one; only then is it held back."""
    from archer.campaigns.definition import load
    from archer.config import CampaignSettings
    from archer.messaging.guards import Guards

    assert engine.draw("s", "c1") == engine.draw("s", "c1")
    d = load({"name": "x", "trigger": {"on": "order_unpaid"},
              "steps": [{"id": "m", "type": "message", "channel": "email", "subject": "s",
                         "text": "t"}]})  # fmt: skip
    now = START

    def msg(i, arm):
        return rows.Message(id=i, customer_id="c", channel="email", purpose="marketing", arm=arm,
                            campaign_id=1, version=1, address="a@b.cn", opt_in=True,
                            expires_at=None)  # fmt: skip

    class NoStore:  # a stand-in session (a mock, named as such): nothing recorded yet
        def scalars(self, q):
            return []

        def execute(self, q):
            return []

    batch = [msg(1, "holdout"), msg(2, "treatment")]
    g = Guards(NoStore(), now, CampaignSettings(), UTC, {(1, 1): d.model_dump()}, batch)
    assert g.judge(batch[0]).reason == "holdout"
    assert g.judge(batch[1]).reason == "frequency_cap"  # the held one took the cap


def test_the_build_copies_the_ledger_and_audiences_can_ask_who_received(scenario):
    from archer.audiences import count
    from archer.pipeline import build

    ws, looked, _, _ = scenario
    runs, msgs = _ledger(ws)
    build(ws, ws.today())
    with ws.warehouse() as wh:
        copied = wh.table("campaign_messages").execute()
        copied_runs = wh.table("campaign_enrollments").count().execute()
    assert len(copied) == len(msgs) and copied_runs == len(runs)
    sent = msgs[msgs.state == "sent"]
    who = set(runs.set_index("id").loc[sent.enrollment_id, "customer_id"])
    q = 'received(campaign = "unpaid-reminders", within = 60d)'
    assert count(ws, q)["count"] == len(who)
    held = msgs[(msgs.reason == "holdout")]
    held_only = set(runs.set_index("id").loc[held.enrollment_id, "customer_id"]) - who
    got = set(ws.audiences.members(q).customer_id)
    assert got == who and not (got & held_only)  # held back is not received
