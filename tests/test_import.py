"""Imports as a new user meets them: good files, odd encodings, bad rows, bad files."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from archer.ingest.importer import ImportError_
from archer.ingest.sources import SourceError
from conftest import rows, run_import, write

ORDERS = (
    "订单编号,会员ID,下单时间,付款时间,订单状态,实付金额,省份,城市\n"
    "O1,C1,2024-05-01 10:00:00,2024-05-01 10:05:00,交易成功,￥129.90,江苏省,南京市\n"
    "O2,C2,2024/5/2 11:00,,等待买家付款,,上海,上海市\n"
    "O3,C1,2024-05-03T08:30:00+00:00,2024-05-03T08:31:00Z,paid,30,Zhejiang,Hangzhou\n"
)


def test_chinese_headers_types_time_zone_and_places(ws, tmp_path):
    r = run_import(ws, "orders", write(tmp_path / "o.csv", ORDERS))
    assert (r.rows_read, r.inserted, r.rejected) == (3, 3, 0)
    assert r.mapping["order_id"] == "订单编号" and r.mapping["paid_amount"] == "实付金额"
    got = {o["order_id"]: o for o in rows(ws, "orders")}
    # Shop-local times (Asia/Shanghai, UTC+8) are stored in UTC; explicit offsets are honoured.
    assert got["O1"]["created_at"] == datetime(2024, 5, 1, 2, 0)
    assert got["O2"]["created_at"] == datetime(2024, 5, 2, 3, 0)
    assert got["O3"]["paid_at"] == datetime(2024, 5, 3, 8, 31)
    assert got["O1"]["paid_amount"] == Decimal("129.90")
    assert (got["O1"]["status"], got["O2"]["status"], got["O3"]["status"]) == (
        "completed",
        "created",
        "paid",
    )
    assert (got["O1"]["province"], got["O1"]["city"]) == ("Jiangsu", "Nanjing")
    assert (got["O2"]["province"], got["O2"]["city"]) == ("Shanghai", "Shanghai")
    assert got["O2"]["paid_at"] is None


def test_same_file_twice_changes_nothing_and_a_later_file_updates_by_key(ws, tmp_path):
    f = write(tmp_path / "o.csv", ORDERS)
    run_import(ws, "orders", f)
    before = rows(ws, "orders", "order_id")
    again = run_import(ws, "orders", f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert rows(ws, "orders", "order_id") == before
    later = write(
        tmp_path / "o2.csv",
        "order_id,customer_id,created_at,paid_at,paid_amount\n"
        "O2,C2,2024-05-02 11:00:00,2024-05-02 12:00:00,88\n"
        "O4,C3,2024-06-01 09:00:00,,\n",
    )
    r = run_import(ws, "orders", later)
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 0)
    o2 = next(o for o in rows(ws, "orders") if o["order_id"] == "O2")
    assert o2["paid_amount"] == Decimal("88.00") and o2["status"] == "paid"
    assert len(rows(ws, "orders")) == 4


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b""), ("gb18030", b"")],
)
def test_encodings(ws, tmp_path, encoding, prefix):
    f = tmp_path / "o.csv"
    f.write_bytes(prefix + ORDERS.encode(encoding))
    r = run_import(ws, "orders", f)
    assert r.inserted == 3 and r.rejected == 0
    assert "order_id" in r.mapping  # the BOM did not stick to the first header
    o1 = next(o for o in rows(ws, "orders") if o["order_id"] == "O1")
    assert o1["province"] == "Jiangsu"


@pytest.mark.parametrize("delim", [";", "\t", "|"])
def test_any_delimiter(ws, tmp_path, delim):
    text = "order_id,customer_id,created_at\nA,C1,2024-01-01\nB,C2,2024-01-02\n".replace(",", delim)
    r = run_import(ws, "orders", write(tmp_path / "o.txt", text))
    assert r.inserted == 2 and r.delimiter == delim


def test_mixed_date_formats(ws, tmp_path):
    text = (
        "order_id,created_at\n"
        "A,2024-01-05\nB,2024/1/6 7:05\nC,20240107\nD,2024年1月8日\nE,2024-01-09T10:00:00\n"
        "F,05.01.2024 aa\nG,2023-02-30\nH,1850-01-01\n"
    )
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    assert r.inserted == 5 and r.rejected == 3
    q = Path(r.quarantine).read_text(encoding="utf-8")
    assert "created_at: 2023-02-30 is not a date/time" in q
    assert "created_at: 1850-01-01 is outside" in q


def test_bad_rows_are_quarantined_with_line_reason_and_cells(ws, tmp_path):
    text = (
        "order_id,customer_id,created_at,paid_at,paid_amount\n"
        "A,C1,2024-01-01 10:00,2024-01-01 10:01,10\n"
        'B,C2,"2024-01-02\n10:00",,x\n'  # a quoted newline: this record spans lines 3-4
        "C,C3,2024-01-03,2024-01-03,5,extra\n"
        "A,C9,2024-01-04,,1\n"
        "D,C4,,2024-01-01,-3\n"
        "E,C5,2024-01-06 10:00,2024-01-05 10:00,7\n"
        "F,C6,2024-01-07,,8\n"
    )
    r = run_import(ws, "orders", write(tmp_path / "bad.csv", text))
    assert r.rows_read == 7
    # A key given twice with different values is ambiguous: both rows wait in the quarantine.
    assert (r.inserted, r.rejected) == (1, 6)  # only F
    with open(r.quarantine, encoding="utf-8") as f:
        q = {row["line"]: row for row in __import__("csv").DictReader(f)}
    assert set(q) == {"2", "3", "4", "5", "6", "7"}
    assert "paid_amount: x is not an amount" in q["3"]["reason"]
    assert "too many columns" in q["4"]["reason"] and q["4"]["raw"].startswith("C,C3")
    for line in ("2", "5"):
        assert (
            "order_id given more than once with different values (A: lines 2, 5)"
            in (q[line]["reason"])
        )
    assert "created_at is missing" in q["6"]["reason"]
    assert "paid_at is before created_at" in q["7"]["reason"]
    assert q["5"]["customer_id"] == "C9"  # the original cells travel with the reason
    assert r.rows_read == r.inserted + r.updated + r.unchanged + r.rejected


def test_missing_required_column_stops_before_writing(ws, tmp_path):
    f = write(tmp_path / "o.csv", "id,when\n1,2024-01-01\n")
    with pytest.raises(ImportError_) as e:
        run_import(ws, "orders", f)
    msg = str(e.value)
    assert "'order_id'" in msg and "headers found: id, when" in msg and "--map" in msg
    assert rows(ws, "orders") == []
    r = run_import(ws, "orders", f, mapping=["id=order_id", "when=created_at"])
    assert r.inserted == 1


def test_unmapped_customer_columns_are_kept_as_attributes(ws, tmp_path):
    text = (
        "会员ID,性别,生日,邮箱,短信订阅,会员等级\n"
        "C1,女,1990-05-01,a@x.cn,是,金卡\n"
        "C2,男,,b@x.cn,否,\n"
    )
    r = run_import(ws, "customers", write(tmp_path / "c.csv", text))
    assert r.inserted == 2
    c = {x["customer_id"]: x for x in rows(ws, "customers")}
    assert c["C1"]["gender"] == "f" and c["C2"]["gender"] == "m"
    assert c["C1"]["sms_opt_in"] is True and c["C2"]["sms_opt_in"] is False
    assert json.loads(c["C1"]["attributes"]) == {"会员等级": "金卡"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary\x00junk" * 100, "binary file"),
        (b"PK\x03\x04rest-of-a-zip", "zip archive"),
        (b"\n\n   \n", "no rows"),
    ],
)
def test_unreadable_files_get_a_clear_message(ws, tmp_path, content, message):
    f = tmp_path / "x.csv"
    f.write_bytes(content)
    with pytest.raises(SourceError, match=message) as e:
        run_import(ws, "orders", f)
    assert str(f) in str(e.value)


def test_missing_path(ws, tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        run_import(ws, "orders", tmp_path / "nope.csv")


def test_header_only_file_imports_nothing(ws, tmp_path):
    r = run_import(ws, "orders", write(tmp_path / "o.csv", "order_id,created_at\n"))
    assert (r.rows_read, r.inserted, r.rejected) == (0, 0, 0)


def test_unknown_table(ws, tmp_path):
    with pytest.raises(ValueError, match="expected one of customers"):
        run_import(ws, "ordres", write(tmp_path / "o.csv", ORDERS))


def test_excel_parquet_and_gzip_land_the_same(ws, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    sh = wb.active
    sh.append(["order_id", "customer_id", "created_at", "paid_amount"])
    sh.append(["X1", "C1", datetime(2024, 3, 1, 9, 30), 12.5])
    sh.append(["X2", 1002, "2024-03-02 10:00", "abc"])
    wb.save(tmp_path / "o.xlsx")
    r = run_import(ws, "orders", tmp_path / "o.xlsx")
    assert (r.inserted, r.rejected) == (1, 1)
    assert "3," in Path(r.quarantine).read_text()  # Excel row 3 as the spreadsheet shows it

    duckdb.sql(
        "COPY (SELECT 'P' || i AS order_id, '2024-04-0' || (i % 9 + 1) AS created_at "
        f"FROM range(1, 6) t(i)) TO '{tmp_path / 'o.parquet'}' (FORMAT parquet)"
    )
    assert run_import(ws, "orders", tmp_path / "o.parquet").inserted == 5

    with gzip.open(tmp_path / "o.csv.gz", "wt", encoding="utf-8") as f:
        f.write(ORDERS)
    assert run_import(ws, "orders", tmp_path / "o.csv.gz").inserted == 3
    assert len(rows(ws, "orders")) == 9


def test_negative_quantity_needs_a_cancellation(ws, tmp_path):
    text = "order_id,line_no,product_id,quantity,unit_price\nO1,1,P1,2,9.9\nO1,2,P2,-1,9.9\n"
    r = run_import(ws, "order_items", write(tmp_path / "i.csv", text))
    assert (r.inserted, r.rejected) == (1, 1)
    assert "negative quantity" in Path(r.quarantine).read_text()


def test_an_import_is_one_transaction(ws, monkeypatch):
    """Fault injection (a deliberate failure, not a mock of behaviour): the last table's
    write fails, and nothing of the import remains."""
    from archer.warehouse import Warehouse
    from conftest import shared

    real = Warehouse.upsert

    def failing(self, name, rows_, provided=None):
        if name == "products":
            raise RuntimeError("disk full (injected)")
        return real(self, name, rows_, provided)

    monkeypatch.setattr(Warehouse, "upsert", failing)
    with pytest.raises(RuntimeError, match="injected"):
        run_import(ws, "orders", shared("cdnow", "CDNOW_sample.txt"), preset="cdnow")
    assert rows(ws, "orders") == [] and rows(ws, "customers") == []
    assert list(ws.settings.quarantine_dir.glob("*.csv")) == []


def test_identical_copies_are_one_row_and_differing_copies_are_refused(ws, tmp_path):
    """Overlapping exports repeat rows: a copy identical in every cell is no conflict."""
    text = (
        "order_id,customer_id,created_at\n"
        "A,C1,2024-01-01\nA,C1,2024-01-01\nA,C1,2024-01-01\n"
        "B,C2,2024-01-02\nB,C3,2024-01-02\n"
        "C,C4,2024-01-03\n"
    )
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    assert (r.rows_read, r.inserted, r.rejected) == (6, 2, 2)
    assert r.tables["orders"].repeats == 2
    assert sorted(o["order_id"] for o in rows(ws, "orders")) == ["A", "C"]
    q = Path(r.quarantine).read_text(encoding="utf-8")
    assert "B: lines 5, 6" in q


@pytest.mark.slow
def test_a_200_mb_file_streams_and_keeps_line_numbers(ws, tmp_path):
    """2.2 million lines; three bad ones deep inside must come back with their own line numbers."""
    n = 2_200_000
    body = tmp_path / "body.csv"
    duckdb.sql(
        f"""COPY (SELECT 'O' || lpad(i::VARCHAR, 9, '0') AS order_id,
                        'C' || (i % 50000) AS customer_id,
                        strftime(TIMESTAMP '2025-01-01' + to_seconds(i * 7), '%Y-%m-%d %H:%M:%S')
                            AS created_at,
                        CASE WHEN i = 1500000 THEN 'not-a-date' END AS paid_at,
                        round(10 + (i % 997) * 0.37, 2) AS paid_amount,
                        repeat('x', 40) AS coupon_code,
                        ['江苏省', 'Zhejiang', '上海'][i % 3 + 1] AS province
                 FROM range({n}) t(i)) TO '{body}' (HEADER)"""
    )
    lines = body.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(1_000_001, "BROKEN,row,with,too,many,fields,here,!\n")  # becomes line 1,000,002
    big = tmp_path / "big.csv"
    big.write_text("".join(lines), encoding="utf-8")
    del lines
    assert big.stat().st_size > 200_000_000
    r = run_import(ws, "orders", big)
    assert r.rows_read == n + 1
    assert (r.inserted, r.rejected) == (n - 1, 2)
    with open(r.quarantine, encoding="utf-8") as f:
        q = {int(row["line"]): row for row in __import__("csv").DictReader(f)}
    assert set(q) == {1_000_002, 1_500_003}
    assert q[1_500_003]["order_id"] == "O001500000"  # i = 1,500,000: header + 1 + the broken line
    assert "not-a-date" in q[1_500_003]["reason"]
    assert q[1_000_002]["raw"].startswith("BROKEN")


def test_excel_unicode_text_export(ws, tmp_path):
    """Excel's "Unicode Text" export: UTF-16 with a BOM, tab-separated."""
    text = (
        "订单编号\t下单时间\t省份\r\nU1\t2024-03-01 09:00\t广东省\r\nU2\t2024-03-02 09:00\t四川\r\n"
    )
    f = tmp_path / "orders.txt"
    f.write_bytes(text.encode("utf-16"))
    r = run_import(ws, "orders", f)
    assert (r.inserted, r.rejected, r.delimiter, r.encoding) == (2, 0, "\t", "utf-16")
    assert {o["province"] for o in rows(ws, "orders")} == {"Guangdong", "Sichuan"}


def test_zones_numbers_and_blank_cells(ws, tmp_path):
    text = (
        "order_id,created_at,paid_amount,shipping_fee\n"
        'Z1,2024-03-01T05:45Z,"12,50",\n'
        'Z2,2024-03-01 10:00:00 +09:00,"1,250.00",   \n'
        "Z3,2024-03-01 10:00:00-05,3,\n"
        "Z4,2024-03-01 10:00:00 UTC,4,\n"
        "Z5,   ,5,\n"
    )
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    got = {o["order_id"]: o for o in rows(ws, "orders")}
    assert got["Z1"]["created_at"] == datetime(2024, 3, 1, 5, 45)
    assert got["Z2"]["created_at"] == datetime(2024, 3, 1, 1, 0)
    assert got["Z3"]["created_at"] == datetime(2024, 3, 1, 15, 0)
    assert got["Z4"]["created_at"] == datetime(2024, 3, 1, 10, 0)
    assert got["Z1"]["paid_amount"] == Decimal("12.50")
    assert got["Z2"]["paid_amount"] == Decimal("1250.00") and got["Z2"]["shipping_fee"] is None
    # A created_at of blanks is a missing one, not an unreadable one.
    assert "created_at is missing" in Path(r.quarantine).read_text(encoding="utf-8")
    items = "order_id,line_no,product_id,quantity\nZ1,1,P1,1.5\nZ1,2,P1,3.0\n"
    r = run_import(ws, "order_items", write(tmp_path / "i.csv", items))
    assert (r.inserted, r.rejected) == (1, 1)  # 1.5 is not rounded to 2


def test_place_names_in_their_many_spellings(ws, tmp_path):
    text = (
        "customer_id,province,city\n"
        "P1,Jiangsu Province,nanjing\n"
        "P2,Nei Mongol,\n"
        "P3,Hong Kong SAR,\n"
        "P4,江苏 省,苏州市\n"
        "P5,,Xi'an\n"
        "P6,北京,朝阳\n"
        "P7,上海市,\n"
        "P8,Bavaria,Munich\n"
    )
    run_import(ws, "customers", write(tmp_path / "c.csv", text))
    got = {c["customer_id"]: (c["province"], c["city"]) for c in rows(ws, "customers")}
    assert got == {
        "P1": ("Jiangsu", "Nanjing"),
        "P2": ("Inner Mongolia", None),
        "P3": ("Hong Kong", "Hong Kong"),
        "P4": ("Jiangsu", "Suzhou"),
        "P5": ("Shaanxi", "Xi'an"),
        "P6": ("Beijing", "朝阳"),  # Beijing's district, not Liaoning's city of Chaoyang
        "P7": ("Shanghai", "Shanghai"),
        "P8": ("Bavaria", "Munich"),  # unknown places are kept as written
    }


def test_a_partial_file_updates_only_its_columns(ws, tmp_path):
    members = "会员ID,姓名,邮箱,省份,邮件订阅\nC1,王芳,wf@x.cn,浙江,是\nC2,李雷,ll@x.cn,江苏,是\n"
    run_import(ws, "customers", write(tmp_path / "c.csv", members))
    consent = "customer_id,email_opt_in\nC1,false\nC2,true\nC3,true\n"
    r = run_import(ws, "customers", write(tmp_path / "consent.csv", consent))
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 1)
    got = {c["customer_id"]: c for c in rows(ws, "customers")}
    assert got["C1"]["email_opt_in"] is False
    # What the consent file did not have is left as it was.
    assert (got["C1"]["name"], got["C1"]["email"], got["C1"]["province"]) == (
        "王芳",
        "wf@x.cn",
        "Zhejiang",
    )
    assert got["C3"]["name"] is None  # a new member has only what the file gives


def test_an_unterminated_quote_is_quarantined_not_fatal(ws, tmp_path):
    text = 'order_id,created_at\nA,2024-01-01\nB,"2024-01-02\nC,2024-01-03\n'
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    assert (r.inserted, r.rejected) == (1, 1)
    q = Path(r.quarantine).read_text(encoding="utf-8")
    assert q.splitlines()[1].startswith("3,malformed CSV row")  # line 3, and what it swallowed


def test_mixed_copies_name_each_line_once(ws, tmp_path):
    text = "order_id,created_at\nA,2024-01-01\nA,2024-01-01\nA,2024-01-02\nB,bad\nB,bad\n"
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    with open(r.quarantine, encoding="utf-8") as f:
        q = list(__import__("csv").DictReader(f))
    assert [row["line"] for row in q] == ["2", "3", "4", "5", "6"]
    assert "(A: lines 2, 3, 4)" in q[0]["reason"] and q[0]["reason"].count("given more") == 1
    assert q[3]["reason"].count("is not a date/time") == 1


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        ("129.90", "129.90"),
        ("￥12,50", "12.50"),
        ("1.250,00", "1250.00"),
        ("1,250", "1250.00"),
        ("¥1,250.00", "1250.00"),
        ("RMB 88", "88.00"),
        ("30元", "30.00"),
        ("-5,5", "-5.50"),
    ],
)
def test_amounts_as_shops_write_them(ws, tmp_path, cell, amount):
    text = f'order_id,created_at,paid_amount\nA,2024-05-01 05:45 UTC,"{cell}"\n'
    r = run_import(ws, "orders", write(tmp_path / "o.csv", text))
    assert r.rejected == 0, r.reasons
    o = rows(ws, "orders")[0]
    assert o["paid_amount"] == Decimal(amount)
    assert o["created_at"] == datetime(2024, 5, 1, 5, 45)


def test_a_blank_before_z_and_jilin_without_a_city(ws, tmp_path):
    text = "order_id,created_at,province\nA,2024-05-01 05:45:00 Z,吉林省\n"
    run_import(ws, "orders", write(tmp_path / "o.csv", text))
    o = rows(ws, "orders")[0]
    assert o["created_at"] == datetime(2024, 5, 1, 5, 45)
    assert (o["province"], o["city"]) == ("Jilin", None)


def test_tabs_and_stray_line_breaks_are_trimmed(ws, tmp_path):
    text = 'customer_id,name\n"\tC1\t","  王芳\r"\n'
    run_import(ws, "customers", write(tmp_path / "c.csv", text))
    c = rows(ws, "customers")[0]
    assert (c["customer_id"], c["name"]) == ("C1", "王芳")
