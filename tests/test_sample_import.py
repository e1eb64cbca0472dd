"""The synthetic shop goes in whole: every row taken, the same from CSV and Parquet."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import pytest

from archer.ingest.importer import import_file
from archer.sample import generate
from archer.schema import LOAD_ORDER
from conftest import NOW, rows
from support import workspace


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    counts = generate(d / "csv", customers=2_000, seed=11)
    generate(d / "parquet", customers=2_000, seed=11, fmt="parquet")
    return d, counts


def load(settings, folder, ext):
    return {
        t: import_file(settings, t, folder / f"{t}.{ext}", now=NOW + timedelta(days=400))
        for t in LOAD_ORDER
    }


def test_every_sample_row_is_taken(shop, tmp_path):
    d, counts = shop
    ws = workspace(tmp_path / "csv")
    results = load(ws, d / "csv", "csv")
    for t, r in results.items():
        assert r.rejected == 0, (t, r.reasons)
        assert r.inserted == counts[t] == r.rows_read
    with ws.warehouse() as wh:
        items, orders = wh.table("order_items"), wh.table("orders")
        assert int(items.anti_join(orders, "order_id").count().execute()) == 0
        unknown = orders.filter(orders.customer_id.notnull()).anti_join(
            wh.table("customers"), "customer_id"
        )
        assert int(unknown.count().execute()) == 0


def test_local_times_are_stored_in_utc(shop, tmp_path):
    d, _ = shop
    ws = workspace(tmp_path / "csv")
    import_file(ws, "orders", d / "csv" / "orders.csv", now=datetime(2030, 1, 1))
    with open(d / "csv" / "orders.csv", encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    stored = next(o for o in rows(ws, "orders") if o["order_id"] == first["order_id"])
    local = datetime.fromisoformat(first["created_at"])
    assert stored["created_at"] == local - timedelta(hours=8)  # Asia/Shanghai, no DST


def test_csv_and_parquet_land_the_same(shop, tmp_path):
    d, _ = shop
    a, b = workspace(tmp_path / "a"), workspace(tmp_path / "b")
    load(a, d / "csv", "csv")
    load(b, d / "parquet", "parquet")
    for t in ("customers", "orders", "refunds"):
        key = "refund_id" if t == "refunds" else f"{t[:-1]}_id"
        assert rows(a, t, key) == rows(b, t, key), t
