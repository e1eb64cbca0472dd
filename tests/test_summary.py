"""Calibration / holdout summaries and mean repeat spend, computed in the engine (Ibis)."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pytest

from archer.models.summary import calibration_holdout_summary, rfm_summary
from test_bgnbd import CALIBRATION_END, cdnow_transactions

LOG = {
    "c": [1, 1, 1, 1, 1, 1, 2, 2, 3, 4],
    "d": [
        datetime(2024, 1, 1, 9),
        datetime(2024, 1, 1, 17),  # same day as the first: part of the first transaction
        datetime(2024, 1, 8, 12),
        datetime(2024, 1, 8, 13),  # same day: summed into one repeat transaction of 30
        datetime(2024, 1, 12),
        datetime(2024, 2, 1),  # holdout
        datetime(2024, 1, 5),
        datetime(2024, 1, 20),  # holdout
        datetime(2024, 1, 20),  # first seen in the holdout: not in the summary
        datetime(2024, 3, 1),  # after the observation end
    ],
    "amount": [10.0, 5.0, 20.0, 10.0, 50.0, 7.0, 8.0, 9.0, 100.0, 1.0],
}


def _summary(**kw):
    t = ibis.memtable(LOG)
    out = calibration_holdout_summary(
        t,
        customer_col="c",
        date_col="d",
        calibration_end=date(2024, 1, 15),
        observation_end=date(2024, 2, 14),
        unit="day",
        **kw,
    )
    return {r["c"]: r for r in out.to_pyarrow().to_pylist()}


def test_calibration_and_holdout():
    got = _summary(amount_col="amount")
    assert set(got) == {1, 2}
    one, two = got[1], got[2]
    assert (one["frequency"], one["recency"], one["T"]) == (2, 11.0, 14.0)
    assert one["monetary_value"] == pytest.approx((30.0 + 50.0) / 2)
    assert (one["frequency_holdout"], one["duration_holdout"]) == (1, 30.0)
    assert one["monetary_value_holdout"] == 7.0
    assert (two["frequency"], two["monetary_value"], two["frequency_holdout"]) == (0, 0.0, 1)
    assert two["monetary_value_holdout"] == 9.0
    assert one["first_purchase"] == date(2024, 1, 1)


def test_without_amounts_and_backward_compatible_columns():
    got = _summary()
    assert "monetary_value" not in got[1] and "monetary_value_holdout" not in got[1]
    assert got[1]["frequency_holdout"] == 1
    plain = rfm_summary(
        ibis.memtable(LOG), customer_col="c", date_col="d", calibration_end=date(2024, 1, 15)
    )
    assert plain.columns == ("c", "first_purchase", "frequency", "recency", "T")
    with pytest.raises(ValueError):
        _summary_bad = calibration_holdout_summary(  # noqa: F841
            ibis.memtable(LOG),
            customer_col="c",
            date_col="d",
            calibration_end=date(2024, 1, 15),
            observation_end=date(2024, 1, 1),
        )


def test_cdnow_calibration_and_holdout():
    """The CDNOW sample, 39 + 39 weeks (Fader, Hardie & Lee 2005): 2,357 customers, 946 of them
    with repeat purchases in the calibration period. Customer 1 bought on 1997-01-01 ($29.33),
    1997-01-18 ($29.73) and 1997-08-02 ($14.96), and in the holdout on 1997-12-12 ($26.48)."""
    out = calibration_holdout_summary(
        cdnow_transactions(),
        customer_col="customer_id",
        date_col="order_date",
        calibration_end=CALIBRATION_END,
        observation_end=date(1998, 6, 30),
        observation_start=date(1997, 1, 1),
        unit="week",
        amount_col="amount",
    ).to_pandas()
    assert len(out) == 2357 and (out["frequency"] > 0).sum() == 946
    assert (out["duration_holdout"] == 39.0).all()
    first = out.set_index("customer_id").loc[1]
    assert first["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert first["frequency_holdout"] == 1
    assert first["monetary_value_holdout"] == pytest.approx(26.48)
    assert (out["frequency_holdout"] >= 0).all() and out["frequency_holdout"].sum() > 0


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.xdist_group("spark")
def test_same_summary_on_pyspark(tmp_path):
    """The summary is one Ibis expression: PySpark gives DuckDB's answer."""
    import shutil

    if shutil.which("java") is None:
        pytest.fail("PySpark needs a Java runtime (java on PATH); install openjdk-17-jre")
    pytest.importorskip("pyspark")
    import pyarrow as pa

    from archer.warehouse import Warehouse

    with Warehouse.connect(f"pyspark://local?warehouse={tmp_path / 'tables'}") as wh:
        wh.con.create_table("summary_log", pa.table(LOG), overwrite=True)
        out = calibration_holdout_summary(
            wh.table("summary_log"),
            customer_col="c",
            date_col="d",
            calibration_end=date(2024, 1, 15),
            observation_end=date(2024, 2, 14),
            unit="day",
            amount_col="amount",
        )
        spark = {r["c"]: r for r in out.to_pyarrow().to_pylist()}
    duck = _summary(amount_col="amount")
    assert spark.keys() == duck.keys()
    for c, row in duck.items():
        for k, v in row.items():
            assert spark[c][k] == (pytest.approx(v) if isinstance(v, float) else v), (c, k)
