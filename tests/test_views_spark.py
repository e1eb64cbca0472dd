"""The shop-level views give the same answers on PySpark (local mode) as on DuckDB."""

from __future__ import annotations

import math
import shutil
from datetime import date

import pytest

from archer.analytics import affinities, cohorts, funnel, kpis, recommendations
from archer.facts import Snapshot
from archer.plain import records
from archer.schema import LOAD_ORDER
from archer.warehouse import Warehouse
from test_views import build_shop

AS_OF = date(2026, 5, 17)  # a Sunday in mid-month: the week closes, the month does not

VIEWS = {
    "funnel by channel": lambda s: funnel(s, "channel"),
    "cohorts": lambda s: cohorts(s),
    "order pairs": lambda s: affinities(s, "category", "order", min_support=0),
    "customer product pairs": lambda s: affinities(s, "product", "customer", 45, 0.002),
    "recommendations": lambda s: recommendations(s, k=2),
    "kpis by week": lambda s: kpis(s, "week"),
}


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.fail("PySpark needs a Java runtime (java on PATH); install openjdk-17-jre")
    pytest.importorskip("pyspark")
    root = tmp_path_factory.mktemp("views_spark")
    ws = build_shop(root, 600, seed=3)
    duck = Warehouse.connect(ws.settings.warehouse_url)  # held for the whole module
    spark = Warehouse.connect(f"pyspark://local?warehouse={root / 'spark'}")
    for name in LOAD_ORDER:
        spark.con.create_table(name, spark.adopt(duck.table(name), duck.con), overwrite=True)
    yield ws, duck, spark
    spark.close()
    duck.close()


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_views_agree_on_spark_and_duckdb(warehouses):
    ws, duck, spark = warehouses
    assert spark.engine == "pyspark"
    on_duck = Snapshot.at(duck, AS_OF, ws.tz)
    on_spark = Snapshot.at(spark, AS_OF, ws.tz)
    for name, view in VIEWS.items():
        want = records(view(on_duck).execute(), days=True)
        got = records(view(on_spark).execute(), days=True)
        assert len(got) == len(want) > 0, name
        for g, w in zip(got, want, strict=True):
            assert g.keys() == w.keys(), name
            diff = {k: (g[k], w[k]) for k in w if not same(g[k], w[k])}
            assert not diff, (name, w, diff)
