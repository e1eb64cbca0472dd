"""Taobao reports as sellers really export them (issue 12, item 2): the order report with a
seller-chosen subset of columns, the 宝贝报表 (order lines) and the member list, each with its
preset (tests/data/README.md gives the fixtures' provenance)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archer.audiences.grammar import AudienceError
from archer.cli import app
from archer.ingest.importer import import_file
from archer.pipeline import build
from support import workspace

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 1, 1)
# The columns of a report whose seller left out 买家应付邮费 and 总金额 (the example).
SUBSET = ("订单编号", "买家会员名", "买家应付货款", "买家实际支付金额", "订单状态", "收货地址 ",
          "订单创建时间", "订单付款时间 ", "宝贝总数量")  # fmt: skip


def _subset_report(path: Path) -> Path:
    rows = list(csv.DictReader(io.StringIO((DATA / "taobao_orders_gbk.csv").read_bytes()
                                           .decode("gbk"))))  # fmt: skip
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(SUBSET)
    for r in rows:
        w.writerow([r[c] for c in SUBSET])
    path.write_bytes(out.getvalue().encode("gbk"))
    return path


def _rows(ws, table: str, key: str) -> dict[str, dict]:
    with ws.warehouse() as wh:
        return {r[key]: r for r in wh.table(table).to_pyarrow().to_pylist()}


def test_an_order_report_without_shipping_and_total_imports_and_says_what_it_lacked(tmp_path):
    full_ws, sub_ws = workspace(tmp_path / "full"), workspace(tmp_path / "subset")
    full = import_file(full_ws, "orders", DATA / "taobao_orders_gbk.csv", preset="taobao-orders",
                       now=NOW)  # fmt: skip
    sub = import_file(sub_ws, "orders", _subset_report(tmp_path / "ExportOrderList.csv"),
                      preset="taobao-orders", now=NOW)  # fmt: skip
    assert (sub.rows_read, sub.rejected) == (full.rows_read, full.rejected)
    assert sub.notes == ["no 买家应付邮费 column: shipping_fee is left empty",
                         "no 总金额 column: discount_amount is left empty"]  # fmt: skip
    a, b = _rows(full_ws, "orders", "order_id"), _rows(sub_ws, "orders", "order_id")
    assert a.keys() == b.keys()
    for oid, o in a.items():
        same = ("customer_id", "status", "created_at", "paid_at", "goods_amount", "paid_amount",
                "province", "city")  # fmt: skip
        assert {k: b[oid][k] for k in same} == {k: o[k] for k in same}, oid
        assert b[oid]["shipping_fee"] is None and b[oid]["discount_amount"] is None
    report = str(tmp_path / "ExportOrderList.csv")
    r = CliRunner().invoke(app, ["import", "orders", report, "--preset", "taobao-orders",
                                 "--home", str(sub_ws.home)])  # fmt: skip
    assert r.exit_code == 0 and "Note: no 总金额 column: discount_amount is left empty" in r.stdout


def test_an_order_report_with_no_amount_is_refused_naming_what_it_needs(tmp_path):
    path = tmp_path / "o.csv"
    text = "订单编号,买家会员名,订单状态,订单创建时间\r\n1,a,交易成功,2025-01-01 10:00\r\n"
    path.write_bytes(text.encode("gbk"))
    ws = workspace(tmp_path / "shop")
    with pytest.raises(ValueError, match="none of 买家实际支付金额, 买家应付货款, 总金额 found"):
        import_file(ws, "orders", path, preset="taobao-orders", now=NOW)
    with ws.warehouse() as wh:
        assert wh.counts()["orders"] == 0


def test_the_items_report_fills_order_lines_and_products(tmp_path):
    ws = workspace(tmp_path / "shop")
    r = import_file(ws, "order_items", DATA / "taobao_items_gbk.csv", preset="taobao-items",
                    now=NOW)  # fmt: skip
    assert r.rows_read == 10 and r.tables["order_items"].rejected == 2
    assert r.reasons == {"order_items: order_id is not a Taobao order number": 1,
                         "order_items: quantity is not a whole number": 1}  # fmt: skip
    with ws.warehouse() as wh:
        lines = wh.table("order_items").to_pyarrow().to_pylist()
    two = sorted((x["line_no"], x["product_id"], x["quantity"], x["unit_price"])
                 for x in lines if x["order_id"] == "2955510098234567890")  # fmt: skip
    assert two == [(1, "QM-QUILT-01", 1, Decimal("239.00")),
                   (2, "QM-PILLOW-01", 2, Decimal("150.50"))]  # fmt: skip
    products = _rows(ws, "products", "product_id")
    assert products["QM-CHAIR-01"]["name"] == "北欧实木餐椅家用靠背椅子简约现代书桌椅"
    assert products["QM-CHAIR-01"]["list_price"] == Decimal("99.00")  # its latest line
    mugs = [p for p in products if p.startswith("tb:")]  # no code: one key from the title
    assert len({products[p]["name"] for p in mugs}) == len(mugs) == 2  # the mug and the vase
    again = import_file(ws, "order_items", DATA / "taobao_items_gbk.csv", preset="taobao-items",
                        now=NOW)  # fmt: skip
    assert again.inserted == 0 and again.updated == 0  # the same keys: idempotent


def test_the_member_list_fills_customers_and_member_level_is_a_field(tmp_path):
    ws = workspace(tmp_path / "shop")
    r = import_file(ws, "customers", DATA / "taobao_members_gbk.csv", preset="taobao-members",
                    now=NOW)  # fmt: skip
    assert r.rows_read == 5 and r.notes and "member_level" in r.notes[0]
    c = _rows(ws, "customers", "customer_id")
    assert c["jack_wang88"]["gender"] == "m" and c["小鱼儿2018"]["province"] == "Jiangsu"
    assert c["快乐的小兔子"]["gender"] is None  # 保密: unknown, not refused
    assert r.reasons == {"customers: birthday is not a date": 1}  # 南山南0521's 1990-02-30
    assert "南山南0521" not in c and len(c) == 4
    orders = import_file(ws, "orders", DATA / "taobao_orders_gbk.csv", preset="taobao-orders",
                         now=NOW)  # fmt: skip
    assert orders.inserted > 0
    after = _rows(ws, "customers", "customer_id")  # the orders' buyers did not erase the members
    jack = after["jack_wang88"]
    assert jack["gender"] == "m" and "会员等级" in jack["attributes"]
    assert str(after["小鱼儿2018"]["birthday"]) == "1992-03-08" and len(after) > len(c)
    build(ws, date(2025, 12, 31))
    count = lambda q: ws.audiences.count(q)["count"]  # noqa: E731
    assert count('member_level in ("VIP2", "VIP3")') == 2  # 南山南0521's row was refused
    with pytest.raises(AudienceError, match="no customer has member_level 'VIP0'"):
        count('member_level = "VIP0"')
