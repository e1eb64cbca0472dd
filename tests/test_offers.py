"""Coupons and points: codes, limits, issue inside a campaign round, points lots first-expiring
first, exchange — on a small sample shop and a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from archer.campaigns import service
from archer.clock import ManualClock
from archer.errors import Conflict, Invalid, NotFound
from archer.messaging import consent
from archer.offers import coupons, points
from archer.store.campaigns import Message
from archer.store.offers import Coupon, PointsEntry
from archer.workspace import Workspace
from support import sample_shop

START = datetime(2026, 9, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("offers")
    clock = ManualClock(START)
    return sample_shop(root, customers=600, seed=5, clock=clock, as_of=START.date())


@pytest.fixture
def ws(shop, tmp_path):
    """The sample shop with a store of its own, on a clock of its own."""
    settings = shop.settings.model_copy(update={"database": f"sqlite:///{tmp_path}/s.db"})
    return Workspace(settings, ManualClock(START))


def test_codes_avoid_lookalikes_and_carry_a_check_character():
    seen = {coupons.new_code() for _ in range(2000)}
    assert len(seen) == 2000
    assert all(len(c) == 11 and not set(c) & set("01OI") for c in seen)
    assert all(coupons.valid_code(c) for c in seen)
    c = next(iter(seen))
    for i in range(10):  # every single-character slip is caught
        wrong = c[:i] + ("X" if c[i] != "X" else "Y") + c[i + 1 :]
        assert not coupons.valid_code(wrong)
    swapped = c[1] + c[0] + c[2:]
    assert c[0] == c[1] or not coupons.valid_code(swapped)


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"kind": "threshold", "threshold": 100, "amount": 120, "valid_days": 7}, "amount"),
        ({"kind": "rate", "rate": -0.1, "max_saving": 10, "valid_days": 7}, "rate"),
        ({"kind": "rate", "rate": 1.2, "max_saving": 10, "valid_days": 7}, "rate"),
        ({"kind": "cash", "amount": 0, "valid_days": 7}, "amount"),
        ({"kind": "cash", "amount": 10}, "valid_days"),
        ({"kind": "cash", "amount": "1.234", "valid_days": 7}, "amount"),
        ({"kind": "gift", "amount": 10, "valid_days": 7}, "kind"),
        ({"kind": "cash", "amount": float("nan"), "valid_days": 7}, "amount"),
        ({"kind": "cash", "amount": "1e999999", "valid_days": 7}, "amount"),
        ({"kind": "threshold", "threshold": 0, "amount": 5, "valid_days": 7}, "threshold"),
        ({"kind": "rate", "rate": "x", "max_saving": 10, "valid_days": 7}, "rate"),
        ({"kind": "rate", "rate": 0.9, "valid_days": 7}, "max_saving"),
        ({"kind": "cash", "amount": 5, "valid_days": "soon"}, "valid_days"),
        ({"kind": "cash", "amount": 5, "valid_days": 7, "per_customer": 0}, "per_customer"),
        ({"kind": "cash", "amount": 5, "valid_days": 7, "total_limit": 10**12}, "total_limit"),
        ({"kind": "cash", "amount": 5, "valid_days": 7, "budget": -1}, "budget"),
    ],
)
def test_a_template_that_cannot_work_is_refused_with_the_field_named(ws, kw, field):
    with pytest.raises(Invalid) as e:
        coupons.define(ws, "bad", **kw)
    assert str(e.value).startswith(field) and e.value.extra["field"] == field


def test_limits_and_budget_bound_what_is_issued(ws):
    coupons.define(ws, "c10", kind="cash", amount=10, valid_days=7, per_customer=2, budget=50)
    with ws.session(write=True) as s:
        t = coupons.template_named(s, "c10")
        got = [coupons.issue(s, t, "A", now=START, source="manual") for _ in range(3)]
        assert [why for _, why in got] == [None, None, "per_customer_limit"]
        more = [coupons.issue(s, t, f"B{i}", now=START, source="manual")[1] for i in range(5)]
    assert more == [None, None, None, "budget", "budget"]  # 5 × 10 = the budget of 50
    with ws.session() as s:
        c = s.scalar(select(Coupon).where(Coupon.customer_id == "A"))
    assert c.expires_at == START + timedelta(days=7) and c.value_fen == 1000


def test_a_flow_issues_a_coupon_with_its_message_once_and_never_to_the_holdout(ws):
    coupons.define(ws, "first-10", kind="threshold", threshold=99, amount=10, valid_days=14)
    raw = service.template("first-order")
    raw["holdout"] = 0.3
    raw["windows"] = []
    raw["steps"] = [
        {"id": "give", "type": "coupon", "template": "first-10"},
        {"id": "tell", "type": "message", "channel": "inbox", "subject": "新人券",
         "text": "{{ coupon.label }}：{{ coupon.code }}，{{ coupon.expires }} 前有效"},
        {"id": "thanks", "type": "points", "points": 50, "expires": "30d"},
    ]  # fmt: skip
    service.create(ws, raw, user="t", start=True)
    first = service.run_round(ws)
    again = service.run_round(ws)
    assert first["coupons_issued"] > 10 and again["coupons_issued"] == again["planned"] == 0
    assert first["offers_held_back"] > 0
    with ws.session() as s:
        issued = list(s.scalars(select(Coupon)))
        msgs = {m.customer_id: m for m in s.scalars(select(Message))}
        entries = list(s.scalars(select(PointsEntry)))
    assert len({c.code for c in issued}) == len(issued) == first["coupons_issued"]
    for c in issued:  # the message carries the very code that was stored
        assert c.code in msgs[c.customer_id].context
        assert msgs[c.customer_id].arm == "treatment"
    held = {m.customer_id for m in msgs.values() if m.arm == "holdout"}
    assert held and not held & {c.customer_id for c in issued}
    assert {e.customer_id for e in entries} == {c.customer_id for c in issued}
    assert all(e.points == 50 and e.expires_at == START + timedelta(days=30) for e in entries)


def test_a_step_naming_an_unknown_coupon_template_is_refused(ws):
    raw = service.template("first-order")
    raw["steps"].insert(0, {"id": "extra", "type": "coupon", "template": "nope"})
    with pytest.raises(service.CampaignError) as e:
        service.check(ws, raw)
    assert e.value.problems[0]["at"] == 'steps[0] "extra".template'


def test_points_are_spent_first_expiring_first_and_expire_what_is_left(ws):
    with ws.session(write=True) as s:
        points.award(s, "C1", 100, source="a", at=START, expires_at=START + timedelta(days=30))
        points.award(s, "C1", 100, source="b", at=START, expires_at=START + timedelta(days=10))
        assert not points.award(s, "C1", 100, source="b", at=START, expires_at=None)  # once
        points.redeem(s, "C1", 150, source="r1", at=START + timedelta(days=1), note=None)
        lots = dict(s.execute(select(PointsEntry.source, PointsEntry.remaining)
                              .where(PointsEntry.points > 0)).all())  # fmt: skip
    assert lots == {"a": 50, "b": 0}  # the lot ending sooner went first
    gone = points.expire(ws, START + timedelta(days=31))
    assert gone == {"lots": 1, "points": 50}
    with ws.session() as s:
        assert points.balance_in(s, "C1") == 0
        total = s.scalar(select(func.sum(PointsEntry.points)))
    assert total == 0
    with pytest.raises(Conflict), ws.session(write=True) as s:
        points.redeem(s, "C1", 1, source="r2", at=START + timedelta(days=32), note=None)


def test_points_buy_a_cash_coupon_in_one_transaction(ws):
    coupons.define(ws, "cash-5", kind="cash", amount=5, valid_days=30, per_customer=None)
    with ws.session(write=True) as s:
        points.award(s, "C2", 600, source="x", at=START, expires_at=None)
    got = points.exchange(ws, "C2", 500, template="cash-5", rate=500, source="e1")
    assert got["balance"] == 100 and got["coupon"]["value"] == 5.0
    with pytest.raises(Conflict):
        points.exchange(ws, "C2", 500, template="cash-5", rate=500, source="e2")
    with ws.session() as s:
        assert points.balance_in(s, "C2") == 100  # the failed exchange spent nothing


def _unpaid_orders(folder):
    """Twenty more orders, made on the ladder's first day and never paid."""
    import pandas as pd

    o = pd.read_csv(folder / "orders.csv", dtype=str)
    extra = pd.DataFrame(
        {"order_id": [f"U{i:03d}" for i in range(20)],
         "customer_id": [f"C{i * 29 + 1:07d}" for i in range(20)],
         "created_at": [f"2026-09-15 0{i % 8}:30:00" for i in range(20)],
         "status": "created", "goods_amount": "88.00", "channel": "app"}
    )  # fmt: skip
    pd.concat([o, extra]).to_csv(folder / "orders.csv", index=False)


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """The unpaid-order ladder on the inbox over 35 days, a round every 12 hours, on a shop
    with twenty orders never paid."""
    root = tmp_path_factory.mktemp("ladder")
    clock = ManualClock(START)
    ws = sample_shop(root, customers=600, seed=5, clock=clock, as_of=START.date(), fmt="csv",
                     edit=_unpaid_orders)  # fmt: skip
    raw = service.template("unpaid-reminders", "zh")
    for st in raw["steps"]:
        if st["type"] == "message":
            st["channel"] = "inbox"
    raw["windows"] = []
    created = service.create(ws, raw, user="t", start=True)
    for _ in range(70):
        service.run_round(ws)
        clock.advance(hours=12)
    return ws, created


def test_the_ladder_defines_its_coupons_and_gives_points_then_a_coupon_per_order(ladder):
    from archer.store.campaigns import Enrollment
    from archer.store.offers import CouponTemplate

    ws, created = ladder
    assert "unpaid-cash-5" in " ".join(created["notes"])
    with ws.session() as s:
        assert {t.name for t in s.scalars(select(CouponTemplate))} >= {
            "unpaid-cash-5",
            "unpaid-cash-20",
        }
        runs = {e.id: e for e in s.scalars(select(Enrollment))}
        issued = list(s.scalars(select(Coupon)))
        entries = list(s.scalars(select(PointsEntry).where(PointsEntry.kind == "award")))
        msgs = list(s.scalars(select(Message)))
    assert len(issued) >= 10 and len(entries) >= 10  # most of the twenty, less the holdout
    for c in issued:  # one coupon per run, at its 30-day step, never to the holdout
        run = runs[c.enrollment_id]
        assert c.step == "coupon-30d" and run.arm == "treatment"
        assert c.issued_at >= run.entered_at + timedelta(days=30)
    assert len({c.enrollment_id for c in issued}) == len(issued)
    assert len({e.source for e in entries}) == len(entries)
    assert {e.points for e in entries} <= {100, 200, 300}
    shown = {m.enrollment_id: m.context for m in msgs if m.step == "remind-30d"}
    for c in issued:
        assert c.code in shown[c.enrollment_id]
    held = [m for m in msgs if m.arm == "holdout"]
    assert held and not {m.enrollment_id for m in held} & {c.enrollment_id for c in issued}


def test_a_paid_order_carrying_a_code_redeems_it_at_the_next_build(shop, tmp_path):
    from archer.ingest.importer import import_file
    from archer.pipeline import build

    ws = Workspace(shop.settings.model_copy(update={"database": f"sqlite:///{tmp_path}/s.db"}),
                   ManualClock(START))  # fmt: skip
    coupons.define(ws, "c8", kind="cash", amount=8, valid_days=30)
    with ws.session(write=True) as s:
        c, _ = coupons.issue(s, coupons.template_named(s, "c8"), "C0000001", now=START,
                             source="manual")  # fmt: skip
        code = c.code
    home = tmp_path / "orders.csv"
    home.write_text(
        "order_id,customer_id,created_at,paid_at,status,goods_amount,discount_amount,"
        f"coupon_code\nZ1,C0000001,2026-09-14 10:00:00,2026-09-14 10:05:00,paid,100,8,{code}\n",
        encoding="utf-8",
    )
    import_file(ws, "orders", home, now=datetime(2026, 9, 14, 12))
    result = build(ws, START.date())
    assert result.steps["offers"]["coupons_redeemed"] == 1
    with ws.session() as s:
        c = s.scalar(select(Coupon).where(Coupon.code == code))
        earned = s.scalar(select(PointsEntry).where(PointsEntry.source == "order:Z1"))
    assert c.state == "redeemed" and c.order_id == "Z1" and c.saved_fen == 800
    assert earned.points == 92  # 1 point per yuan of the 92 paid
    again = build(ws, START.date())
    assert again.steps["offers"]["coupons_redeemed"] == 0 and again.steps["offers"]["earned"] == 0


def test_the_summary_counts_each_state_and_what_redeemed_coupons_saved(ws):
    coupons.define(ws, "c10", kind="cash", amount=10, valid_days=7, per_customer=None)
    coupons.define(ws, "shop-codes", kind="cash", amount=3, valid_days=7, codes="pool")
    coupons.import_pool(ws, "shop-codes", ["P-1", "P-2", "P-3"])
    got = [coupons.issue_to(ws, "c10", f"C{i}") for i in range(4)]
    coupons.issue_to(ws, "shop-codes", "C9")
    with ws.session(write=True) as s:  # as a build's redeem_from_orders and expire leave them
        s.execute(update(Coupon).where(Coupon.code == got[0]["code"])
                  .values(state="redeemed", saved_fen=850, order_id="O1"))  # fmt: skip
        s.execute(update(Coupon).where(Coupon.code == got[1]["code"]).values(state="expired"))
    by_name = {d["name"]: d for d in coupons.summary(ws)}
    c10 = {k: by_name["c10"][k] for k in ("issued", "outstanding", "redeemed", "expired", "pool")}
    assert c10 == {"issued": 4, "outstanding": 2, "redeemed": 1, "expired": 1, "pool": 0}
    assert by_name["c10"]["promotion_cost"] == 8.5 and by_name["c10"]["label"] == "10元无门槛"
    assert (by_name["shop-codes"]["pool"], by_name["shop-codes"]["issued"]) == (2, 1)
    assert coupons.get(ws, "c10") == by_name["c10"]
    with pytest.raises(NotFound, match="did you mean 'c10'"):
        coupons.get(ws, "c1O")


def test_a_customers_coupons_come_newest_first_with_their_local_end_day(ws):
    coupons.define(ws, "c5", kind="cash", amount=5, valid_days=3, per_customer=None)
    first = coupons.issue_to(ws, "c5", "C7")
    ws.clock.advance(timedelta(hours=20))
    second = coupons.issue_to(ws, "c5", "C7")
    mine = coupons.of_customer(ws, "C7")
    assert [c["code"] for c in mine] == [second["code"], first["code"]]
    assert mine[0]["template"] == "c5" and mine[0]["label"] == "5元无门槛"
    # the second ends at 20:00 UTC, 04:00 the next day in Shanghai: the shop's day is shown
    assert (mine[0]["expires_on"], mine[1]["expires_on"]) == ("2026-09-19", "2026-09-18")
    assert coupons.of_customer(ws, "nobody") == []
    with pytest.raises(Invalid) as e:
        coupons.issue_to(ws, "c5", " ")
    assert e.value.extra["field"] == "customer"


def test_a_limit_that_refuses_says_why(ws):
    coupons.define(ws, "once", kind="cash", amount=5, valid_days=3)
    coupons.issue_to(ws, "once", "C1")
    with pytest.raises(Conflict, match="as many as the template allows") as e:
        coupons.issue_to(ws, "once", "C1")
    assert e.value.extra["reason"] == "per_customer_limit"


def test_top_balances_and_points_expiring_soon(ws):
    lots = [("C1", 300, 10), ("C1", 200, 400), ("C2", 900, 100), ("C3", 50, 5), ("C4", 80, 29)]
    with ws.session(write=True) as s:
        for i, (c, n, days) in enumerate(lots):
            points.award(s, c, n, source=f"t{i}", at=START, expires_at=START + timedelta(days=days))
        points.redeem(s, "C1", 100, source="spend", at=START, note=None)  # from the 10-day lot
    top = points.top_balances(ws, 2)
    assert top == [{"customer_id": "C2", "balance": 900, "expiring_30d": 0},
                   {"customer_id": "C1", "balance": 400, "expiring_30d": 200}]  # fmt: skip
    soon = points.expiring_soon(ws, days=30, limit=2)
    assert (soon["customers"], soon["points"]) == (3, 200 + 50 + 80)
    assert soon["top"] == [
        {"customer_id": "C1", "points": 200, "first_expiry": "2026-09-25"},
        {"customer_id": "C4", "points": 80, "first_expiry": "2026-10-14"},
    ]
    assert points.balance(ws, "C3") == {"customer_id": "C3", "balance": 50, "expiring_30d": 50}


def test_points_given_by_hand_with_a_key_are_given_once(ws):
    got = points.adjust(ws, "C5", 120, days=30, note="apology", key="ticket-9")
    again = points.adjust(ws, "C5", 120, days=30, note="apology", key="ticket-9")
    assert (got["awarded"], again["awarded"], again["balance"]) == (120, 0, 120)
    for bad, field in (({"points": 0}, "points"), ({"days": 0}, "days"),
                       ({"note": "x" * 501}, "note")):  # fmt: skip
        with pytest.raises(Invalid) as e:
            points.adjust(ws, "C5", **{"points": 5, **bad})
        assert e.value.extra["field"] == field


def test_a_coupon_whose_message_cannot_go_is_taken_back(ws):
    """A code nobody is told is no offer: when the message that shows it is skipped (here the
    customer said no to marketing in the inbox), a generated code is voided and an imported
    one goes back to its pool — and neither counts against the template's limits."""
    coupons.define(ws, "gen-5", kind="cash", amount=5, valid_days=14, total_limit=1000)
    coupons.define(ws, "pool-5", kind="cash", amount=5, valid_days=14, codes="pool")
    coupons.import_pool(ws, "pool-5", [f"SHOP{i:04d}" for i in range(2000)])
    raw = service.template("first-order")
    raw["holdout"], raw["windows"] = 0.0, []
    raw["steps"] = [
        {"id": "give", "type": "coupon", "template": "gen-5"},
        {"id": "more", "type": "coupon", "template": "pool-5"},
        {"id": "tell", "type": "message", "channel": "inbox", "subject": "券",
         "text": "{{ coupon.code }}"},
    ]  # fmt: skip
    service.create(ws, raw, user="t", start=False)
    audience = raw["trigger"]["audience"]
    who = sorted(ws.audiences.members(audience).customer_id.astype(str))[:5]
    for c in who:  # they said no to marketing in the shop's inbox
        consent.set_consent(ws, c, "inbox", False)
    service.set_status(ws, raw["name"], "active")
    got = service.run_round(ws)
    assert got["skipped_by_reason"] == {"no_consent": len(who)}
    assert got["coupons_voided"] == 2 * len(who)  # the message carried both codes
    with ws.session() as s:
        theirs = list(s.scalars(select(Coupon).where(Coupon.customer_id.in_(who))))
        pool_left = s.scalar(select(func.count()).where(Coupon.state == "pool"))
        sent = list(s.scalars(select(Message).where(Message.state == "sent")))
    # Their generated codes are void; their imported codes are back in the pool, unassigned.
    assert sorted(c.state for c in theirs) == ["void"] * len(who)
    assert pool_left == 2000 - len(sent)
    shown = {m.customer_id: m.context for m in sent}
    with ws.session() as s:
        live = list(s.scalars(select(Coupon).where(Coupon.state == "issued")))
    assert {c.customer_id for c in live} == set(shown)  # every live code was told
    assert all(c.code in shown[c.customer_id] for c in live)
    ledger = service.get(ws, raw["name"])
    assert ledger["coupons_issued"] == len(live) == 2 * len(sent)
    assert ledger["coupons_voided"] == len(who)  # the imported ones are back in the pool
    summary = {t["name"]: t for t in coupons.summary(ws)}
    assert summary["gen-5"]["issued"] == len(sent) and summary["pool-5"]["pool"] == pool_left


def test_a_second_build_earns_from_where_the_first_stopped_and_late_rows_are_still_seen(tmp_path):
    """The earn step looks only at orders paid (refunds made) since the newest entry of the
    ledger, less a week; an order paid or a refund made long ago that is imported later is
    still earned or taken back (the counts behind the watermark differ), and a re-import of
    the same orders adds nothing. (The build runs its offers step alone.)"""
    from archer.offers.build import OVERLAP, STEP
    from archer.pipeline import build
    from conftest import run_import, write
    from support import workspace

    ws = workspace(tmp_path / "shop", ManualClock(START))
    day0 = datetime(2026, 1, 1)

    def at(i: int, minutes: int = 0) -> datetime:  # order i: two a day, 10:00 and 11:00
        return day0 + timedelta(days=i // 2, hours=10 + i % 2, minutes=minutes)

    people = "".join(f"c{i},客户{i}\n" for i in range(100))
    orders = "".join(f"o{i},c{i % 100},{at(i):%Y-%m-%d %H:%M},{at(i, 5):%Y-%m-%d %H:%M},paid,"
                     f"{50 + i % 7}\n" for i in range(400))  # fmt: skip
    refunds = "".join(f"r{k},o{k * 20},{at(k * 20) + timedelta(days=3):%Y-%m-%d %H:%M},10\n"
                      for k in range(20))  # fmt: skip
    head = "order_id,customer_id,created_at,paid_at,status,goods_amount\n"
    files = {
        "customers": "customer_id,name\n" + people,
        "orders": head + orders,
        "refunds": "refund_id,order_id,refunded_at,amount\n" + refunds,
    }
    for table, text in files.items():
        assert run_import(ws, table, write(tmp_path / f"{table}.csv", text)).rejected == 0
    as_of = (day0 + timedelta(days=200)).date()

    first = build(ws, as_of, steps=[STEP]).steps["offers"]
    assert (first["earned"], first["orders_considered"]) == (400, 400)
    assert (first["reversed"], first["refunds_considered"]) == (20, 20)

    second = build(ws, as_of, steps=[STEP]).steps["offers"]
    recent = sum(1 for i in range(400) if at(i, 5) >= at(399, 5) - OVERLAP)
    assert (second["earned"], second["reversed"]) == (0, 0)
    assert second["orders_considered"] == recent < 20  # not the 400 earned before
    assert second["refunds_considered"] == 1  # r19 alone is within a week of the newest

    # late rows: an order paid on day 1 and a refund made on day 53, imported now; and the
    # same orders again
    assert (
        run_import(
            ws,
            "orders",
            write(
                tmp_path / "o2.csv",
                head + orders + "olate,c5,"
                f"{at(2):%Y-%m-%d %H:%M},{at(2, 5):%Y-%m-%d %H:%M},paid,77\n",
            ),
        ).inserted
        == 1
    )
    late = f"rlate,o100,{at(100) + timedelta(days=3):%Y-%m-%d %H:%M},30\n"
    assert run_import(ws, "refunds", write(tmp_path / "r2.csv", "refund_id,order_id,"
                      "refunded_at,amount\n" + late)).inserted == 1  # fmt: skip
    third = build(ws, as_of, steps=[STEP]).steps["offers"]
    assert (third["earned"], third["reversed"]) == (1, 1)
    with ws.session() as s:
        got = {
            e.source: (e.customer_id, e.kind, e.points)
            for e in s.scalars(
                select(PointsEntry).where(PointsEntry.source.in_(("order:olate", "refund:rlate")))
            )
        }
        entries = list(s.scalars(select(PointsEntry)))
    assert got == {"order:olate": ("c5", "earn", 77), "refund:rlate": ("c0", "reverse", -30)}
    assert len(entries) == 401 + 21 and len({e.source for e in entries}) == len(entries)
    fourth = build(ws, as_of, steps=[STEP]).steps["offers"]
    assert (fourth["earned"], fourth["reversed"]) == (0, 0)
    assert fourth["orders_considered"] == recent and fourth["refunds_considered"] == 1


def test_refunds_take_back_points_from_lots_open_at_their_time_first_expiring_first(tmp_path):
    """Points are earned at one per yuan and last 365 days. c1's first lot (100, paid day 0)
    has expired by day 400 but no expiry round has closed it; her second lot (60, day 380)
    is open. Two refunds land in one build: 30 yuan on day 10 (taken from the first lot,
    still open then) and 80 yuan on day 400 (only the 60 of the open lot can be taken back;
    the expired lot is not spent and nothing raises). The balance the build copies for
    audiences leaves the expired lot out."""
    from archer.offers.build import STEP
    from archer.pipeline import build
    from conftest import run_import, write
    from support import workspace

    day0 = datetime(2025, 1, 1)
    ws = workspace(tmp_path / "shop", ManualClock(START.replace(year=2026, month=2, day=10)))

    def t(days: int) -> str:
        return f"{day0 + timedelta(days=days, hours=10):%Y-%m-%d %H:%M}"

    files = {
        "customers": "customer_id,name\nc1,客户1\n",
        "orders": "order_id,customer_id,created_at,paid_at,status,goods_amount\n"
        f"o1,c1,{t(0)},{t(0)},paid,100\no2,c1,{t(380)},{t(380)},paid,60\n",
        "refunds": f"refund_id,order_id,refunded_at,amount\nr1,o1,{t(10)},30\nr2,o2,{t(400)},80\n",
    }
    for table, text in files.items():
        assert run_import(ws, table, write(tmp_path / f"{table}.csv", text)).rejected == 0
    got = build(ws, (day0 + timedelta(days=401)).date(), steps=[STEP]).steps["offers"]
    assert (got["earned"], got["reversed"]) == (2, 2)
    with ws.session() as s:
        e = {x.source: (x.points, x.remaining) for x in s.scalars(select(PointsEntry))}
    assert e == {"order:o1": (100, 70), "order:o2": (60, 0),
                 "refund:r1": (-30, 0), "refund:r2": (-60, 0)}  # fmt: skip
    assert ws.view("customer_points").to_dict("records") == [
        {"customer_id": "c1", "points_balance": 0, "points_expiring_30d": 0}
    ]
