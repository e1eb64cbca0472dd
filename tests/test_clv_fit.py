"""archer.models.fit and `archer clv` on the workspace's own orders, blank ids and dates, and
the Online Retail validation that printed `the model expected nan` (issue 10 item 6, issue 11
item 20)."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archer.models import fit as core
from archer.models.diagnostics import Validation
from conftest import run_import, shared, write
from support import workspace
from test_clv_cli import CAL, as_json, assert_published, invoke


def _cdnow_lines():
    for line in shared("cdnow", "CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _, sample_id, day, _cds, dollars = line.split()
            yield sample_id, f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars


@pytest.fixture(scope="module")
def cdnow_home(tmp_path_factory):
    """A workspace whose paid orders are the CDNOW purchases, with unpaid and guest orders and
    a refund around them; and the transaction log of the paid orders, amounts net."""
    root = tmp_path_factory.mktemp("cdnow-home")
    settings = workspace(root / "shop")
    orders = ["order_id,customer_id,created_at,paid_at,status,paid_amount"]
    refunds = ["refund_id,order_id,refunded_at,amount"]
    log = ["customer_id,date,amount"]
    for i, (cust, day, dollars) in enumerate(_cdnow_lines()):
        orders.append(f"o{i},{cust},{day} 10:00:00,{day} 10:05:00,paid,{dollars}")
        net = float(dollars)
        if i % 97 == 0 and net > 0:  # refunded in part, within the calibration period
            refunds.append(f"r{i},o{i},{day} 12:00:00,{net / 2:.2f}")
            net -= round(net / 2, 2)
        log.append(f"{cust},{day},{net:.2f}")
        if i % 13 == 0:  # unpaid orders and guest orders on other days: not purchases
            orders.append(f"u{i},{cust},1997-08-{1 + i % 28:02d} 09:00:00,,pending,10.00")
            orders.append(f"g{i},,{day} 11:00:00,{day} 11:00:00,paid,5.00")
    run_import(settings, "orders", write(root / "orders.csv", "\n".join(orders) + "\n"))
    run_import(settings, "refunds", write(root / "refunds.csv", "\n".join(refunds) + "\n"))
    return settings, write(root / "paid.csv", "\n".join(log) + "\n")


OBS = ["--observation-end", "1998-06-30"]


def test_fit_on_the_workspace_orders(cdnow_home):
    settings, _ = cdnow_home
    doc = as_json(invoke("fit", "--home", settings.home, *CAL, *OBS, "--json"))
    assert_published(doc)  # unpaid and guest orders do not count
    assert doc["n_customers"] == 2357 and doc["home"] == str(settings.home)
    assert doc["observation_end"] == "1998-06-30" and doc["calibration_end"] == "1997-09-30"


def test_spend_on_the_workspace_is_net_of_refunds(cdnow_home):
    settings, paid = cdnow_home
    args = ["fit", "--model", "gamma-gamma", *CAL, *OBS, "--json"]
    home = as_json(invoke(*args, "--home", settings.home))
    file = as_json(invoke(*args, "--transactions", paid, "--amount-col", "amount"))
    assert home["params"] == pytest.approx(file["params"], rel=1e-6)  # optimiser tolerance
    assert home["n_customers"] == file["n_customers"]


def test_validate_on_the_workspace(cdnow_home, tmp_path):
    settings, paid = cdnow_home
    args = ["validate", *CAL, *OBS, "--json"]
    home = as_json(invoke(*args, "--home", settings.home, "--out", tmp_path / "h"))
    file = as_json(invoke(*args, "--transactions", paid, "--out", tmp_path / "f"))
    assert home["errors"] == pytest.approx(file["errors"])
    assert (tmp_path / "h" / "clv-tracking.png").exists()


def test_home_must_be_a_workspace(tmp_path):
    r = invoke("fit", "--home", tmp_path / "nope")
    assert r.exit_code == 1 and "no workspace at" in r.stderr and "archer init" in r.stderr
    assert not (tmp_path / "nope").exists()
    r = invoke("fit", "--home", tmp_path, "--transactions", tmp_path / "x.csv")
    assert r.exit_code == 1 and "one of" in r.stderr


def test_core_returns_typed_results(tmp_path):
    path = write(tmp_path / "t.csv", "customer_id,date\n1,2024-01-01\n1,2024-02-01\n2,2024-01-15\n")
    result = core.fit(core.FitRequest(core.TransactionsFile(path), unit="day"))
    assert isinstance(result, core.FitResult) and result.name == "bgnbd"
    assert result.to_dict()["n_customers"] == 2
    with pytest.raises(core.ClvError, match="--model 'nope'"):
        core.fit(core.FitRequest(core.TransactionsFile(path), model="nope"))


# -- blank customer ids and dates ------------------------------------------------------------------
BLANKS = (
    "customer_id,date\n1,2024-01-01\n,2024-01-02\n1,2024-02-01\n2,\n  ,2024-01-03\n"
    "2,2024-01-15\n3,2024-01-20\n3,2024-03-01\n"
)


def test_blank_ids_and_dates_are_refused_with_their_lines(tmp_path):
    path = write(tmp_path / "blanks.csv", BLANKS)
    r = invoke("fit", "--transactions", path)
    assert r.exit_code == 1, r.output
    assert str(path) in r.stderr
    assert "2 rows have a blank 'customer_id'" in r.stderr
    assert "1 rows have a blank 'date'" in r.stderr
    assert "lines 3, 5, 6" in r.stderr and "--skip-blank" in r.stderr
    r = invoke("validate", "--transactions", path, "--calibration-end", "2024-02-01",
               "--out", tmp_path / "o")  # fmt: skip
    assert r.exit_code == 1 and "blank" in r.stderr


def test_skip_blank_leaves_them_out_and_says_so(tmp_path):
    path = write(tmp_path / "blanks.csv", BLANKS)
    doc = as_json(invoke("fit", "--transactions", path, "--skip-blank", "--unit", "day", "--json"))
    assert doc["n_customers"] == 3  # 1, 2 and 3: no blank customer
    assert doc["skipped"] == {"blank_customer": 2, "blank_date": 1, "first_lines": [3, 5, 6]}
    r = invoke("fit", "--transactions", path, "--skip-blank", "--unit", "day")
    assert r.exit_code == 0 and "left out 2 rows" in r.stderr
    clean = write(tmp_path / "clean.csv", "customer_id,date\n1,2024-01-01\n2,2024-01-02\n"
                  "1,2024-02-01\n")  # fmt: skip
    assert "skipped" not in as_json(invoke("fit", "--transactions", clean, "--json"))


def test_blank_ids_in_parquet_are_named_by_row(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table({"customer_id": ["a", None, "b", "a"], "date": ["2024-01-01"] * 3 + [None]})
    pq.write_table(table, path)
    r = invoke("fit", "--transactions", path)
    assert r.exit_code == 1 and "rows 2, 4" in r.stderr


# -- never a NaN as a result ---------------------------------------------------------------------


def test_a_prediction_that_is_not_a_number_is_refused():
    import pandas as pd

    from archer.models import BGNBD

    model = BGNBD()
    model.params_ = {"r": 1.0, "alpha": 1.0, "a": 0.5, "b": 0.5}
    nan = float("nan")
    bins = pd.DataFrame({"frequency": ["0"], "customers": [10.0], "actual": [1.0],
                         "expected": [nan]})  # fmt: skip
    errors = {"n_customers": 10.0, "actual_purchases": 10.0, "expected_purchases": nan}
    errors |= {"aggregate_error": nan, "aggregate_error_pct": nan, "mae": nan, "rmse": nan}
    v = Validation(errors, bins, pd.DataFrame(), pd.DataFrame())
    with pytest.raises(core.ClvError, match="cannot be computed as finite numbers"):
        core._check_finite("bgnbd", model, v)


@pytest.fixture(scope="module")
def online_retail():
    return shared("online_retail", "online_retail.csv.gz")


RETAIL = ["--customer-col", "CustomerID", "--date-col", "InvoiceDate",
          "--calibration-end", "2011-06-30"]  # fmt: skip


def test_online_retail_blank_customers_are_refused(online_retail, tmp_path):
    r = invoke("validate", "--transactions", online_retail, *RETAIL, "--out", tmp_path)
    assert r.exit_code == 1
    assert "135,080 rows have a blank 'CustomerID'" in r.stderr


def test_online_retail_validate_expects_a_number(online_retail, tmp_path):
    """BG/NBD on Online Retail ends at a + b < 1 (a = 0.02585, b = 0.41475), where the
    holdout expectation was NaN for most customers without repeat purchases."""
    args = ["validate", "--transactions", online_retail, *RETAIL, "--skip-blank"]
    doc = as_json(invoke(*args, "--out", tmp_path / "j", "--json"))
    p = doc["fit"]["params"]
    assert p["a"] == pytest.approx(0.02585, abs=5e-5) and p["b"] == pytest.approx(0.41475, abs=5e-4)
    assert p["a"] + p["b"] < 1
    e = doc["errors"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in e.values())
    assert e["actual_purchases"] == 7403 and e["n_customers"] == 3002
    # a sound model is within a sane distance of the truth
    assert 0.5 * e["actual_purchases"] < e["expected_purchases"] < 1.5 * e["actual_purchases"]
    on_disk = json.loads((tmp_path / "j" / "figures.json").read_text())
    assert on_disk["errors"] == doc["errors"]
    r = invoke(*args, "--out", tmp_path / "t")
    assert r.exit_code == 0 and "nan" not in r.stdout.lower()
