"""What reading a file once (CSV) or where it lies (Parquet) must keep: every refused row at
its own line with its own cells, wherever in a large file it is, and typed Parquet cells
taken as they are with the same results as their text."""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import rows, run_import

LINES = 300_000  # enough for the engine to read the file in many pieces, in parallel


def _big_orders(path: Path) -> dict[int, str]:
    """A CSV of LINES orders with a few bad rows spread through it: {line: what is wrong}."""
    bad = {
        1_000 + 97 * k: kind for k, kind in enumerate(["date", "amount", "negative", "fields"] * 20)
    }
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "customer_id", "created_at", "paid_amount", "shipping_fee"])
        line = 1
        for i in range(LINES):
            line += 1
            kind = bad.get(line)
            row = [f"O{i:07d}", f"C{i % 5000}", "2024-05-01 10:00:00", "12.50", "6.00"]
            if kind == "date":
                row[2] = "2024-02-30 10:00:00"
            elif kind == "amount":
                row[3] = "N/A"
            elif kind == "negative":
                row[4] = "-5.00"
            elif kind == "fields":  # a malformed line: more fields than columns
                row.append("extra")
            w.writerow(row)
    return bad


def test_refused_rows_of_a_large_file_keep_their_lines_and_cells(ws, tmp_path):
    path = tmp_path / "orders.csv"
    bad = _big_orders(path)
    r = run_import(ws, "orders", path)
    assert r.rows_read == LINES
    assert r.rejected == len(bad)
    assert r.inserted == LINES - len(bad)
    with Path(r.quarantine).open(encoding="utf-8") as f:
        got = {int(q["line"]): q for q in csv.DictReader(f)}
    assert set(got) == set(bad)
    for line, kind in bad.items():
        q = got[line]
        if kind == "fields":
            assert q["reason"].startswith("malformed CSV row") and q["raw"]
            continue
        # The cells are those of that very line: its order id follows from its number.
        assert q["order_id"] == f"O{line - 2:07d}"
        word = {"date": "created_at: 2024-02-30", "amount": "paid_amount: N/A", "negative": "-5.00"}
        assert word[kind] in q["reason"]


def test_typed_parquet_cells_give_what_their_text_gives(ws, tmp_path):
    """Times, decimals and whole numbers stay typed; floats and zoned times go through text."""
    table = pa.table(
        {
            "order_id": ["a1", "a2", "a3", "a4", "a4", " a6 ", "a7"],
            "created_at": pa.array(
                [
                    datetime(2024, 5, 1, 10),
                    datetime(1985, 1, 1),
                    None,
                    datetime(2024, 5, 1),
                    datetime(2024, 5, 2),
                    datetime(2024, 5, 1, 12, 0, 0, 123000),
                    datetime(1991, 6, 1, 12),  # Shanghai kept summer time then: UTC+9
                ],
                pa.timestamp("ms"),
            ),
            "paid_at": pa.array(
                [datetime(2024, 5, 1, 9), None, None, None, None, None, None],
                pa.timestamp("us", tz="UTC"),
            ),
            "goods_amount": pa.array(
                [Decimal(x) for x in ("12.50", "-1.00", "0", "3.1", "3.1", "1", "2")],
                pa.decimal128(10, 2),
            ),
            "shipping_fee": pa.array([1.005, -2.0, 0.0, 0.1, 0.1, 0.0, 1.0], pa.float64()),
            "discount_amount": pa.array([1, -3, 0, 0, 0, 0, 0], pa.int32()),
        }
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path)
    r = run_import(ws, "orders", path)
    assert (r.rows_read, r.inserted, r.rejected) == (7, 3, 4)
    got = {o["order_id"]: o for o in rows(ws, "orders")}
    assert got["a1"]["created_at"] == datetime(2024, 5, 1, 2)  # shop-local → UTC
    assert got["a1"]["paid_at"] == datetime(2024, 5, 1, 9)  # a zoned time is an instant
    assert got["a1"]["shipping_fee"] == Decimal("1.01")  # the float's text, rounded
    assert got["a6"]["created_at"] == datetime(2024, 5, 1, 4, 0, 0, 123000)
    assert got["a7"]["created_at"] == datetime(1991, 6, 1, 3)
    with Path(r.quarantine).open(encoding="utf-8") as f:
        q = {int(x["line"]): x for x in csv.DictReader(f)}
    assert set(q) == {2, 3, 4, 5}
    assert q[2]["reason"] == (
        "orders: created_at: 1985-01-01 00:00:00 is outside 1990-01-01 .. 2026-11-02; "
        "discount_amount: -3 is negative; shipping_fee: -2.0 is negative"
    )
    # Cells as text, guarded as a text file's would be.
    assert (q[2]["discount_amount"], q[2]["goods_amount"]) == ("'-3", "'-1.00")
    assert q[3]["reason"] == "orders: created_at is missing"
    assert "given more than once with different values (a4: lines 4, 5)" in q[4]["reason"]
