"""`archer build` gives the same profile on PySpark (local mode) as on DuckDB (issue 3)."""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime

import pandas as pd
import pytest

from archer.pipeline import build
from archer.schema import CATEGORIES, LOAD_ORDER, PROFILE, THRESHOLDS
from archer.warehouse import Warehouse
from test_profile import load_sample

AS_OF = date(2026, 9, 30)
KEYS = {
    PROFILE: ["customer_id"],
    CATEGORIES: ["customer_id", "category"],
    THRESHOLDS: ["category", "gender"],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.fail("PySpark needs a Java runtime (java on PATH); install openjdk-17-jre")
    pytest.importorskip("pyspark")
    ws, _ = load_sample(tmp_path_factory, "profile_spark", customers=700, seed=4)
    spark_url = f"pyspark://local?warehouse={ws.home / 'spark-warehouse'}"
    with ws.warehouse() as duck, Warehouse.connect(spark_url) as spark:
        for name in LOAD_ORDER:
            spark.con.create_table(name, spark.adopt(duck.table(name), duck.con), overwrite=True)
    on_duck = build(ws, AS_OF)
    spark_ws = ws.replace(**{"warehouse": spark_url})
    on_spark = build(spark_ws, AS_OF)
    tables = {}
    for settings in (ws, spark_ws):
        with settings.warehouse() as wh:
            tables[wh.engine] = {name: wh.table(name).to_pandas() for name in KEYS}
    return on_duck, on_spark, tables


def _plain(v):
    """One value in a form both engines agree on (dates as dates, missing as None)."""
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, datetime) and v.time() == datetime.min.time():
        return v.date()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_build_on_spark_equals_build_on_duckdb(built):
    on_duck, on_spark, tables = built
    assert on_spark.lifecycle == on_duck.lifecycle
    assert on_spark.stages == on_duck.stages
    assert on_spark.segments == on_duck.segments
    assert on_spark.tables == on_duck.tables
    for name, key in KEYS.items():
        duck = tables["duckdb"][name].sort_values(key).reset_index(drop=True)
        spark = tables["pyspark"][name].sort_values(key).reset_index(drop=True)
        assert list(spark.columns) == list(duck.columns), name
        assert len(spark) == len(duck) > 0, name
        for col in duck.columns:
            pairs = zip(map(_plain, duck[col]), map(_plain, spark[col]), strict=True)
            bad = [(i, d, s) for i, (d, s) in enumerate(pairs) if not _same(d, s)]
            assert not bad, (name, col, bad[:3])
