"""Excel workbooks with several sheets (issue 12, item 8): ``--sheet NAME|N`` chooses one, and
a workbook whose first sheet is a notes sheet gets a message that lists its sheets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archer.cli import app
from conftest import rows, run_import, write

openpyxl = pytest.importorskip("openpyxl")

ORDERS = [
    ("order_id", "customer_id", "created_at", "paid_amount"),
    ("A1", "C1", "2024-05-01 10:00", 12.5),
    ("A2", "C2", "2024-05-02 11:00", "twelve"),
    ("A3", "C1", "2024-05-03 12:00", 30),
]


def workbook(path: Path, notes_first: bool = True) -> Path:
    """A seller's export as they come: a notes sheet, then the orders, then a summary."""
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "说明"
    notes["A1"] = "订单导出说明"
    notes["A2"] = "本表由店铺后台导出，金额单位为元。"
    notes["A4"] = "导出时间：2024-05-04"
    orders = wb.create_sheet("订单")
    for r in ORDERS:
        orders.append(list(r))
    wb.create_sheet("汇总").append(["orders", 3])
    if not notes_first:
        wb.move_sheet("订单", offset=-1)
    wb.save(path)
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_notes_sheet_first_gets_the_list_of_sheets(ws, tmp_path):
    book = workbook(tmp_path / "export.xlsx")
    r = invoke("import", "orders", str(book), "--home", str(ws.home))
    assert r.exit_code == 1 and "Traceback" not in r.output
    said = " ".join(r.output.split())
    assert "required columns 'order_id', 'created_at' of orders not found" in said
    assert "read from sheet '说明'" in said
    assert "the workbook's sheets are 1 说明, 2 订单, 3 汇总" in said
    assert "choose one with --sheet NAME or --sheet N" in said
    assert rows(ws, "orders") == []


@pytest.mark.parametrize("sheet", ["订单", "2", " 订单 "])
def test_sheet_by_name_or_number(ws, tmp_path, sheet):
    book = workbook(tmp_path / "export.xlsx")
    r = invoke("import", "orders", str(book), "--sheet", sheet, "--home", str(ws.home))
    assert r.exit_code == 0, r.output
    assert {o["order_id"]: o["paid_amount"] for o in rows(ws, "orders")} == {
        "A1": 12.5,
        "A3": 30.0,
    }
    # The refused row is named by its row in the chosen sheet.
    (q,) = ws.settings.quarantine_dir.glob("*.csv")
    with open(q, encoding="utf-8") as f:
        (bad,) = list(csv.DictReader(f))
    assert bad["line"] == "3" and "paid_amount: twelve is not an amount" in bad["reason"]


def test_the_first_sheet_is_still_the_default(ws, tmp_path):
    book = workbook(tmp_path / "export.xlsx", notes_first=False)
    assert run_import(ws, "orders", book).inserted == 2


@pytest.mark.parametrize("sheet", ["Orders", "4", "0"])
def test_an_unknown_sheet_is_refused_with_the_list(ws, tmp_path, sheet):
    book = workbook(tmp_path / "export.xlsx")
    r = invoke("import", "orders", str(book), "--sheet", sheet, "--home", str(ws.home))
    said = " ".join(r.output.split())
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert (
        f"--sheet '{sheet}': no such sheet; the workbook's sheets are 1 说明, 2 订单, 3 汇总"
        in said
    )


def test_sheet_is_for_workbooks(ws, tmp_path):
    f = write(tmp_path / "o.csv", "order_id,customer_id,created_at\nA1,C1,2024-05-01\n")
    r = invoke("import", "orders", str(f), "--sheet", "2", "--home", str(ws.home))
    assert r.exit_code == 1 and "--sheet is for Excel workbooks" in r.output
