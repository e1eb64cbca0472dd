"""Presets on the real public files: every line and invoice accounted for."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from conftest import rows, run_import, shared
from retail_ref import reference
from support import workspace


@pytest.fixture
def uk(tmp_path):
    return workspace(tmp_path / "uk", timezone="Europe/London", currency="GBP")


def test_online_retail_everything_accounted_for(uk):
    r = run_import(
        uk, "orders", shared("online_retail", "online_retail.csv.gz"), preset="online-retail"
    )
    s = r.summary
    assert (s["lines"], s["invoices"], s["customers"]) == (541_909, 25_900, 4_372)
    assert s["guest_lines"] == 135_080
    assert (s["credit_notes"], s["credit_lines"]) == (3_836, 9_288)
    t = r.tables
    # Lines: sale lines taken + credit lines taken (refunds) + rejected = every line.
    assert t["order_items"].inserted + t["refunds"].inserted + t["order_items"].rejected == 541_909
    assert t["refunds"].inserted == 9_288 and t["refunds"].rejected == 0
    # Invoices: each is an order, a credit note, or rejected (all its lines were rejected).
    assert t["orders"].inserted + 3_836 + t["orders"].rejected == 25_900
    assert t["customers"].inserted == 4_372
    assert r.rows_read == 541_909
    # The 1,336 stock adjustments (negative quantity, not a C… invoice) and the two
    # negative "Adjust bad debt" prices are the only lines refused.
    assert (
        r.reasons["order_items: negative quantity on an order that is not a cancellation"] == 1336
    )
    assert r.reasons["order_items: unit_price is negative"] == 2
    assert t["order_items"].rejected == 1338
    with open(r.quarantine, encoding="utf-8") as f:
        q = list(csv.DictReader(f))
    assert len(q) == r.rejected == 1338  # one quarantine row per source line
    assert all(row["InvoiceNo"] and row["reason"] for row in q)

    with uk.warehouse() as wh:
        o = wh.table("orders")
        counts = o.group_by("status").aggregate(n=o.count()).to_pyarrow().to_pylist()
        by_status = {d["status"]: d["n"] for d in counts}
        guests = int(o.filter(o.customer_id.isnull()).count().execute())
    assert by_status == {"completed": 20_726}  # credit notes are refunds, not orders
    assert guests > 1_000  # guest orders are kept, not dropped


def test_online_retail_order_totals_match_plain_sql(uk):
    """goods_amount per invoice = Σ quantity × price over its lines, computed independently."""
    path = shared("online_retail", "online_retail.csv.gz")
    run_import(uk, "orders", path, preset="online-retail")
    ref = dict(
        duckdb.sql(
            f"""SELECT InvoiceNo, round(sum(Quantity * UnitPrice), 2)
                FROM read_csv('{path}') WHERE Quantity >= 0 AND InvoiceNo NOT LIKE 'C%'
                AND UnitPrice >= 0 GROUP BY 1"""
        ).fetchall()
    )
    got = {o["order_id"]: float(o["goods_amount"]) for o in rows(uk, "orders")}
    assert len(got) == len(ref)
    assert all(abs(got[k] - v) < 0.005 for k, v in ref.items())

    # Each credit line is one refund of what it credits, on the order retail_ref matches it to
    # (pandas' merge_asof over the raw file): the customer's own earlier invoice.
    cr = reference(path).credits
    refunds = {
        (r["refund_id"].split("-")[0], r["order_id"], float(r["amount"]))
        for r in rows(uk, "refunds")
    }
    assert len(rows(uk, "refunds")) == len(cr) == 9_288
    expected = {
        (c.invoice, c.order if isinstance(c.order, str) else c.invoice, c.amount)
        for c in cr.itertuples()
    }
    assert refunds == expected


@pytest.mark.parametrize(
    ("name", "purchases", "customers"),
    [("CDNOW_sample.txt", 6_919, 2_357), ("CDNOW_master.txt", 69_659, 23_570)],
)
def test_cdnow_both_files(tmp_path, name, purchases, customers):
    ws = workspace(tmp_path / "cd", timezone="America/New_York", currency="USD")
    r = run_import(ws, "orders", shared("cdnow", name), preset="cdnow")
    assert r.summary == {"purchases": purchases, "customers": customers}
    assert r.tables["orders"].inserted == purchases and r.rejected == 0
    assert r.tables["customers"].inserted == customers
    with ws.warehouse() as wh:
        o = wh.table("orders")
        total = float(o.paid_amount.sum().execute())
        first = o.created_at.min().execute()
    expected = _cdnow_total(shared("cdnow", name))
    assert total == pytest.approx(expected, abs=0.01)
    assert str(first).startswith("1997-01-01 05:00")  # midnight in New York, stored in UTC


def _cdnow_total(path: Path) -> float:
    total = 0.0
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] != "customer_id":
            total += float(f[-1])
    return total


def test_unknown_preset_and_wrong_table(ws, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    with pytest.raises(ValueError, match="unknown preset 'shopify'.*cdnow"):
        run_import(ws, "orders", f, preset="shopify")
    with pytest.raises(ValueError, match="preset 'cdnow' fills"):
        run_import(ws, "events", f, preset="cdnow")
    with pytest.raises(ValueError, match="not an online-retail file.*InvoiceNo"):
        run_import(ws, "orders", f, preset="online-retail")
    assert Counter(r["order_id"] for r in rows(ws, "orders")) == Counter()
