"""Calibration/holdout diagnostics (issue 4): each figure against a direct computation."""

from __future__ import annotations

import json
from datetime import date, datetime

import ibis
import numpy as np
import pandas as pd
import pytest

from archer.models import BGNBD
from archer.models import diagnostics as dg
from conftest import shared

CALIBRATION_END = date(1997, 9, 30)  # 39 weeks, as in Fader, Hardie & Lee (2005)
OBSERVATION_END = date(1998, 6, 30)  # and 39 weeks of holdout


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    rows = [line.split() for line in shared("cdnow", "CDNOW_sample.txt").read_text().splitlines()]
    return pd.DataFrame(
        {
            "customer_id": [int(r[1]) for r in rows if r],
            "day": [datetime.strptime(r[2], "%Y%m%d").date() for r in rows if r],
        }
    )


@pytest.fixture(scope="module")
def holdout(log):
    from archer.models.summary import calibration_holdout_summary

    t = ibis.memtable(log)
    kw = dict(customer_col="customer_id", date_col="day", calibration_end=CALIBRATION_END)
    s = calibration_holdout_summary(t, observation_end=OBSERVATION_END, unit="week", **kw)
    data = s.to_pandas().sort_values("customer_id").reset_index(drop=True)
    model = BGNBD().fit(data["frequency"], data["recency"], data["T"])
    repeats = dg.repeat_purchases_by_day(t, observation_end=OBSERVATION_END, **kw).to_pandas()
    return data, model, repeats


def test_errors_are_the_per_customer_figures(holdout):
    data, model, _ = holdout
    e = dg.holdout_errors(model, data)
    expected = model.conditional_expected_purchases(
        39.0, data["frequency"], data["recency"], data["T"]
    )
    diff = expected - data["frequency_holdout"]
    assert e["n_customers"] == 2357
    assert e["actual_purchases"] == data["frequency_holdout"].sum()
    assert e["expected_purchases"] == pytest.approx(expected.sum())
    assert e["mae"] == pytest.approx(np.abs(diff).mean())
    assert e["rmse"] == pytest.approx(np.sqrt((diff**2).mean()))
    assert e["aggregate_error"] == pytest.approx(diff.sum())


def test_holdout_by_frequency_matches_a_groupby(holdout):
    data, model, _ = holdout
    table = dg.holdout_by_frequency(model, data, max_frequency=7)
    binned = data.assign(bin=data["frequency"].clip(upper=7))
    binned["expected"] = model.conditional_expected_purchases(
        39.0, data["frequency"], data["recency"], data["T"]
    )
    direct = binned.groupby("bin").agg(
        customers=("customer_id", "size"),
        actual=("frequency_holdout", "mean"),
        expected=("expected", "mean"),
    )
    assert list(table["frequency"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    np.testing.assert_allclose(table["customers"], direct["customers"])
    np.testing.assert_allclose(table["actual"], direct["actual"])
    np.testing.assert_allclose(table["expected"], direct["expected"])


def test_pattern_weights_give_the_same_figures(holdout):
    data, model, _ = holdout
    cols = ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]
    grouped = data.groupby(cols, as_index=False).size().rename(columns={"size": "weights"})
    assert len(grouped) < len(data)
    for name in ("mae", "rmse", "expected_purchases"):
        assert dg.holdout_errors(model, grouped)[name] == pytest.approx(
            dg.holdout_errors(model, data)[name]
        )
    pd.testing.assert_frame_equal(
        dg.holdout_by_frequency(model, grouped), dg.holdout_by_frequency(model, data)
    )


def test_frequency_histogram(holdout):
    data, model, _ = holdout
    table = dg.frequency_histogram(model, data, max_frequency=5)
    counts = data["frequency"].clip(upper=5).value_counts().sort_index()
    np.testing.assert_allclose(table["actual"], counts.to_numpy())
    direct = [model.probability_of_purchases(x, data["T"].to_numpy()).sum() for x in range(5)]
    np.testing.assert_allclose(table["expected"].iloc[:5], direct, rtol=1e-10)
    assert table["expected"].sum() == pytest.approx(2357)
    # the published fit describes the calibration histogram well (paper, Figure 2)
    assert np.all(np.abs(table["expected"] - table["actual"]) < 0.1 * table["actual"] + 10)


def test_tracking_against_the_log(log, holdout):
    data, model, repeats = holdout
    first = data.groupby("first_purchase").size().rename("customers").reset_index()
    table = dg.tracking(
        model,
        first,
        repeats,
        calibration_end=CALIBRATION_END,
        observation_end=OBSERVATION_END,
    )
    assert len(table) == 78 and table["week_end"].iloc[-1] == OBSERVATION_END
    assert table["week_end"].iloc[38] == CALIBRATION_END
    assert (table["period"] == "calibration").sum() == 39
    # actual: distinct purchase days after each customer's first, up to the end of the holdout
    days = log.drop_duplicates()
    days = days[days["day"] <= OBSERVATION_END]
    first_day = days.groupby("customer_id")["day"].transform("min")
    assert table["actual_cumulative"].iloc[-1] == (days["day"] > first_day).sum()
    in_calibration = (days["day"] > first_day) & (days["day"] <= CALIBRATION_END)
    assert table["actual_cumulative"].iloc[38] == in_calibration.sum()
    # expected at the calibration end: each customer's E[X(T)]
    assert table["expected_cumulative"].iloc[38] == pytest.approx(
        model.expected_purchases_new(data["T"].to_numpy()).sum()
    )
    assert np.all(np.diff(table["expected_cumulative"]) >= 0)
    # the model tracks the calibration period within 5% (paper, Figure 3)
    assert table["expected_cumulative"].iloc[38] == pytest.approx(
        table["actual_cumulative"].iloc[38], rel=0.05
    )


def test_p_alive_matrix(holdout):
    _, model, _ = holdout
    table = dg.p_alive_matrix(model, T=39.0, max_frequency=10, steps=14)
    grid = table.pivot(index="frequency", columns="recency", values="p_alive")
    assert grid.shape == (11, 14)
    assert grid.loc[0.0, 0.0] == 1.0 and grid.loc[0.0].iloc[1:].isna().all()
    assert grid.loc[1:, 0.0].isna().all()
    inner = grid.loc[1:].iloc[:, 1:].to_numpy()
    assert np.all(np.diff(inner, axis=1) > 0)  # a later last purchase: more likely alive
    assert grid.loc[5.0, 39.0] == pytest.approx(float(model.p_alive(5, 39.0, 39.0)))


def test_write_makes_pngs_and_json(tmp_path, log, holdout):
    data, model, repeats = holdout
    first = data.groupby("first_purchase").size().rename("customers").reset_index()
    v = dg.validate(
        model,
        data,
        first_purchases=first,
        repeats_by_day=repeats,
        calibration_end=CALIBRATION_END,
        observation_end=OBSERVATION_END,
    )
    paths = v.write(tmp_path / "out")
    pngs = {k: p for k, p in paths.items() if p.suffix == ".png"}
    assert set(pngs) == set(dg.PLOTS)
    from matplotlib.image import imread

    for p in pngs.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        h, w, _ = imread(p).shape
        assert h >= 300 and w >= 500
    doc = json.loads(paths["figures"].read_text())
    assert doc["errors"]["mae"] == pytest.approx(v.errors["mae"])
    assert [r["frequency"] for r in doc["holdout_by_frequency"]][-1] == "7+"
    assert doc["tracking"][38]["week_end"].startswith("1997-09-30")
    assert any(r["p_alive"] is None for r in doc["p_alive"])  # impossible cells are null


def test_validate_without_dates_leaves_tracking_out(holdout):
    data, model, _ = holdout
    v = dg.validate(model, data)
    assert v.tracking is None and v.to_dict()["tracking"] is None
    with pytest.raises(ValueError, match="calibration_end"):
        dg.validate(model, data, first_purchases=data, repeats_by_day=data)
