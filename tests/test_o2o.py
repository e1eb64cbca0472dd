"""The O2O group-buy funnel on a hand-counted fixture: a home-furnishing mall's group-buy day
with sign-ups from four channels, double scans at the desk, walk-ins, staged payments, phone
and coupon matching, and orders outside the event's window — the report must give the figures
counted by hand below. Then hostile input: bad phones, unknown channels and events, oversize
files, replayed scans, and two identical scans at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archer.cli import app
from archer.clock import ManualClock
from archer.errors import Conflict, NotFound
from archer.measurement import o2o
from archer.store.o2o import O2OCheckin, O2OSignup
from conftest import run_import, write
from support import workspace

EVENT = "五一家居团购日"
REPORT_AT = datetime(2026, 6, 5, 4, 0, tzinfo=UTC)  # 2026-06-05 12:00 in Shanghai
DESK_AT = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 on the day, at the desk

SIGNUPS = """姓名,手机,会员号,渠道,报名时间
张伟,138 0013 8001,C001,论坛,2026-04-20 10:00
李娜,+86 13800138002,,forum,2026-04-21 11:00
王芳,13800138003,C003,QQ群,2026-04-22 09:00
刘洋,13800138004,,qq,2026-04-22 09:30
陈静,13800138005,C005,微信,2026-04-23 20:00
杨磊,138-0013-8006,C006,wechat,2026-04-24 08:00
赵敏,13800138007,,WeChat,2026-04-25 12:00
黄强,13800138008,C008,SEM,2026-04-26 13:00
周杰,13800138009,,sem,2026-04-27 14:00
吴刚,13800138010,C010,SEM,2026-04-28 15:00
张伟,13800138001,C001,微信,2026-04-29 16:00
"""

CUSTOMERS = """customer_id,name,phone
C001,张伟,13800138001
C002,李娜,+86 138-0013-8002
C003,王芳,13800138003
C005,陈静,13800138005
C006,杨磊,13800138006
C008,黄强,13800138008
C010,吴刚,13800138010
C020,门店客,
C021,路过的,139 0013 9001
C030,陌生人,13700137000
C031,另一个,13700137001
"""

# Local times (Asia/Shanghai). The event runs 2026-05-01 09:00–18:00; orders count from its start
# to 30 days after its end (2026-05-31 18:00); the report stands at 2026-06-05 12:00.
ORDERS = """order_id,customer_id,created_at,paid_at,status,paid_amount,coupon_code
O01,C001,2026-04-28 10:00,2026-04-28 10:05,paid,1000.00,
O02,C001,2026-05-01 10:30,2026-05-01 10:35,paid,5000.00,
O03,C002,2026-05-01 11:00,2026-05-01 11:02,paid,3000.00,
O04,C002,2026-05-03 15:00,2026-05-03 15:01,paid,1200.00,
O05,C003,2026-05-01 12:00,,created,10000.00,
O06,C005,2026-05-01 13:00,,created,5000.00,
O07,C006,2026-05-01 14:00,,created,2000.00,
O08,C006,2026-05-02 09:00,2026-05-02 09:10,paid,800.00,
O09,C008,2026-05-01 16:00,2026-05-01 16:01,paid,6000.00,tg2026
O10,C010,2026-05-01 17:00,2026-05-01 17:01,paid,2500.00,
O11,C021,2026-05-01 15:00,2026-05-01 15:05,paid,4000.00,
O12,C020,2026-05-01 15:30,2026-05-01 15:31,paid,1500.00,
O13,C030,2026-05-02 10:00,2026-05-02 10:01,paid,2000.00,TG2026
O14,,2026-05-01 16:30,2026-05-01 16:31,paid,700.00,TG2026
O15,C031,2026-05-01 16:40,2026-05-01 16:41,paid,900.00,
O16,C001,2026-06-02 10:00,2026-06-02 10:01,paid,300.00,TG2026
"""

REFUNDS = """refund_id,order_id,refunded_at,amount
R1,O04,2026-05-05 10:00,200.00
"""

PAYMENTS = """支付流水号,订单号,支付金额,支付时间,类型
P1,O05,2000.00,2026-05-01 12:05,定金
P2,O05,8000.00,2026-05-20 10:00,尾款
P3,O06,1000.00,2026-05-01 13:05,deposit
P4,O06,4000.00,2026-06-10 10:00,balance
"""

# (scan id, phone, customer id): the desk's scans on the day, in order.
SCANS = [
    ("S01", "13800138001", None),  # 张伟, forum
    ("S01", "13800138001", None),  # the same scan sent again: counts once
    ("S02", None, "C003"),  # 王芳, qq, by customer id
    ("S03", "13800138005", None),  # 陈静, wechat
    ("S04", "+86 138 0013 8005", None),  # 陈静 scanned again (a new scan id): one attendee
    ("S05", "13800138006", None),  # 杨磊, wechat
    ("S06", "13800138008", None),  # 黄强, sem
    ("S07", "13800138002", None),  # 李娜, forum
    ("S08", "13900139001", None),  # a walk-in (C021 by phone)
    ("S09", None, "C020"),  # a walk-in by customer id
    ("S10", "13900139001", None),  # the first walk-in again
]

# The hand count. Sign-ups: forum 张伟 李娜; qq 王芳 刘洋; wechat 陈静 杨磊 赵敏; sem 黄强 周杰 吴刚
# (张伟's second row, through WeChat, repeats him: the first counts). Check-ins are people, not
# scans: forum 2, qq 1 (王芳), wechat 2 (陈静 twice, 杨磊), sem 1 (黄强), walk-in 2; 10 scans.
# Orders of attendees from 05-01 09:00 to 05-31 18:00, money received by 06-05 12:00:
#   forum  O02 张伟 5000; O03 + O04 李娜 (C002, by her phone) 3000 + (1200 − 200 refunded)
#          → 2 buyers, 3 orders, 9000; O01 was before the event, O16 after the window
#   qq     O05 王芳: staged, deposit 2000 + balance 8000 both paid → 10000
#   wechat O06 陈静: deposit 1000 (the balance is paid 06-10, after the report) → 1000;
#          O08 杨磊 800 (O07 never paid) → 2 buyers, 2 orders, 1800
#   sem    O09 黄强 6000 (it has the coupon too, but 黄强 is an attendee); 吴刚's O10: no check-in
#   walk-in O11 (C021 by the walk-in's phone) 4000, O12 (C020) 1500 → 5500
#   coupon O13 (C030) 2000, O14 (a guest) 700 → 2 buyers, 2700; O15 has no coupon
# Unit price = sales ÷ buyers; cost per sign-up / attendee / order = channel cost ÷ count,
# rounded half up to the fen (forum 1000 ÷ 3 orders = 333.33; total 5800 ÷ 11 = 527.27).
HEAD = ("signups", "checkins", "buyers", "orders", "sales", "unit_price", "cost",
        "cost_per_signup", "cost_per_attendee", "cost_per_order")  # fmt: skip
EXPECTED = {
    "forum":   (2, 2, 2, 3, 9000.0, 4500.0, 1000.0, 500.0, 500.0, 333.33),
    "qq":      (2, 1, 1, 1, 10000.0, 10000.0, 600.0, 300.0, 600.0, 600.0),
    "wechat":  (3, 2, 2, 2, 1800.0, 900.0, 1200.0, 400.0, 600.0, 600.0),
    "sem":     (3, 1, 1, 1, 6000.0, 6000.0, 3000.0, 1000.0, 3000.0, 3000.0),
    "walk-in": (0, 2, 2, 2, 5500.0, 2750.0, 0.0, None, 0.0, 0.0),
    "coupon":  (0, 0, 2, 2, 2700.0, 1350.0, 0.0, None, None, 0.0),
    "total":   (10, 8, 10, 11, 35000.0, 3500.0, 5800.0, 580.0, 725.0, 527.27),
}  # fmt: skip
COSTS = {"forum": 1000, "QQ群": 600, "wechat": "1,200", "SEM": 3000}


def make_shop(root: Path):
    clock = ManualClock(datetime(2026, 4, 30, 2, 0, tzinfo=UTC))
    ws = workspace(root / "shop", clock)
    for table, text in (("customers", CUSTOMERS), ("orders", ORDERS), ("refunds", REFUNDS)):
        r = run_import(ws, table, write(root / f"{table}.csv", text))
        assert r.rejected == 0, r.reasons
    o2o.create_event(ws, EVENT, starts="2026-05-01 09:00", ends="2026-05-01 18:00",
                     channels=COSTS, coupon="TG2026", window_days=30)  # fmt: skip
    return ws, clock


def scan_all(ws) -> list[dict]:
    return [o2o.check_in(ws, EVENT, scan_id=s, phone=p, customer_id=c, at=DESK_AT)
            for s, p, c in SCANS]  # fmt: skip


@pytest.fixture
def shop(tmp_path):
    ws, clock = make_shop(tmp_path)
    res = o2o.import_signups(ws, EVENT, write(tmp_path / "报名.csv", SIGNUPS))
    assert (res["added"], res["already"], res["repeated"]) == (10, 0, 1)
    assert o2o.import_payments(ws, write(tmp_path / "payments.csv", PAYMENTS))["added"] == 4
    return ws, clock


def table(doc: dict) -> dict[str, tuple]:
    return {r["channel"]: tuple(r[k] for k in HEAD) for r in [*doc["channels"], doc["total"]]}


def test_the_report_reproduces_the_hand_count(shop):
    ws, _ = shop
    answers = scan_all(ws)
    assert [a["duplicate"] for a in answers] == [False, True] + [False] * 9
    assert [a["channel"] for a in answers][:3] == ["forum", "forum", "qq"]
    assert answers[8]["channel"] == "walk-in" and not answers[8]["signed_up"]
    doc = o2o.report(ws, EVENT, at=REPORT_AT)
    assert table(doc) == EXPECTED
    assert doc["total"]["scans"] == 10
    assert doc["event"]["channels"] == {"forum": 1000.0, "qq": 600.0, "wechat": 1200.0,
                                        "sem": 3000.0}  # fmt: skip


def test_staged_payments_count_as_they_are_paid(shop):
    ws, _ = shop
    scan_all(ws)
    # On 05-10 王芳 had paid only her deposit, and 李娜's refund was already made.
    early = table(o2o.report(ws, EVENT, at=datetime(2026, 5, 10, tzinfo=UTC)))
    assert early["qq"][4] == 2000.0
    # After 06-10 陈静's balance is in: 1000 + 4000; 张伟's O16 stays outside the window.
    late = table(o2o.report(ws, EVENT, at=datetime(2026, 6, 11, tzinfo=UTC)))
    assert late["wechat"][4] == 5800.0 and late["forum"] == EXPECTED["forum"]


def test_importing_again_and_the_cli_give_the_same_figures(shop, tmp_path):
    ws, _ = shop
    again = o2o.import_signups(ws, EVENT, tmp_path / "报名.csv")
    assert (again["added"], again["already"]) == (0, 11)
    assert o2o.import_payments(ws, tmp_path / "payments.csv")["already"] == 4
    home = ["--home", str(ws.home)]
    runner = CliRunner()
    for sid, phone, customer in SCANS:
        args = ["o2o", "checkin", EVENT, "--scan", sid, "--at", "2026-05-01 10:00", *home]
        args += ["--phone", phone] if phone else ["--customer", customer]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["o2o", "report", EVENT, "--now", "2026-06-05T12:00", "--json", *home])
    assert r.exit_code == 0, r.output
    assert table(json.loads(r.stdout)) == EXPECTED
    r = runner.invoke(app, ["o2o", "event", "list", "--json", *home])
    assert [(e["name"], e["signups"], e["scans"]) for e in json.loads(r.stdout)] == [
        (EVENT, 10, 10)
    ]


# -- hostile input -----------------------------------------------------------------------------
def count(ws, model) -> int:
    with ws.session() as s:
        return s.query(model).count()


def test_a_file_with_a_bad_phone_or_an_unknown_channel_is_refused_whole(shop, tmp_path):
    ws, _ = shop
    before = count(ws, O2OSignup)
    bad = write(tmp_path / "bad.csv", "name,phone,channel\n甲,13900000001,forum\n乙,12345,forum\n"
                "丙,13900000003,douyin\n丁,13900000004,wechta\n戊,,site\n")  # fmt: skip
    with pytest.raises(o2o.O2OError) as e:
        o2o.import_signups(ws, EVENT, bad)
    msg = str(e.value)
    assert "4 of 5 rows refused; nothing was stored" in msg
    assert "bad.csv: line 3: phone: '12345' is not a phone number" in msg
    assert "bad.csv: line 4: channel: 'douyin' is not a channel of event" in msg
    assert "line 5: channel: 'wechta'" in msg and "did you mean 'wechat'?" in msg
    assert "line 6: channel: 'site'" in msg  # not one of this event's channels
    assert count(ws, O2OSignup) == before


def test_a_file_without_the_columns_says_which_are_missing(shop, tmp_path):
    ws, _ = shop
    f = write(tmp_path / "cols.csv", "name,phnoe,channel\n甲,13900000001,forum\n")
    with pytest.raises(o2o.O2OError, match=r"no column for phone or customer_id.*'phnoe' "
                       r"\(did you mean 'phone'\?\)"):  # fmt: skip
        o2o.import_signups(ws, EVENT, f)


def test_oversize_files_are_refused_before_they_are_read(shop, tmp_path):
    ws, _ = shop
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:  # sparse: 21 MB of nothing on disk
        f.truncate(o2o.MAX_FILE_BYTES + 1)
    with pytest.raises(o2o.O2OError, match=r"huge.csv: 20,000,001 bytes; a file here may have"):
        o2o.import_signups(ws, EVENT, huge)
    many = tmp_path / "many.csv"
    many.write_text("phone,channel\n" + "13900000001,forum\n" * (o2o.MAX_ROWS + 1))
    with pytest.raises(o2o.O2OError, match=r"many.csv: 100,001 rows; a file here may have at most"):
        o2o.import_signups(ws, EVENT, many)
    assert count(ws, O2OSignup) == 10


def test_an_unknown_event_is_named_with_the_closest(shop, tmp_path):
    ws, _ = shop
    with pytest.raises(
        NotFound, match=r"no event named '五一家居团购' — did you mean '五一家居团购日'"
    ):
        o2o.check_in(ws, "五一家居团购", scan_id="X", phone="13800138001", at=DESK_AT)
    with pytest.raises(NotFound):
        o2o.import_signups(ws, "nope", tmp_path / "报名.csv")
    with pytest.raises(NotFound):
        o2o.report(ws, "nope")


def test_a_replayed_scan_counts_once_and_a_reused_scan_id_is_refused(shop):
    ws, _ = shop
    first = o2o.check_in(ws, EVENT, scan_id="R1", phone="13800138001", at=DESK_AT)
    again = o2o.check_in(ws, EVENT, scan_id="R1", phone="138 0013 8001", at=DESK_AT)
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    with pytest.raises(Conflict, match=r"scan 'R1' was recorded at 10:00:00 for another person "
                       r"\(phone 138\*\*\*\*8001"):  # fmt: skip
        o2o.check_in(ws, EVENT, scan_id="R1", phone="13800138002", at=DESK_AT)
    assert count(ws, O2OCheckin) == 1
    with pytest.raises(o2o.O2OError, match=r"phone: '110' is not a phone number"):
        o2o.check_in(ws, EVENT, scan_id="R2", phone="110", at=DESK_AT)
    with pytest.raises(o2o.O2OError, match=r"is outside event"):
        o2o.check_in(ws, EVENT, scan_id="R3", phone="13800138001",
                     at=datetime(2026, 5, 2, 2, tzinfo=UTC))  # fmt: skip
    assert count(ws, O2OCheckin) == 1


def test_bad_payments_are_refused_whole(shop, tmp_path):
    ws, _ = shop
    f = write(tmp_path / "pay.csv", "payment_id,order_id,amount,paid_at\nQ1,O09,10,2026-05-01\n"
              "Q2,O09,-5,2026-05-01\nQ3,O09,1.005,2026-05-01\nQ4,O09,3,yesterday\n")  # fmt: skip
    with pytest.raises(o2o.O2OError) as e:
        o2o.import_payments(ws, f)
    msg = str(e.value)
    assert "pay.csv: line 3: amount: '-5' is not an amount" in msg
    assert "line 4: amount: '1.005' has more than 2 decimals" in msg
    assert "line 5: paid_at: 'yesterday' is not a time" in msg
    changed = write(tmp_path / "changed.csv", "payment_id,order_id,amount,paid_at\n"
                    "P1,O05,2500,2026-05-01 12:05\n")  # fmt: skip
    with pytest.raises(Conflict, match="payment 'P1' is recorded already with other contents"):
        o2o.import_payments(ws, changed)


def test_events_are_checked_field_by_field(ws):
    with pytest.raises(o2o.O2OError, match="end: expected a time after the start"):
        o2o.create_event(ws, "x", starts="2026-05-01 18:00", ends="2026-05-01 09:00")
    with pytest.raises(o2o.O2OError, match="start: 'soon' is not a time"):
        o2o.create_event(ws, "x", starts="soon", ends="2026-05-01 09:00")
    with pytest.raises(o2o.O2OError, match=r"channels: the cost of 'forum': 'lots' is not"):
        o2o.create_event(ws, "x", starts="2026-05-01 09:00", ends="2026-05-01 18:00",
                         channels={"forum": "lots"})  # fmt: skip
    o2o.create_event(ws, "x", starts="2026-05-01 09:00", ends="2026-05-01 18:00")
    with pytest.raises(Conflict):
        o2o.create_event(ws, "x", starts="2026-05-01 09:00", ends="2026-05-01 18:00")


@pytest.mark.parametrize(
    ("text", "key"),
    [("13800138000", "13800138000"), ("+86 138-0013-8000", "13800138000"),
     ("0086 13800138000", "13800138000"), ("8613800138000", "13800138000"),
     ("(138) 0013 8000", "13800138000"), ("+44 20 7946 0958", "+442079460958"),
     ("12345", None), ("23800138000", None), ("138001380001", None), ("", None)],
)  # fmt: skip
def test_phones_are_normalised_alike_in_python_and_in_the_warehouse(text, key, ws):
    import ibis

    assert o2o.normalise_phone(text) == key
    if key is not None:
        with ws.warehouse() as wh:
            expr = o2o.phone_key(ibis.literal(text))
            assert wh.con.execute(expr) == key


def test_two_identical_scans_at_once_are_stored_once(store_ws):
    ws = store_ws  # its store: SQLite, or PostgreSQL
    o2o.create_event(ws, "e", starts="2026-05-01 09:00", ends="2026-05-01 18:00")
    barrier = threading.Barrier(2)
    answers: list = []

    def scan() -> None:
        barrier.wait()
        answers.append(o2o.check_in(ws, "e", scan_id="same", phone="13800138000", at=DESK_AT))

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["duplicate"] for a in answers) == [False, True]
    assert count(ws, O2OCheckin) == 1
    assert o2o.report(ws, "e", at=REPORT_AT)["total"]["checkins"] == 1


def test_sign_ups_from_excel_and_from_a_gbk_csv_read_alike(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    ws, _ = make_shop(tmp_path)
    wb = openpyxl.Workbook()
    sheet = wb.active
    for line in SIGNUPS.splitlines():
        cells = line.split(",")
        if cells[-1][:4].isdigit():  # a real time cell, as Excel keeps it
            cells[-1] = datetime.fromisoformat(cells[-1])
        sheet.append(cells)
    wb.save(tmp_path / "报名.xlsx")
    res = o2o.import_signups(ws, EVENT, tmp_path / "报名.xlsx")
    assert (res["added"], res["repeated"]) == (10, 1)
    gbk = write(tmp_path / "gbk.csv", SIGNUPS.replace("赵敏", "赵敏敏"), encoding="gbk")
    assert o2o.import_signups(ws, EVENT, gbk)["already"] == 11
    o2o.import_payments(ws, write(tmp_path / "payments.csv", PAYMENTS))
    scan_all(ws)
    assert table(o2o.report(ws, EVENT, at=REPORT_AT)) == EXPECTED
    bad = write(tmp_path / "bad.csv", 'phone,channel\n13900000001,"forum\n', encoding="utf-8")
    with pytest.raises(o2o.O2OError, match=r"bad.csv: line 2: malformed CSV row"):
        o2o.import_signups(ws, EVENT, bad)
