"""The warehouse adapter on every engine: tables, upserts by key, the import log."""

from __future__ import annotations

import shutil
from datetime import datetime
from decimal import Decimal

import ibis
import pyarrow as pa
import pytest

from archer.ingest.importer import import_file
from archer.schema import TABLES
from archer.warehouse import Warehouse, WarehouseError
from support import workspace

PRODUCTS = [
    {"product_id": "P1", "name": "绿茶", "category": "tea", "list_price": Decimal("59.00")},
    {
        "product_id": "P2",
        "name": "Dark chocolate",
        "category": "chocolate",
        "list_price": Decimal("25.50"),
    },
]


def products(rows):
    schema = TABLES["products"].ibis_schema()
    full = [{c: r.get(c) for c in schema.names} for r in rows]
    return ibis.memtable(pa.Table.from_pylist(full, schema=schema.to_pyarrow()))


def upsert_scenario(wh: Warehouse) -> None:
    wh.ensure_tables()
    assert set(TABLES) <= set(wh.con.list_tables())
    first = wh.upsert("products", products(PRODUCTS))
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    same = wh.upsert("products", products(PRODUCTS))
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 2)
    changed = [
        dict(PRODUCTS[0], list_price=Decimal("49.00")),
        {"product_id": "P3", "name": "Oolong"},
    ]
    r = wh.upsert("products", products(changed))
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 0)
    got = {p["product_id"]: p for p in wh.table("products").to_pyarrow().to_pylist()}
    assert set(got) == {"P1", "P2", "P3"}
    assert got["P1"]["list_price"] == Decimal("49.00") and got["P1"]["name"] == "绿茶"
    assert wh.counts()["products"] == 3


def test_duckdb_upserts(tmp_path):
    with Warehouse.connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        upsert_scenario(wh)


def test_duckdb_transaction_rolls_back(tmp_path):
    with Warehouse.connect(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        wh.ensure_tables()
        with pytest.raises(RuntimeError), wh.transaction():
            wh.upsert("products", products(PRODUCTS))
            raise RuntimeError("boom")
        assert wh.counts()["products"] == 0


def test_unknown_url():
    with pytest.raises(WarehouseError, match="duckdb:///path or pyspark://local"):
        Warehouse.connect("oracle://db")


@pytest.fixture(scope="module")
def spark_dir(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.fail("PySpark needs a Java runtime (java on PATH); install openjdk-17-jre")
    pytest.importorskip("pyspark")
    d = tmp_path_factory.mktemp("spark")
    yield d


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_spark_upserts_and_imports(spark_dir, tmp_path):
    url = f"pyspark://local?warehouse={spark_dir / 'tables'}"
    with Warehouse.connect(url) as wh:
        assert wh.engine == "pyspark"
        for name in wh.con.list_tables():
            wh.con.drop_table(name, force=True)
        upsert_scenario(wh)

    # A whole import into Spark: the file is read and checked by DuckDB, then handed over.
    settings = workspace(tmp_path / "shop")
    settings = settings.replace(warehouse=url)
    f = tmp_path / "o.csv"
    f.write_text(
        "订单编号,会员ID,下单时间,实付金额,省份\nO1,C1,2024-05-01 10:00:00,10.5,江苏省\n"
        "O2,C2,2024-05-02 10:00:00,x,\nO3,C3,2024-05-03 10:00:00,7,上海\n",
        encoding="utf-8",
    )
    r = import_file(settings, "orders", f, now=datetime(2026, 1, 1))
    assert (r.inserted, r.rejected) == (2, 1)
    again = import_file(settings, "orders", f, now=datetime(2026, 1, 1))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    # A new Spark session (as the next command would start) still finds the tables.
    from pyspark.sql import SparkSession

    SparkSession.builder.getOrCreate().stop()
    with Warehouse.connect(url.replace("local", "local[2]")) as wh:
        assert wh.counts()["orders"] == 2 and wh.counts()["products"] == 3
        got = {o["order_id"]: o for o in wh.table("orders").to_pyarrow().to_pylist()}
        assert got["O1"]["province"] == "Jiangsu" and got["O1"]["paid_amount"] == Decimal("10.50")
        assert got["O1"]["created_at"] == datetime(2024, 5, 1, 2, 0)
        assert wh.last_imports(1)[0]["rejected"] == 1
