"""The playbook on the sample shop: each campaign created from its template as an operator would,
run over simulated weeks on a manual clock, with e-mail to a real local SMTP server, SMS to the
local Aliyun server, and the coupons and points it gave read back from the store.

Two timelines share one built shop:

* **carts** — three crafted carts (one with a product running low, one plain, one whose owner
  orders after the nudge) and the shop's own, a round every three hours for two and a half days;
* **the audience campaigns side by side** — win-back, VIP birthday (its greeting by SMS), points
  expiring, points exchange and repeat purchase: a round each day at 17:30 in Shanghai for three
  weeks, a build each week, then a jump of a year (one more build and round) for the birthday
  of next year and a lapse after buying again.

The truth is read from the builds' own tables as each build left them (who was lapsing, whose
birthday was near, who had points expiring), independently of the engine's ledger.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select

from archer.campaigns import engine, service
from archer.clock import ManualClock
from archer.ingest.importer import import_file
from archer.messaging.channels.sms import national
from archer.offers import coupons, points
from archer.pipeline import build
from archer.store import campaigns as rows
from archer.store.offers import Coupon, CouponTemplate, PointsEntry
from archer.workspace import Workspace
from providers import FakeAliyun
from smtp_sink import SmtpSink
from support import sample_shop
from test_sms import sms_settings

START = datetime(2026, 9, 15, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai: inside every window
DAYS = 22  # to 7 October: a build each week, a month's turn, a coupon at 14 days
SMS_CODE = "SMS_200"
SMS = {SMS_CODE: ["name", "code"]}
LOW_STOCK = 10  # the abandoned-cart texts' threshold

pytestmark = pytest.mark.xdist_group("playbook-shop")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("playbook")
    return sample_shop(root, customers=600, seed=5, clock=ManualClock(START), as_of=START.date())


def _on(shop: Workspace, db, clock: ManualClock, **changes) -> Workspace:
    """The shop with a store of its own, consent by opt-out (the sample's opt-ins are few)."""
    campaigns = shop.settings.campaigns.model_copy(update={"consent": "opt_out"})
    settings = shop.settings.model_copy(update={
        "database": f"sqlite:///{db}", "shop_name": "某某商城", "campaigns": campaigns, **changes,
    })  # fmt: skip
    return Workspace(settings, clock)


def _local(t: datetime) -> str:
    """An instant as the shop's files write it: wall-clock time in the shop's zone."""
    return t.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")


def _import(ws: Workspace, table: str, path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False)
    r = import_file(ws, table, path, now=ws.now().replace(tzinfo=None))
    assert r.rejected == 0, r.reasons
    if table == "orders":  # and a line each, as the shop's export has
        lines = pd.DataFrame({"order_id": frame.order_id, "line_no": 1, "product_id": "P00001",
                              "quantity": 1, "unit_price": frame.goods_amount})  # fmt: skip
        _import(ws, "order_items", path.with_suffix(".items.csv"), lines)


def _ts(v) -> pd.Timestamp:
    t = pd.Timestamp(v)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _ledger(ws: Workspace, campaign: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    with ws.session() as s:
        cid = s.scalar(select(rows.Campaign.id).where(rows.Campaign.name == campaign))
        runs = pd.DataFrame(
            [{"id": e.id, "customer_id": e.customer_id, "key": e.trigger_key, "arm": e.arm,
              "state": e.state, "end_reason": e.end_reason,
              "entered_at": _ts(e.entered_at),
              "ended_at": _ts(e.ended_at) if e.ended_at else pd.NaT}
             for e in s.scalars(select(rows.Enrollment).where(rows.Enrollment.campaign_id == cid))],
            columns=["id", "customer_id", "key", "arm", "state", "end_reason", "entered_at",
                     "ended_at"],
        )  # fmt: skip
        msgs = pd.DataFrame(
            [{"uid": m.uid, "run": m.enrollment_id, "step": m.step, "arm": m.arm,
              "state": m.state, "reason": m.reason, "channel": m.channel,
              "due_at": _ts(m.due_at), "customer_id": m.customer_id,
              "context": m.context}
             for m in s.scalars(select(rows.Message).where(rows.Message.campaign_id == cid))],
            columns=["uid", "run", "step", "arm", "state", "reason", "channel", "due_at",
                     "customer_id", "context"],
        )  # fmt: skip
    return runs, msgs


def _coupons(ws: Workspace, template: str) -> pd.DataFrame:
    with ws.session() as s:
        q = select(Coupon).join(CouponTemplate, Coupon.template_id == CouponTemplate.id)
        got = s.scalars(q.where(CouponTemplate.name == template))
        return pd.DataFrame(
            [{"code": c.code, "customer_id": c.customer_id, "run": c.enrollment_id,
              "step": c.step, "state": c.state, "value_fen": c.value_fen,
              "issued_at": _ts(c.issued_at),
              "expires_at": _ts(c.expires_at)} for c in got],
            columns=["code", "customer_id", "run", "step", "state", "value_fen", "issued_at",
                     "expires_at"],
        )  # fmt: skip


# -- abandoned cart ----------------------------------------------------------------------------
T0 = datetime(2026, 9, 16, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: the crafted carts' first add


def _quiet_customers(ws: Workspace, n: int) -> list[str]:
    """Members with an address who did nothing around the crafted carts (so their carts are
    only ours), in the campaign's treatment arm."""
    lo, hi = (
        (T0 - timedelta(days=8)).replace(tzinfo=None),
        (T0 + timedelta(days=4)).replace(tzinfo=None),
    )
    with ws.warehouse() as wh:
        c = wh.table("customers").execute()
        e = wh.table("events").execute()
        o = wh.table("orders").execute()
    busy = set(e.customer_id[(e.occurred_at >= lo) & (e.occurred_at < hi)].dropna())
    busy |= set(o.customer_id[(o.created_at >= lo) & (o.created_at < hi)].dropna())
    # no cart left open before (the cart trigger counts every add since the last order, and
    # a cart first filled before its lookback never enters: a finding, not changed here)
    last_order = o.groupby("customer_id").created_at.max()
    adds = e[e.type == "cart_add"].groupby("customer_id").occurred_at.max()
    open_before = set(adds.index[adds > last_order.reindex(adds.index).fillna(pd.Timestamp(0))])
    ok = c[c.email.notna() & c.email_opt_in.fillna(False).astype(bool)
           & ~c.customer_id.isin(busy | open_before)]  # fmt: skip
    ids = [x for x in sorted(ok.customer_id) if engine.draw("abandoned-cart", x) >= 0.2]
    assert len(ids) >= n
    return ids[:n]


@pytest.fixture(scope="module")
def carts(shop, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("carts")
    clock = ManualClock(T0 - timedelta(hours=2))
    with shop.warehouse() as wh:
        products = wh.table("products").execute()
    low = products[(products.stock > 0) & (products.stock < LOW_STOCK)].iloc[0]
    plenty = products[products.stock >= 10 * LOW_STOCK].iloc[0]
    low_a, plain_b, buyer_k = _quiet_customers(shop, 3)
    at = [T0, T0 + timedelta(minutes=10)]
    adds = [(low_a, low.product_id, at[0]), (low_a, plenty.product_id, at[1]),
            (plain_b, plenty.product_id, at[0]), (buyer_k, plenty.product_id, at[0])]  # fmt: skip
    _import(shop, "events", tmp / "events.csv", pd.DataFrame(
        {"event_id": [f"E-PB-{i}" for i in range(len(adds))],
         "customer_id": [a[0] for a in adds], "type": "cart_add",
         "occurred_at": [_local(a[2]) for a in adds],
         "product_id": [a[1] for a in adds]}
    ))  # fmt: skip
    ordered = T0 + timedelta(hours=6)  # after the nudge, before the coupon
    _import(shop, "orders", tmp / "orders.csv", pd.DataFrame(
        {"order_id": ["O-PB-K"], "customer_id": [buyer_k],
         "created_at": [_local(ordered)],
         "paid_at": [_local(ordered + timedelta(minutes=2))],
         "status": ["paid"], "goods_amount": ["128.00"], "channel": ["app"]}
    ))  # fmt: skip
    with SmtpSink() as sink:
        ws = _on(shop, tmp / "store.db", clock, smtp=sink.settings())
        raw = service.template("abandoned-cart", service.default_lang(ws))
        created = service.create(ws, raw, user="operator", template_name="abandoned-cart",
                                 start=True)  # fmt: skip
        for _ in range(20):
            service.run_round(ws)
            clock.advance(hours=3)
        mails = sink.messages()
    who = {"low": low_a, "plain": plain_b, "buyer": buyer_k}
    return ws, created, mails, who, low, plenty


def _mail_of(mails, msgs: pd.DataFrame, customer: str, step: str):
    uids = set(msgs.uid[(msgs.customer_id == customer) & (msgs.step == step)])
    got = [m for m in mails if m.uid in uids]
    assert len(got) == 1, (customer, step, len(got))
    return got[0]


def test_abandoned_cart_nudges_each_cart_then_gives_a_coupon_a_day_later(carts):
    ws, created, mails, who, low, _ = carts
    assert "cart-cash-5" in " ".join(created["notes"])  # the template brought its coupon
    runs, msgs = _ledger(ws, "abandoned-cart")
    assert not runs.duplicated(["customer_id", "key"]).any()
    mine = runs.set_index("customer_id").loc[list(who.values())]
    assert (mine.key == T0.strftime("cart:%Y-%m-%dT%H:%M:%S")).all()  # the first add keys it
    # the idle hour counts from the cart's last add
    assert mine.loc[who["low"], "entered_at"] == T0 + timedelta(minutes=70)
    assert mine.loc[who["plain"], "entered_at"] == T0 + timedelta(hours=1)
    a = runs.set_index("customer_id").loc[who["low"]]
    nudge = _mail_of(mails, msgs, who["low"], "nudge")
    note = _mail_of(mails, msgs, who["low"], "coupon-note")
    due = msgs[msgs.run == a.id].set_index("step").due_at
    assert due["coupon-note"] - due["nudge"] == timedelta(days=1)
    issued = _coupons(ws, "cart-cash-5")
    (c,) = issued[issued.customer_id == who["low"]].itertuples()
    assert c.state == "issued" and c.value_fen == 500 and c.run == a.id
    assert c.expires_at - c.issued_at == timedelta(days=3)
    assert c.code in note.text() and "满59减5" in note.subject
    assert nudge.header("List-Unsubscribe") is None or "退订" in nudge.text()
    # the store's summary counts what the campaign issued
    # (a coupon whose message was skipped — no consent, no address — was taken back: void)
    live = issued[issued.state != "void"]
    summary = {t["name"]: t for t in coupons.summary(ws)}
    assert summary["cart-cash-5"]["issued"] == len(live) >= 1
    skipped = set(msgs.run[(msgs.step == "coupon-note") & (msgs.state == "skipped")])
    assert set(issued.run[issued.state == "void"]) <= skipped
    # holdout runs walk the same steps and are given nothing
    held = set(runs.id[runs.arm == "holdout"])
    assert not held & set(issued.run)
    sent = msgs[msgs.state == "sent"]
    assert sorted(m.uid for m in mails) == sorted(sent.uid)  # the server got what was sent


def test_abandoned_cart_names_a_carted_product_running_low(carts):
    ws, _, mails, who, low, plenty = carts
    _, msgs = _ledger(ws, "abandoned-cart")
    text = _mail_of(mails, msgs, who["low"], "nudge").text()
    assert "库存紧张" in text and f"{low['name']}仅剩 {low.stock} 件" in text
    assert plenty["name"] not in text  # plenty in stock: not named as low
    plain = _mail_of(mails, msgs, who["plain"], "nudge").text()
    assert "库存紧张" not in plain and "购物车" in plain


def test_abandoned_cart_ends_when_they_order(carts):
    ws, _, mails, who, _, _ = carts
    runs, msgs = _ledger(ws, "abandoned-cart")
    k = runs.set_index("customer_id").loc[who["buyer"]]
    assert k.state == "converted" and k.end_reason == "goal:purchased"
    assert set(msgs.step[msgs.run == k.id]) == {"nudge"}  # nudged, then bought: no coupon
    _mail_of(mails, msgs, who["buyer"], "nudge")
    assert who["buyer"] not in set(_coupons(ws, "cart-cash-5").customer_id)


# -- the audience campaigns, side by side over four weeks ----------------------------------------
PROFILE_COLS = ["customer_id", "lifecycle", "stage", "value_tier", "days_since_last_purchase",
                "lapse_threshold_days", "last_purchase_day", "birthday_soon", "days_to_birthday",
                "birthday", "top_category"]  # fmt: skip


def _seen(ws: Workspace) -> dict[str, pd.DataFrame]:
    """What the last build says, kept before the next build replaces it."""
    with ws.warehouse() as wh:
        p = wh.table("customer_profile").select(*PROFILE_COLS).execute()
        pts = wh.table("customer_points").execute()
        rec = wh.table("customer_recommendations").execute()
        cats = wh.table("customer_categories").execute()
    return {"profile": p.set_index("customer_id"), "points": pts.set_index("customer_id"),
            "recommendations": rec, "categories": cats}  # fmt: skip


def _templates(ws: Workspace) -> None:
    lang = service.default_lang(ws)
    for name in ("win-back", "points-expiring", "points-exchange", "repeat-purchase"):
        service.create(ws, service.template(name, lang), user="operator", template_name=name,
                       start=True)  # fmt: skip
    # the birthday greeting goes by SMS: the provider's approved template, with the coupon
    raw = service.apply_settings(service.template("vip-birthday", lang), [
        "steps.greeting.channel=sms", f"steps.greeting.template={SMS_CODE}",
        "steps.greeting.params={name = \"{{ customer.name or '会员' }}\", "
        "code = \"{{ coupon.code }}\"}",
    ])  # fmt: skip
    greeting = next(s for s in raw["steps"] if s["id"] == "greeting")
    del greeting["subject"], greeting["text"]
    service.create(ws, raw, user="operator", template_name="vip-birthday", start=True)


@pytest.fixture(scope="module")
def season(shop, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("season")
    clock = ManualClock(START)
    with SmtpSink() as sink, FakeAliyun() as fake:
        campaigns = shop.settings.campaigns.model_copy(
            update={"consent": "opt_out", "caps": {"sms": ["1/24h", "4/30d"]}}
        )  # the playbook's e-mails run side by side: the e-mail cap (tested elsewhere) is off
        sms = sms_settings(fake.url).model_copy(update={"templates": SMS})
        ws = _on(shop, tmp / "store.db", clock, smtp=sink.settings(), sms=sms,
                 campaigns=campaigns)  # fmt: skip
        coupons.define(ws, "points-cash", kind="cash", amount=5, valid_days=30, per_customer=None)
        _templates(ws)
        builds: dict[date, dict] = {}
        after_round: dict[date, dict[str, int]] = {}
        exchanged: dict[str, dict] = {}
        returner = None
        for day in range(DAYS):
            today = clock.now().date()
            if day % 7 == 0:
                build(ws, today)
                builds[today] = _seen(ws)
            if day == 3:  # a customer being won back buys again
                _import(ws, "orders", tmp / "back.csv", pd.DataFrame(
                    {"order_id": ["O-PB-BACK"], "customer_id": [returner],
                     "created_at": [_local(clock.now() - timedelta(hours=3))],
                     "paid_at": [_local(clock.now() - timedelta(hours=2))],
                     "status": ["paid"], "goods_amount": ["199.00"], "channel": ["app"]}
                ))  # fmt: skip
            service.run_round(ws)
            if day == 0:
                with ws.session() as s:  # what the store holds once the round expired lots
                    after_round[today] = {
                        c: points.balance_in(s, c) for c in builds[today]["points"].index
                    }
                runs, _ = _ledger(ws, "win-back")
                t = runs[runs.arm == "treatment"].sort_values("customer_id")
                returner = t.customer_id.iloc[0]
                # the operator exchanges points for three customers the note reached
                _, notes = _ledger(ws, "points-exchange")
                for c in sorted(set(notes.customer_id[notes.arm == "treatment"]))[:3]:
                    exchanged[c] = points.exchange_at_rate(ws, c, key="pb")
            clock.advance(days=1)
        # a year on: the returner lapses again (one more purchase, long enough ago), and the
        # birthdays come round
        later = START + timedelta(days=365)
        thr = builds[max(builds)]["profile"].loc[returner, "lapse_threshold_days"]
        again = later - timedelta(days=round(1.5 * thr))  # past one threshold, short of "lost"
        clock.set(later)
        _import(ws, "orders", tmp / "again.csv", pd.DataFrame(
            {"order_id": ["O-PB-AGAIN"], "customer_id": [returner],
             "created_at": [_local(again)], "paid_at": [_local(again)],
             "status": ["paid"], "goods_amount": ["99.00"], "channel": ["app"]}
        ))  # fmt: skip
        build(ws, later.date())
        builds[later.date()] = _seen(ws)
        service.run_round(ws)
        mails = sink.messages()
        sms = list(fake.requests)
        assert fake.bad == []
    return {"ws": ws, "builds": builds, "mails": mails, "sms": sms, "after_round": after_round,
            "exchanged": exchanged, "returner": returner, "later": later}  # fmt: skip


def _build_before(builds: dict[date, dict], at: pd.Timestamp) -> dict:
    day = max(d for d in builds if d <= at.date())
    return builds[day]


def test_win_back_enters_customers_past_their_lapse_threshold_once_per_lapse(season):
    ws, builds = season["ws"], season["builds"]
    runs, msgs = _ledger(ws, "win-back")
    assert len(runs) > 20
    for r in runs.itertuples():
        p = _build_before(builds, r.entered_at)["profile"].loc[r.customer_id]
        assert p.lifecycle == "lapsing", r
        assert p.days_since_last_purchase > p.lapse_threshold_days
        assert r.key == f"lapse:{pd.Timestamp(p.last_purchase_day).date()}"
    for day, seen in builds.items():  # everyone lapsing at a build entered that day
        lapsing = seen["profile"][seen["profile"].lifecycle == "lapsing"]
        keys = set(zip(runs.customer_id, runs.key, strict=True))
        for c, last in zip(lapsing.index, lapsing.last_purchase_day, strict=True):
            assert (c, f"lapse:{pd.Timestamp(last).date()}") in keys, (day, c)
    assert not runs.duplicated(["customer_id", "key"]).any()
    # new products in their category first: the message names it
    first = msgs[(msgs.step == "new-arrivals") & (msgs.state == "sent")]
    assert len(first) > 10
    mails = {m.uid: m for m in season["mails"]}
    for m in first.itertuples():
        top = builds[START.date()]["profile"].top_category.get(m.customer_id)
        if isinstance(top, str) and m.due_at.date() == START.date():
            assert top in mails[m.uid].subject and "上新" in mails[m.uid].text()


def test_win_back_gives_points_after_a_week_then_a_coupon_after_two(season):
    ws = season["ws"]
    runs, msgs = _ledger(ws, "win-back")
    with ws.session() as s:
        cid = s.scalar(select(rows.Campaign.id).where(rows.Campaign.name == "win-back"))
        awards = {e.source: e for e in s.scalars(
            select(PointsEntry).where(PointsEntry.source.like(f"campaign:{cid}:%")))}  # fmt: skip
    issued = _coupons(ws, "win-back-15").set_index("run")
    end = START + timedelta(days=DAYS - 1)
    mails = {m.uid: m for m in season["mails"]}
    checked = 0
    for r in runs[runs.entered_at < START + timedelta(days=1)].itertuples():
        award = awards.get(f"campaign:{cid}:{r.id}:points")
        if r.arm == "holdout" or r.state == "converted":
            if r.arm == "holdout":
                assert award is None and r.id not in issued.index
            continue
        assert award is not None and award.points == 50
        assert _ts(award.at) == r.entered_at + timedelta(days=7)
        assert _ts(award.expires_at) == r.entered_at + timedelta(days=37)
        c = issued.loc[r.id]
        assert c.issued_at == r.entered_at + timedelta(days=14) <= end
        assert c.value_fen == 1500 and c.customer_id == r.customer_id
        note = msgs[(msgs.run == r.id) & (msgs.step == "coupon-note")]
        if (note.state == "sent").all() and len(note):
            assert c.code in mails[note.uid.iloc[0]].text()
        pnote = msgs[(msgs.run == r.id) & (msgs.step == "points-note")]
        if len(pnote) and pnote.state.iloc[0] == "sent":
            assert "送您 50 积分" in mails[pnote.uid.iloc[0]].subject
        checked += 1
    assert checked > 10


def test_win_back_ends_when_they_buy_and_a_new_lapse_is_a_new_run(season):
    ws, who = season["ws"], season["returner"]
    runs, msgs = _ledger(ws, "win-back")
    mine = runs[runs.customer_id == who].sort_values("entered_at")
    assert len(mine) >= 2 and mine.key.is_unique  # a lapse after buying again: a new key
    first, second = mine.iloc[0], mine.iloc[-1]
    assert first.state == "converted" and first.end_reason == "goal:purchased"
    assert first.ended_at == first.entered_at + timedelta(days=7)  # when it woke for the points
    assert set(msgs.step[msgs.run == first.id]) == {"new-arrivals"}  # no points, no coupon
    seen = season["builds"][season["later"].date()]["profile"].loc[who]
    assert seen.lifecycle == "lapsing"
    assert second.key == f"lapse:{pd.Timestamp(seen.last_purchase_day).date()}"
    assert second.entered_at == season["later"]


def _vip(p) -> bool:
    return p.value_tier in ("top", "high") or p.stage == "loyal"


def test_vip_birthday_greets_by_sms_with_a_coupon_once_a_year_and_only_vips(season):
    ws, builds = season["ws"], season["builds"]
    runs, msgs = _ledger(ws, "vip-birthday")
    assert len(runs) >= 3
    for r in runs.itertuples():
        p = _build_before(builds, r.entered_at)["profile"].loc[r.customer_id]
        assert p.birthday_soon and p.days_to_birthday <= 7 and _vip(p), r
        assert r.key == f"year:{r.entered_at.tz_convert(ws.tz).year}"
    assert not runs.duplicated(["customer_id", "key"]).any()
    left_out = 0
    for seen in builds.values():  # a near birthday alone is not enough
        p = seen["profile"]
        for c, row in p[p.birthday_soon.fillna(False).astype(bool)].iterrows():
            if not _vip(row):
                left_out += 1
                assert c not in set(runs.customer_id)
    assert left_out > 0
    issued = _coupons(ws, "birthday-30")
    treated = runs[runs.arm == "treatment"]
    assert set(issued.run) == set(treated.id)  # one coupon per treatment run, each year
    by_phone = {}
    for req in season["sms"]:
        assert req["TemplateCode"] == SMS_CODE
        by_phone.setdefault(req["PhoneNumbers"], []).append(req)
    with ws.warehouse() as wh:
        phones = wh.table("customers").select("customer_id", "phone").execute()
    phone = dict(zip(phones.customer_id, phones.phone, strict=True))
    sent = msgs[(msgs.step == "greeting") & (msgs.state == "sent")]
    assert len(sent) >= 2 and set(sent.channel) == {"sms"}
    for m in sent.itertuples():
        code = issued.code[issued.run == m.run].iloc[0]
        got = [r for r in by_phone[national(phone[m.customer_id])] if r["OutId"] == m.uid]
        assert len(got) == 1 and got[0]["TemplateParam"]["code"] == code
        local = datetime.strptime(got[0]["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert 8 <= local.astimezone(ws.tz).hour < 22
    inbox = msgs[(msgs.step == "inbox") & (msgs.arm == "treatment")]
    for m in inbox.itertuples():
        assert issued.code[issued.run == m.run].iloc[0] in m.context
    # a year on, the same customers' birthdays: a second run and a second coupon
    twice = runs.groupby("customer_id").key.nunique()
    assert (twice == 2).any()
    for c in twice[twice == 2].index:
        assert set(runs.key[runs.customer_id == c]) == {"year:2026", "year:2027"}
        if (runs.arm[runs.customer_id == c] == "treatment").all():
            assert (issued.customer_id == c).sum() == 2


def test_points_expiring_reminds_once_a_month_with_what_the_store_holds(season):
    ws, builds = season["ws"], season["builds"]
    runs, msgs = _ledger(ws, "points-expiring")
    assert len(runs) > 10
    for r in runs.itertuples():
        pts = _build_before(builds, r.entered_at)["points"]
        assert pts.loc[r.customer_id, "points_expiring_30d"] > 0
        assert r.key == f"month:{r.entered_at.tz_convert(ws.tz):%Y-%m}"
    assert not runs.duplicated(["customer_id", "key"]).any()
    assert {"month:2026-09", "month:2026-10"} <= set(runs.key)
    mails = {m.uid: m for m in season["mails"]}
    sent = msgs[(msgs.state == "sent") & (msgs.due_at < START + timedelta(days=1))]
    assert len(sent) >= 3
    held = season["after_round"][START.date()]
    for m in sent.itertuples():  # the balance shown is what the store holds after the round's
        text = mails[m.uid].text()  # expiry, and the points expiring are part of it
        shown = re.search(r"您有 (\d+) 积分将在 30 天内到期（共 (\d+) 积分）", text)
        assert shown, text
        soon, total = int(shown[1]), int(shown[2])
        assert total == held[m.customer_id] and 0 < soon <= total, (m.customer_id, text)


def test_points_exchange_notes_a_balance_that_buys_a_coupon_once_a_month(season):
    ws, builds = season["ws"], season["builds"]
    runs, msgs = _ledger(ws, "points-exchange")
    assert len(runs) > 10
    for r in runs.itertuples():
        pts = _build_before(builds, r.entered_at)["points"]
        assert pts.loc[r.customer_id, "points_balance"] >= 500
    assert not runs.duplicated(["customer_id", "key"]).any()
    first = msgs[msgs.due_at < START + timedelta(days=1)]
    held = season["after_round"][START.date()]
    for m in first[first.arm == "treatment"].itertuples():
        assert json.loads(m.context)["customer"]["points_balance"] == held[m.customer_id]
    exchanged = season["exchanged"]
    assert len(exchanged) == 3
    october = set(runs.customer_id[runs.key == "month:2026-10"])
    for c, got in exchanged.items():  # 500 points became a 5-yuan coupon in the store
        assert got["coupon"]["value"] == 5.0
        assert any(x["code"] == got["coupon"]["code"] for x in coupons.of_customer(ws, c))
        oct_build = _build_before(builds, pd.Timestamp(datetime(2026, 10, 1, tzinfo=UTC)))
        assert (c in october) == (oct_build["points"].loc[c, "points_balance"] >= 500)


def test_repeat_purchase_recommends_products_bought_together_with_theirs(season):
    ws, builds = season["ws"], season["builds"]
    runs, msgs = _ledger(ws, "repeat-purchase")
    assert len(runs) > 5
    assert not runs.customer_id.duplicated().any()  # once, ever
    with ws.warehouse() as wh:
        products = wh.table("products").execute().set_index("name")
    mails = {m.uid: m for m in season["mails"]}
    listed = fallback = 0
    for r in runs.itertuples():
        seen = _build_before(builds, r.entered_at)
        p = seen["profile"].loc[r.customer_id]
        assert p.lifecycle == "one_time_buyer" and p.days_since_last_purchase >= 30
        m = msgs[(msgs.run == r.id) & (msgs.state == "sent")]
        if m.empty:
            continue
        text = mails[m.uid.iloc[0]].text().replace("\r\n", "\n")
        rec = seen["recommendations"]
        cats = list(rec.category[rec.customer_id == r.customer_id])
        names = re.findall(r"^- (.+)（(\w+)）$", text, flags=re.M)
        if cats:
            assert names, text
            for name, cat in names:  # from a category bought with theirs, not one they have
                assert cat in cats and products.loc[name, "category"] == cat
            listed += 1
        else:
            assert not names and "这些新品也许合您心意" in text
            fallback += 1
    assert listed > 0
