"""archer.plain: the one converter of values to what JSON carries (CLI --json, REST, views)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from archer.plain import plain, records


def test_missing_values_and_infinities_are_null():
    for v in (None, float("nan"), float("inf"), -float("inf"), np.float64("nan"), pd.NaT):
        assert plain(v) is None, v
    assert plain(Decimal("NaN")) is None


def test_numbers_become_python_numbers():
    assert plain(Decimal("12.50")) == 12.5 and isinstance(plain(Decimal("12.50")), float)
    assert plain(np.int64(3)) == 3 and type(plain(np.int64(3))) is int
    assert plain(np.bool_(True)) is True
    assert plain(np.array([1, 2])) == [1, 2]


def test_moments_are_iso_text_and_days_only_when_asked():
    midnight = pd.Timestamp("2026-10-01")
    assert plain(midnight) == "2026-10-01T00:00:00"
    assert plain(midnight, days=True) == "2026-10-01"
    assert plain(datetime(2026, 10, 1, 8, 30), days=True) == "2026-10-01T08:30:00"
    assert plain(pd.Timestamp("2026-10-01 00:00:00.000000001"), days=True).startswith("2026-10-01T")
    assert plain(datetime(2026, 10, 1, tzinfo=UTC)) == "2026-10-01T00:00:00+00:00"
    assert plain(date(2026, 10, 1)) == "2026-10-01"


def test_containers_are_converted_all_the_way_down():
    doc = {"a": [float("nan"), {"b": np.int64(1), 2: date(2026, 1, 2)}], "c": (Decimal("1"),)}
    assert plain(doc) == {"a": [None, {"b": 1, "2": "2026-01-02"}], "c": [1.0]}


def test_records_of_a_frame_are_valid_json():
    df = pd.DataFrame(
        {
            "id": ["a", "b"],
            "x": [1.5, float("nan")],
            "day": pd.to_datetime(["2026-01-01", None]),
            "n": np.array([1, 2], dtype="int64"),
        }
    )
    rows = records(df, days=True)
    assert rows == [
        {"id": "a", "x": 1.5, "day": "2026-01-01", "n": 1},
        {"id": "b", "x": None, "day": None, "n": 2},
    ]
    json.dumps(rows, allow_nan=False)
