"""``--preset taobao-orders``: the Taobao/Tmall 订单报表 (tests/data/taobao_orders_gbk.csv)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from archer.config import Settings
from archer.ingest.importer import ImportResult, import_file
from support import workspace

DATA = Path(__file__).parent / "data" / "taobao_orders_gbk.csv"
NOW = datetime(2026, 1, 1)
BAD_DATE_LINE = 22  # 订单创建时间 2025-11-31 (there is no 31 November)
DUPLICATE = "2877765012349981234"  # on lines 6 and 32: the same order exported twice


def _import(settings: Settings, path: Path = DATA) -> ImportResult:
    return import_file(settings, "orders", path, preset="taobao-orders", now=NOW)


def _rows(settings: Settings, table: str, key: str) -> dict[str, dict]:
    with settings.warehouse() as wh:
        return {r[key]: r for r in wh.table(table).to_pyarrow().to_pylist()}


def _quarantine(result: ImportResult) -> dict[int, dict]:
    assert result.quarantine is not None
    with open(result.quarantine, encoding="utf-8", newline="") as f:
        return {int(r["line"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Settings, ImportResult]:
    settings = workspace(tmp_path_factory.mktemp("taobao"))
    return settings, _import(settings)


@pytest.fixture(scope="module")
def orders(shop) -> dict[str, dict]:
    return _rows(shop[0], "orders", "order_id")


def test_the_fixture_is_a_gbk_report_with_the_real_headers():
    raw = DATA.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header = raw.decode("gbk").splitlines()[0].split(",")
    assert len(header) == 61
    assert header[:4] == ["订单编号", "买家会员名", "买家支付宝账号", "支付单号"]
    assert "收货地址 " in header and "订单付款时间 " in header  # Taobao pads these


def test_every_row_is_taken_or_quarantined_with_its_reason(shop):
    _, r = shop
    assert r.rows_read == 41
    assert r.encoding == "gb18030"
    orders, customers = r.tables["orders"], r.tables["customers"]
    # The bad date is refused; the order exported twice (identical copies) is one order.
    assert (orders.inserted, orders.updated, orders.rejected) == (39, 0, 1)
    assert orders.repeats == 1
    assert (customers.inserted, customers.rejected) == (31, 0)
    assert r.rejected == 1
    assert r.reasons == {"orders: created_at is not a date/time": 1}
    assert r.summary == {
        "rows": 41,
        "orders": 40,
        "buyers": 31,
        "status_created": 3,
        "status_paid": 5,
        "status_shipped": 5,
        "status_completed": 23,
        "status_cancelled": 3,
        "status_refunded": 2,
        "status_unknown": 0,
    }


def test_the_quarantine_names_the_bad_lines_and_keeps_their_cells(shop):
    _, r = shop
    q = _quarantine(r)
    assert set(q) == {BAD_DATE_LINE}
    bad = q[BAD_DATE_LINE]
    assert "created_at: 2025-11-31 10:15:22 is not a date/time" in bad["reason"]
    # The cell as the file had it, guarded so a spreadsheet does not run it (archer.csvsafe);
    # importing the fixed file removes the guard again.
    assert bad["订单编号"] == '\'="3366778899001122338"'
    assert bad["买家会员名"] == "合肥包公"


def test_one_order_field_by_field(orders):
    o = orders["3402291845561234567"]  # ="3402291845561234567" in the file
    assert o["customer_id"] == "小鱼儿2018"
    # Shanghai time − 8 h: 2025-11-11 00:03:12 local is 2025-11-10 16:03:12 UTC.
    assert o["created_at"] == datetime(2025, 11, 10, 16, 3, 12)
    assert o["paid_at"] == datetime(2025, 11, 10, 16, 3, 40)
    assert o["cancelled_at"] is None
    assert o["status"] == "completed"  # 交易成功
    assert o["goods_amount"] == Decimal("299.00")
    assert o["shipping_fee"] == Decimal("0.00")
    assert o["discount_amount"] == Decimal("30.00")  # 299.00 + 0.00 − 总金额 269.00
    assert o["paid_amount"] == Decimal("269.00")
    assert o["channel"] == "app"  # 手机订单
    assert (o["province"], o["city"]) == ("Jiangsu", "Nanjing")  # 江苏省 南京市 鼓楼区 …(210000)


def test_statuses_unpaid_and_closed_orders(orders):
    by_status: dict[str, int] = {}
    for o in orders.values():
        by_status[o["status"]] = by_status.get(o["status"], 0) + 1
    assert by_status == {
        "created": 3, "paid": 5, "shipped": 5, "completed": 21, "cancelled": 3, "refunded": 2
    }  # fmt: skip
    for o in orders.values():
        if o["status"] == "created":  # 等待买家付款
            assert o["paid_at"] is None and o["paid_amount"] is None and o["cancelled_at"] is None
    # 交易关闭 before payment (订单关闭原因 买家未付款 …): cancelled at creation, nothing paid.
    closed = orders["3288776655443322110"]
    assert closed["status"] == "cancelled"
    assert closed["paid_at"] is None and closed["paid_amount"] is None
    assert closed["cancelled_at"] == closed["created_at"] == datetime(2025, 8, 1, 2, 0, 0)
    # 交易关闭 after payment (订单关闭原因 退款): a full refund, closed no earlier than paid.
    refunded = orders["3322110099887766554"]
    assert refunded["status"] == "refunded"
    assert refunded["paid_amount"] == Decimal("358.00")
    assert refunded["cancelled_at"] == refunded["paid_at"] == datetime(2025, 10, 5, 1, 31, 20)
    assert orders["3511223344556677889"]["status"] == "shipped"  # 卖家已发货，等待买家确认
    assert orders["3566778899001122335"]["status"] == "paid"  # 买家已付款，等待卖家发货


def test_discount_is_the_shops_not_the_platforms(orders):
    # 158.00 + 8.00 − 总金额 156.00 = 10.00 off by the shop; 集分宝 paid 5.00 more, so the
    # buyer paid 151.00, but that deduction is the platform's.
    o = orders["3480012398765001122"]
    assert o["discount_amount"] == Decimal("10.00")
    assert o["paid_amount"] == Decimal("151.00")
    assert orders["3398127734020112345"]["discount_amount"] == Decimal("0.00")


def test_municipalities_and_autonomous_regions(orders):
    places = {k: (o["province"], o["city"]) for k, o in orders.items()}
    assert places["3398127734020112345"] == ("Shanghai", "Shanghai")  # 上海 上海市 浦东新区
    assert places["2914476650113398765"] == ("Beijing", "Beijing")
    assert places["3499987761230045678"] == ("Tianjin", "Tianjin")
    assert places["3388776655443322119"] == ("Chongqing", "Chongqing")  # 重庆市 万州区
    assert places["3512209987601234567"] == ("Xinjiang", "Urumqi")
    assert places["3480012398765001122"] == ("Inner Mongolia", "Hohhot")
    assert places["3390087765123459876"] == ("Guangxi", "Nanning")
    assert places["2955510098234567890"] == ("Tibet", "Lhasa")
    assert places["3377781234509876543"] == ("Ningxia", "Yinchuan")
    assert places["3377665544332211009"] == ("Hong Kong", "Hong Kong")  # 香港岛 is no city
    assert places["3301234987650012398"] == ("Zhejiang", "Jinhua")  # 金华市 义乌市
    assert places["3444555666777888999"] == ("Zhejiang", "Hangzhou")  # no postcode
    assert all(p is not None and c is not None for p, c in places.values())


def test_channels(orders):
    assert orders["2914476650113398765"]["channel"] == "web"  # 是否手机订单 empty
    assert {o["channel"] for o in orders.values()} == {"app", "web"}


def test_customers_one_per_buyer_from_the_latest_order(shop):
    customers = _rows(shop[0], "customers", "customer_id")
    assert len(customers) == 31
    c = customers["小鱼儿2018"]  # ordered in Nanjing, later (2025-12-28) to Suzhou as 李小鱼
    assert (c["name"], c["province"], c["city"]) == ("李小鱼", "Jiangsu", "Suzhou")
    assert c["phone"] == "138****5678"  # written '138****5678 in the file
    assert json.loads(c["attributes"]) == {"alipay_account": "zha***@163.com"}
    assert customers["jack_wang88"]["attributes"] is None  # no Alipay account exported
    # A buyer whose only order was refused is still a customer.
    assert customers["合肥包公"]["name"] == "包青"


def test_the_same_report_twice_changes_nothing(tmp_path):
    settings = workspace(tmp_path)
    first = _import(settings)
    again = _import(settings)
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == first.inserted == 39 + 31
    assert again.tables["orders"].rejected == first.tables["orders"].rejected == 1


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig"])
def test_a_report_saved_again_from_excel(tmp_path, encoding):
    """Excel drops the ="…" guards, rewrites times as 2025/11/11 0:03 and may save UTF-8;
    an order number it read as a number comes back as 3.40229E+18 and cannot be trusted."""
    header = (
        "订单编号,买家会员名,买家应付货款,买家应付邮费,总金额,买家实际支付金额,订单状态,"
        "收货人姓名,收货地址 ,联系手机,订单创建时间,订单付款时间 ,订单关闭原因,是否手机订单"
    )
    lines = [
        "\t3402291845561234567,小鱼儿2018,299,0,269,269,交易成功,张小鱼,江苏省南京市鼓楼区中山北路1号,"
        "'13812345678,2025/11/11 0:03,2025/11/11 0:03,订单未关闭,手机订单",
        "'3402291845561234568,jack_wang88,59.9,10,69.9,69.9,卖家部分发货,王杰,"
        "北京市朝阳区建国路93号,,2025/12/1 9:30,2025/12/1 9:31,订单未关闭,",
        "3402291845561234569,南山南0521,128,0,128,0,交易关闭,赵磊,"
        "广东省 深圳市 南山区 科技园,,2025/12/2 10:00,,买家未付款,",
        "3.40229E+18,兰州拉面,45,0,45,45,交易成功,马强,甘肃省 兰州市,,2025/12/3 8:00,"
        "2025/12/3 8:01,订单未关闭,",
    ]
    path = tmp_path / "ExportOrderList202512031200.csv"
    path.write_bytes(("\r\n".join([header, *lines]) + "\r\n").encode(encoding))
    settings = workspace(tmp_path / "shop")
    r = _import(settings, path)
    assert r.tables["orders"].inserted == 3
    q = _quarantine(r)
    assert list(q) == [5]
    assert "3.40229E+18 is not a Taobao order number (Excel turned it into" in q[5]["reason"]
    orders = _rows(settings, "orders", "order_id")
    a = orders["3402291845561234567"]
    assert a["created_at"] == datetime(2025, 11, 10, 16, 3)
    assert (a["province"], a["city"], a["paid_amount"]) == ("Jiangsu", "Nanjing", Decimal("269"))
    b = orders["3402291845561234568"]
    assert (b["status"], b["province"], b["city"]) == ("shipped", "Beijing", "Beijing")
    c = orders["3402291845561234569"]
    assert (c["status"], c["paid_amount"], c["province"], c["city"]) == (
        "cancelled", None, "Guangdong", "Shenzhen"
    )  # fmt: skip
    customers = _rows(settings, "customers", "customer_id")
    assert customers["小鱼儿2018"]["phone"] == "13812345678"
    assert customers["兰州拉面"]["city"] == "Lanzhou"


def test_the_xlsx_download_lands_the_same_as_the_csv(tmp_path, orders):
    """Newer seller centres hand out .xlsx; its headers keep Taobao's trailing blanks."""
    openpyxl = pytest.importorskip("openpyxl")
    with DATA.open(encoding="gbk", newline="") as f:
        table = list(csv.reader(f))
    assert "收货地址 " in table[0]
    wb = openpyxl.Workbook()
    for row in table:
        # A workbook holds the order number as text; openpyxl would make ="…" a formula.
        wb.active.append([c[2:-1] if c.startswith('="') else c for c in row])
    path = tmp_path / "ExportOrderList.xlsx"
    wb.save(path)
    settings = workspace(tmp_path / "shop")
    r = _import(settings, path)
    assert (r.tables["orders"].inserted, r.rejected) == (39, 1)
    assert _rows(settings, "orders", "order_id") == orders


def test_a_file_that_is_not_the_report_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes("订单号,买家会员名,订单状态\r\n1,a,交易成功\r\n".encode("gbk"))
    settings = workspace(tmp_path / "shop")
    with pytest.raises(ValueError, match="not a taobao-orders file: columns 订单编号"):
        _import(settings, path)
    with settings.warehouse() as wh:
        assert wh.counts()["orders"] == 0
